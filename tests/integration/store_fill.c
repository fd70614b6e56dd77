/* store_fill.c - writes generated events into an embedded store directory,
 * for the scripts that test queryd and the CLI (tests/integration/) and for
 * bench/queryd_bench.
 *
 *   build/tests/store_fill DIR [--tenant T] [--count N] [--span DURATION]
 *                              [--seed S] [--end now|EPOCH_NS]
 *
 * Events are spread over the span ending at --end (default now), varied as
 * in the store's unit tests (services, levels, hosts, trace ids, messages
 * of common words, metadata). Also writes a handful of fixed events the
 * scripts look for: ids fixed-1..fixed-3, service "checkout", messages with
 * "needle". Prints "stored N" on success. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/store_testlib.h"
#include "lh/conf.h"
#include "lh/store.h"
#include "lh/time.h"

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "tenant", required_argument, NULL, 't' }, { "count", required_argument, NULL, 'n' },
        { "span", required_argument, NULL, 's' }, { "seed", required_argument, NULL, 'S' },
        { "end", required_argument, NULL, 'e' }, { 0, 0, 0, 0 },
    };
    const char *tenant = "demo";
    long long count = 10000;
    int64_t span_ms = 3600 * 1000;
    unsigned long long seed = 1;
    int64_t end = lh_time_now_ns();
    int ch;
    while ((ch = getopt_long(argc, argv, "t:n:s:S:e:", lo, NULL)) != -1) {
        switch (ch) {
        case 't': tenant = optarg; break;
        case 'n': count = atoll(optarg); break;
        case 's':
            if (lh_conf_parse_duration_ms(optarg, &span_ms) < 0 || span_ms <= 0) {
                fprintf(stderr, "store_fill: --span: not a duration\n");
                return 2;
            }
            break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'e': end = strcmp(optarg, "now") == 0 ? lh_time_now_ns() : atoll(optarg); break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || count < 0) {
        fprintf(stderr, "usage: store_fill DIR [--tenant T] [--count N] [--span D] [--seed S] "
                        "[--end now|NS]\n");
        return 2;
    }
    struct lh_store_config cfg = { .dir = argv[optind] };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0) {
        fprintf(stderr, "store_fill: %s\n", err.msg);
        return 1;
    }
    struct lh_arena a = LH_ARENA_INIT;
    struct tgen g = { seed ? seed : 1, &a, 0, { 0 }, 0 };
    int64_t span = span_ms * LH_NS_PER_MS, start = end - span;
    long long stored = 0;
    const long long batch = 20000;
    for (long long done = 0; done < count; done += batch) {
        size_t n = (size_t)(count - done < batch ? count - done : batch);
        struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
        tg_new_batch(&g);
        for (size_t i = 0; i < n; i++)
            tg_event(&g, &evs[i], tenant, start, span);
        struct lh_store_append_stats st;
        if (lh_store_append(s, evs, n, &st, &err) < 0) {
            fprintf(stderr, "store_fill: %s\n", err.msg);
            lh_store_close(s);
            return 1;
        }
        stored += (long long)st.stored;
        lh_arena_reset(&a);
    }
    struct lh_kv meta[2] = { { "order_id", "o-777" }, { "duration_ms", "1234" } };
    struct lh_event fixed[3] = {
        { .ts_ns = end - 1000000000, .id = "fixed-1", .tenant = tenant, .service = "checkout",
          .level = LH_LEVEL_ERROR, .host = "web-7", .trace_id = "tr_needle_1",
          .message = "needle in the checkout: card declined", .meta = meta, .nmeta = 2 },
        { .ts_ns = end - 2000000000, .id = "fixed-2", .tenant = tenant, .service = "checkout",
          .level = LH_LEVEL_WARN, .host = "web-7", .message = "needle retry 2" },
        { .ts_ns = end - 3000000000, .id = "fixed-3", .tenant = tenant, .service = "checkout",
          .level = LH_LEVEL_INFO, .host = "web-8", .message = "needle ok" },
    };
    struct lh_store_append_stats st;
    if (lh_store_append(s, fixed, 3, &st, &err) < 0) {
        fprintf(stderr, "store_fill: %s\n", err.msg);
        lh_store_close(s);
        return 1;
    }
    stored += (long long)st.stored;
    lh_store_close(s);
    lh_arena_free(&a);
    printf("stored %lld\n", stored);
    return 0;
}

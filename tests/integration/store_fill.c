/* store_fill.c - writes generated events into an embedded store directory,
 * for the scripts that test queryd and the CLI (tests/integration/) and for
 * bench/queryd_bench.
 *
 *   build/tests/store_fill DIR [--tenant T] [--count N] [--span DURATION]
 *                              [--seed S] [--end now|EPOCH_NS] [--archive]
 *
 * Events are spread over the span ending at --end (default now), varied as
 * in the store's unit tests (services, levels, hosts, trace ids, messages
 * of common words, metadata). Also writes a handful of fixed events the
 * scripts look for: ids fixed-1..fixed-3, service "checkout", messages with
 * "needle". Prints "stored N" on success. With --archive, DIR is an
 * archive directory instead (lh/archive.h, type dir, Parquet): one object
 * per UTC hour of each batch, as the indexer partitions them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/store_testlib.h"
#include "lh/archive.h"
#include "lh/conf.h"
#include "lh/store.h"
#include "lh/time.h"

/* Where events go: the store, or archive objects per hour. */
struct out {
    struct lh_store *store;
    struct lh_archive *archive;
    const char *tenant;
};

static int by_ts(const void *a, const void *b)
{
    const struct lh_event *x = a, *y = b;
    return x->ts_ns < y->ts_ns ? -1 : x->ts_ns > y->ts_ns;
}

static int emit(struct out *o, struct lh_event *evs, size_t n, long long *stored,
                struct lh_err *err)
{
    if (o->store) {
        struct lh_store_append_stats st;
        if (lh_store_append(o->store, evs, n, &st, err) < 0)
            return -1;
        *stored += (long long)st.stored;
        return 0;
    }
    const int64_t hour = 3600 * LH_NS_PER_SEC;
    qsort(evs, n, sizeof(*evs), by_ts);
    for (size_t i = 0; i < n;) {
        size_t k = i;
        int64_t h = evs[i].ts_ns / hour;
        while (k < n && evs[k].ts_ns / hour == h)
            k++;
        if (lh_archive_write_events(o->archive, o->tenant, evs[i].ts_ns, "local", "fill",
                                    evs + i, k - i, NULL, err) < 0)
            return -1;
        *stored += (long long)(k - i);
        i = k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "tenant", required_argument, NULL, 't' }, { "count", required_argument, NULL, 'n' },
        { "span", required_argument, NULL, 's' }, { "seed", required_argument, NULL, 'S' },
        { "end", required_argument, NULL, 'e' }, { "archive", no_argument, NULL, 'a' },
        { 0, 0, 0, 0 },
    };
    const char *tenant = "demo";
    long long count = 10000;
    int64_t span_ms = 3600 * 1000;
    unsigned long long seed = 1;
    int64_t end = lh_time_now_ns();
    int ch, archive = 0;
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
        case 'a': archive = 1; break;
        case 'e': end = strcmp(optarg, "now") == 0 ? lh_time_now_ns() : atoll(optarg); break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || count < 0) {
        fprintf(stderr, "usage: store_fill DIR [--tenant T] [--count N] [--span D] [--seed S] "
                        "[--end now|NS] [--archive]\n");
        return 2;
    }
    struct lh_store_config cfg = { .dir = argv[optind] };
    struct lh_archive_config acfg = { .type = LH_ARCHIVE_DIR, .format = LH_ARCHIVE_PARQUET,
                                      .zstd_level = 3,
                                      .dir = { .path = argv[optind], .fsync = 0 } };
    struct out o = { .tenant = tenant };
    struct lh_err err = { 0 };
    if (archive ? lh_archive_open(&o.archive, &acfg, &err) < 0
                : lh_store_open(&o.store, &cfg, LH_STORE_WRITE, &err) < 0) {
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
        if (emit(&o, evs, n, &stored, &err) < 0) {
            fprintf(stderr, "store_fill: %s\n", err.msg);
            lh_store_close(o.store);
            lh_archive_close(o.archive);
            return 1;
        }
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
    if (emit(&o, fixed, 3, &stored, &err) < 0) {
        fprintf(stderr, "store_fill: %s\n", err.msg);
        lh_store_close(o.store);
        lh_archive_close(o.archive);
        return 1;
    }
    lh_store_close(o.store);
    lh_archive_close(o.archive);
    lh_arena_free(&a);
    printf("stored %lld\n", stored);
    return 0;
}

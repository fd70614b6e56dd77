/* cmd_aggregate.c - `loghaul aggregate`: counts per time bucket and the top
 * values of fields for a query (POST /v1/logs/aggregate). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_query.h"

static void aggregate_usage(FILE *f)
{
    fprintf(f, "usage: loghaul aggregate [options] [WORDS...]\n"
               "\n"
               "Counts the matching events per time bucket (a bar per bucket) and the most\n"
               "frequent values of fields.\n"
               "\n"
               "options:\n"
               "  -i, --interval DURATION bucket size (default: about 100 buckets)\n"
               "      --top FIELD[:N]     the N (default 10) most frequent values, repeatable\n"
               "%s"
               "\n"
               "example:\n"
               "  loghaul aggregate --since 1h -i 5m --top level --top service:5 timeout\n",
            lh_cliq_help);
}

static void bar(FILE *out, uint64_t v, uint64_t max, int color)
{
    int w = max ? (int)((v * 50 + max - 1) / max) : 0;
    if (color)
        fputs("\033[36m", out);
    for (int i = 0; i < w; i++)
        fputs("\u2588", out);
    if (color)
        fputs("\033[0m", out);
}

static void print_text(const struct lh_cliq *c, json_t *j, FILE *out)
{
    json_t *hist = json_object_get(j, "histogram");
    json_t *buckets = json_object_get(hist, "buckets"), *b;
    size_t i;
    uint64_t max = 0;
    json_array_foreach(buckets, i, b) {
        uint64_t n = (uint64_t)json_integer_value(json_object_get(b, "count"));
        if (n > max)
            max = n;
    }
    fprintf(out, "%lld matching events, %lld ms buckets\n",
            (long long)json_integer_value(json_object_get(j, "total_hits")),
            (long long)json_integer_value(json_object_get(hist, "interval_ms")));
    json_array_foreach(buckets, i, b) {
        uint64_t n = (uint64_t)json_integer_value(json_object_get(b, "count"));
        fprintf(out, "%s %8llu ", json_string_value(json_object_get(b, "start")),
                (unsigned long long)n);
        bar(out, n, max, c->color);
        fputc('\n', out);
    }
    json_t *t;
    json_array_foreach(json_object_get(j, "top"), i, t) {
        fprintf(out, "\ntop %s:\n", json_string_value(json_object_get(t, "field")));
        json_t *v;
        size_t k;
        json_array_foreach(json_object_get(t, "values"), k, v)
            fprintf(out, "  %10lld  %s\n", (long long)json_integer_value(json_object_get(v, "count")),
                    json_string_value(json_object_get(v, "value")));
        long long other = json_integer_value(json_object_get(t, "other"));
        long long missing = json_integer_value(json_object_get(t, "missing"));
        if (other)
            fprintf(out, "  %10lld  (other values)\n", other);
        if (missing)
            fprintf(out, "  %10lld  (no value)\n", missing);
    }
}

static int aggregate_run(int argc, char **argv)
{
    static const struct option lo[] = {
        LH_CLIQ_LONG,
        { "interval", required_argument, NULL, 'i' },
        { "top", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    struct lh_cliq c;
    lh_cliq_init(&c, "aggregate");
    struct lh_buf tops = LH_BUF_INIT;
    const char *interval = NULL;
    int ch, code = 2;
    optind = 1;
    while ((ch = getopt_long(argc, argv, LH_CLIQ_SHORT "i:h", lo, NULL)) != -1) {
        int r = lh_cliq_option(&c, ch, optarg);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        switch (ch) {
        case 'i': interval = optarg; break;
        case 'T': {
            const char *colon = strrchr(optarg, ':');
            size_t fl = colon ? (size_t)(colon - optarg) : strlen(optarg);
            long n = colon ? strtol(colon + 1, NULL, 10) : 10;
            if (fl == 0 || n < 1) {
                fprintf(stderr, "loghaul aggregate: --top FIELD[:N]\n");
                goto out;
            }
            lh_buf_puts(&tops, tops.len ? ",{\"field\":" : "{\"field\":");
            lh_buf_json_str(&tops, optarg, fl);
            lh_buf_printf(&tops, ",\"size\":%ld}", n);
            break;
        }
        case 'h': aggregate_usage(stdout); code = 0; goto out;
        default: aggregate_usage(stderr); goto out;
        }
    }
    if (lh_cliq_finish(&c, argc - optind, argv + optind) < 0)
        goto out;
    struct lh_buf body = LH_BUF_INIT;
    struct lh_err err = { 0 };
    lh_buf_puts(&body, "{\"query\":");
    if (lh_cliq_query_object(&c, &body, &err) < 0) {
        fprintf(stderr, "loghaul aggregate: %s\n", err.msg);
        lh_buf_free(&body);
        goto out;
    }
    if (interval) {
        lh_buf_puts(&body, ",\"interval\":");
        lh_buf_json_str(&body, interval, strlen(interval));
    }
    if (tops.len)
        lh_buf_printf(&body, ",\"top\":[%s]", tops.data);
    lh_buf_putc(&body, '}');
    json_t *j = lh_cliq_post(&c, "/v1/logs/aggregate", body.data, &code);
    lh_buf_free(&body);
    if (j) {
        if (c.json) {
            char *s = json_dumps(j, JSON_COMPACT);
            if (s)
                printf("%s\n", s);
            free(s);
        } else {
            print_text(&c, j, stdout);
        }
        json_decref(j);
    }
out:
    lh_buf_free(&tops);
    lh_cliq_free(&c);
    return code;
}

const struct lh_cli_command lh_cli_aggregate = {
    .name = "aggregate",
    .summary = "count matching events per time bucket and their top field values",
    .run = aggregate_run,
    .usage = aggregate_usage,
};

/* cmd_search.c - `loghaul search`: a search through queryd's API, newest
 * first, following next_cursor for as many hits as asked. With --job each
 * page is a search job (POST /v1/logs/search/jobs, then polled), for
 * archive scans longer than a request; a terminal shows their progress. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_query.h"

static void search_usage(FILE *f)
{
    fprintf(f, "usage: loghaul search [options] [WORDS...]\n"
               "\n"
               "Searches queryd (POST /v1/logs/search): every word must match (\"quoted\n"
               "phrases\" in order), filters narrow it down; newest hits first. Lines are\n"
               "coloured by level on a terminal; -o json prints one JSON hit per line.\n"
               "\n"
               "options:\n"
               "  -n, --max N             hits to show (default 100)\n"
               "  -a, --all               every hit (follows the cursor to the end)\n"
               "  -j, --job               run each page as a search job and show its progress\n"
               "                          (long archive scans; no request time limit)\n"
               "%s"
               "\n"
               "examples:\n"
               "  loghaul search timeout -f service=payment-service -f level=ERROR --since 1h\n"
               "  loghaul search '\"connection refused\"' -f 'metadata.duration_ms>=500' -o json\n",
            lh_cliq_help);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Draws "[#####.....] 12/48 hours, 1.2M events" on stderr's line. */
static void progress_bar(json_t *job)
{
    json_t *p = json_object_get(job, "progress");
    long long total = json_integer_value(json_object_get(p, "units_total"));
    long long done = json_integer_value(json_object_get(p, "units_done"));
    long long ev = json_integer_value(json_object_get(p, "events_scanned"));
    char bar[31];
    int fill = total > 0 ? (int)(done * 30 / total) : 0;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %lld/%lld archive hours, %lld events scanned, %.1f s ", bar, done,
            total, ev, (double)json_integer_value(json_object_get(job, "elapsed_ms")) / 1000);
    fflush(stderr);
}

/* One page as a search job: its answer, like a search's, or NULL. */
static json_t *search_job(struct lh_cliq *c, const char *body, int *code)
{
    json_t *created = lh_cliq_call(c, "POST", "/v1/logs/search/jobs", body, code);
    if (!created)
        return NULL;
    char path[128];
    snprintf(path, sizeof(path), "/v1/logs/search/jobs/%s",
             json_string_value(json_object_get(created, "job_id")));
    json_decref(created);
    int bar = isatty(2), drawn = 0;
    json_t *result = NULL;
    for (long wait = 50;; wait = wait < 500 ? wait * 2 : 500) {
        json_t *job = lh_cliq_call(c, "GET", path, NULL, code);
        if (!job)
            break;
        const char *st = json_string_value(json_object_get(job, "status"));
        if (bar) {
            progress_bar(job);
            drawn = 1;
        }
        if (st && strcmp(st, "running") != 0) {
            if (strcmp(st, "done") == 0) {
                result = json_incref(json_object_get(job, "result"));
            } else {
                json_t *e = json_object_get(job, "error");
                const char *msg = json_string_value(json_object_get(e, "message"));
                fprintf(stderr, "%sloghaul search: job %s: %s\n", drawn ? "\n" : "", st,
                        msg ? msg : "no reason given");
                drawn = 0;
                *code = 1;
            }
            json_decref(job);
            break;
        }
        json_decref(job);
        sleep_ms(wait);
    }
    if (drawn)
        fputc('\n', stderr);
    /* forget the finished job on the server; an error here changes nothing */
    int ignored;
    json_decref(lh_cliq_call(c, "DELETE", path, NULL, &ignored));
    return result;
}

static int search_run(int argc, char **argv)
{
    static const struct option lo[] = {
        LH_CLIQ_LONG,
        { "max", required_argument, NULL, 'n' },
        { "all", no_argument, NULL, 'a' },
        { "job", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    struct lh_cliq c;
    lh_cliq_init(&c, "search");
    long long max = 100;
    int all = 0, job = 0, ch, code = 2;
    optind = 1;
    while ((ch = getopt_long(argc, argv, LH_CLIQ_SHORT "n:ajh", lo, NULL)) != -1) {
        int r = lh_cliq_option(&c, ch, optarg);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        switch (ch) {
        case 'n':
            max = strtoll(optarg, NULL, 10);
            if (max < 1) {
                fprintf(stderr, "loghaul search: -n: a number of hits, at least 1\n");
                goto out;
            }
            break;
        case 'a': all = 1; break;
        case 'j': job = 1; break;
        case 'h': search_usage(stdout); code = 0; goto out;
        default: search_usage(stderr); goto out;
        }
    }
    if (lh_cliq_finish(&c, argc - optind, argv + optind) < 0)
        goto out;
    struct lh_buf query = LH_BUF_INIT;
    struct lh_err err = { 0 };
    if (lh_cliq_query_object(&c, &query, &err) < 0) {
        fprintf(stderr, "loghaul search: %s\n", err.msg);
        lh_buf_free(&query);
        goto out;
    }
    char *cursor = NULL;
    long long shown = 0, total = -1;
    const char *rel = "eq";
    json_t *first = NULL;
    code = 0;
    while (all || shown < max) {
        long long want = all ? 1000 : max - shown;
        struct lh_buf body = LH_BUF_INIT;
        lh_buf_printf(&body, "{\"query\":%s,\"pagination\":{\"limit\":%lld", query.data,
                      want > 1000 ? 1000 : want);
        if (cursor) {
            lh_buf_puts(&body, ",\"cursor\":");
            lh_buf_json_str(&body, cursor, strlen(cursor));
        }
        lh_buf_puts(&body, "}}");
        json_t *j = job ? search_job(&c, body.data, &code)
                        : lh_cliq_post(&c, "/v1/logs/search", body.data, &code);
        lh_buf_free(&body);
        if (!j)
            break;
        if (!first) {
            first = json_incref(j);
            total = json_integer_value(json_object_get(j, "total_hits"));
            rel = json_string_value(json_object_get(j, "total_hits_relation"));
        }
        json_t *h;
        size_t i;
        json_array_foreach(json_object_get(j, "logs"), i, h) {
            lh_cliq_print_hit(&c, h, stdout);
            shown++;
        }
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        free(cursor);
        cursor = next ? strdup(next) : NULL;
        json_decref(j);
        if (!cursor)
            break;
    }
    fflush(stdout);
    if (code == 0 && !c.json && first) {
        json_t *tiers = json_object_get(first, "tiers"), *t;
        size_t i;
        fprintf(stderr, "%lld hit%s shown of %s%lld (", shown, shown == 1 ? "" : "s",
                rel && strcmp(rel, "gte") == 0 ? "at least " : "", total);
        json_array_foreach(tiers, i, t) fprintf(stderr, "%s%s", i ? ", " : "",
                                                json_string_value(t));
        fprintf(stderr, ")%s\n", cursor ? "; more with -n or --all" : "");
    }
    json_decref(first);
    free(cursor);
    lh_buf_free(&query);
out:
    lh_cliq_free(&c);
    return code;
}

const struct lh_cli_command lh_cli_search = {
    .name = "search",
    .summary = "search logs through queryd (words, filters, time range)",
    .run = search_run,
    .usage = search_usage,
};

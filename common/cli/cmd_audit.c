/* cmd_audit.c - `loghaul audit`: the delivery ledger's report
 * (GET /v1/ledger, docs/ledger.md) as a table; exits 1 when any host, file
 * and hour has a difference that nothing explains. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_query.h"
#include "lh/conf.h"
#include "lh/time.h"

static void audit_usage(FILE *f)
{
    fprintf(f,
            "usage: loghaul audit [options]\n"
            "\n"
            "Proves that nothing was lost: per host, file and hour (of the collector's\n"
            "receive time) the lines the agent read, the events the collector acknowledged,\n"
            "those the hot store holds now (indexed), archived, dead-lettered, sampled out\n"
            "and dropped by routing, and the difference none of these explains.\n"
            "Exit status: 0 no unexplained difference, 1 a difference, 2 an error.\n"
            "\n"
            "options:\n"
            "  -s, --server, --url URL queryd (default $LOGHAUL_SERVER, else "
            "http://127.0.0.1:7071)\n"
            "  -t, --token TOKEN       bearer token (default $LOGHAUL_TOKEN, else dev-token)\n"
            "      --since DURATION    only hours from DURATION ago (default: queryd's 24h)\n"
            "      --from TIME         first hour (RFC 3339 or unix seconds); --to TIME: end\n"
            "      --host HOST         only this host\n"
            "      --file PATH         only this file\n"
            "      --settle DURATION   rows newer than this count as pending, not as a\n"
            "                          difference (default: queryd's, 10s; 0 also makes\n"
            "                          OpenSearch refresh first)\n"
            "      --archive-settle DURATION  the same for the archive figure (default:\n"
            "                          queryd's, 5m: objects are uploaded after the rollover)\n"
            "      --wait DURATION     ask again (every second) until nothing is pending and\n"
            "                          nothing is unexplained, at most DURATION\n"
            "  -o json, --json         the answer as JSON\n"
            "      --cacert FILE       CA certificate for an https server\n"
            "\n"
            "example:\n"
            "  loghaul audit --url http://127.0.0.1:7071 --token dev-token --since 2h\n");
}

static void put_param(struct lh_buf *b, const char *name, const char *v)
{
    lh_buf_printf(b, "%c%s=", b->len && memchr(b->data, '?', b->len) ? '&' : '?', name);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '/' || *p == ':')
            lh_buf_putc(b, (char)*p);
        else
            lh_buf_printf(b, "%%%02X", *p);
    }
}

static long long num(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void print_table(json_t *j, FILE *out)
{
    json_t *ws = json_object_get(j, "windows"), *w;
    size_t i;
    fprintf(out, "%-16s %-28s %-20s %8s %8s %8s %8s %6s %8s %8s %11s %8s\n", "HOST", "FILE",
            "WINDOW", "READ", "ACKED", "INDEXED", "ARCHIVED", "DLQ", "SAMPLED", "DROPPED",
            "UNEXPLAINED", "PENDING");
    json_array_foreach(ws, i, w) {
        const char *file = json_string_value(json_object_get(w, "file"));
        fprintf(out, "%-16s %-28s %-20s %8lld %8lld %8lld %8lld %6lld %8lld %8lld %11lld %8lld\n",
                json_string_value(json_object_get(w, "host")), file && *file ? file : "-",
                json_string_value(json_object_get(w, "window")), num(w, "read"),
                num(w, "acknowledged"), num(w, "indexed"), num(w, "archived"),
                num(w, "dead_lettered"), num(w, "sampled"), num(w, "dropped"),
                num(w, "unexplained"), num(w, "pending"));
    }
    json_t *t = json_object_get(j, "totals");
    fprintf(out, "%-16s %-28s %-20s %8lld %8lld %8lld %8lld %6lld %8lld %8lld %11lld %8lld\n",
            "total", "", "", num(t, "read"), num(t, "acknowledged"), num(t, "indexed"),
            num(t, "archived"), num(t, "dead_lettered"), num(t, "sampled"), num(t, "dropped"),
            num(t, "unexplained"), num(t, "pending"));
    json_array_foreach(ws, i, w) {
        long long u = num(w, "unexplained");
        json_t *a = json_object_get(w, "archive");
        long long au = a ? num(a, "unexplained") : 0;
        const char *file = json_string_value(json_object_get(w, "file"));
        if (u > 0)
            fprintf(out, "MISSING: host %s file %s window %s: %lld acknowledged event(s) not in "
                    "the hot store and not explained\n",
                    json_string_value(json_object_get(w, "host")), file && *file ? file : "-",
                    json_string_value(json_object_get(w, "window")), u);
        else if (u < 0)
            fprintf(out, "EXTRA: host %s file %s window %s: %lld more event(s) in the hot store "
                    "than acknowledged\n",
                    json_string_value(json_object_get(w, "host")), file && *file ? file : "-",
                    json_string_value(json_object_get(w, "window")), -u);
        if (au)
            fprintf(out, "ARCHIVE: host %s file %s window %s: archive differs by %lld\n",
                    json_string_value(json_object_get(w, "host")), file && *file ? file : "-",
                    json_string_value(json_object_get(w, "window")), au);
    }
    long long pend = num(t, "pending"), ap = num(t, "agent_pending");
    if (pend)
        fprintf(out, "pending: %lld event(s) in hours still being written (not a loss yet)\n",
                pend);
    if (ap)
        fprintf(out, "agent: %lld line(s) read and not yet acknowledged (buffered)\n", ap);
    fprintf(out, "%s\n", json_is_true(json_object_get(j, "ok"))
                             ? "ok: no unexplained difference"
                             : "FAILED: unexplained difference");
}

static int audit_run(int argc, char **argv)
{
    enum { O_HOST = 900, O_FILE, O_SETTLE, O_ASETTLE, O_WAIT, O_JSON };
    static const struct option lo[] = {
        LH_CLIQ_LONG,
        { "url", required_argument, NULL, 's' },
        { "host", required_argument, NULL, O_HOST },
        { "file", required_argument, NULL, O_FILE },
        { "settle", required_argument, NULL, O_SETTLE },
        { "archive-settle", required_argument, NULL, O_ASETTLE },
        { "wait", required_argument, NULL, O_WAIT },
        { "json", no_argument, NULL, O_JSON },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    struct lh_cliq c;
    lh_cliq_init(&c, "audit");
    const char *host = NULL, *file = NULL, *settle = NULL, *asettle = NULL;
    int64_t wait_ms = 0;
    int ch, code = 2;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:t:o:h", lo, NULL)) != -1) {
        int r = lh_cliq_option(&c, ch, optarg);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        int64_t ms;
        switch (ch) {
        case O_HOST: host = optarg; break;
        case O_FILE: file = optarg; break;
        case O_JSON: c.json = 1; break;
        case O_SETTLE:
        case O_ASETTLE:
            if (lh_conf_parse_duration_ms(optarg, &ms) < 0 || ms < 0) {
                fprintf(stderr, "loghaul audit: --%s: not a duration: %s\n",
                        ch == O_SETTLE ? "settle" : "archive-settle", optarg);
                goto out;
            }
            *(ch == O_SETTLE ? &settle : &asettle) = optarg;
            break;
        case O_WAIT:
            if (lh_conf_parse_duration_ms(optarg, &wait_ms) < 0 || wait_ms < 0) {
                fprintf(stderr, "loghaul audit: --wait: not a duration: %s\n", optarg);
                goto out;
            }
            break;
        case 'h': audit_usage(stdout); code = 0; goto out;
        default: audit_usage(stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loghaul audit: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    struct lh_buf path = LH_BUF_INIT;
    lh_buf_puts(&path, "/v1/ledger");
    if (c.since) {
        int64_t ms = 0;
        lh_conf_parse_duration_ms(c.since, &ms);
        char v[32];
        snprintf(v, sizeof(v), "%lld", (long long)(lh_time_now_ns() / LH_NS_PER_SEC - ms / 1000));
        put_param(&path, "from", v);
    }
    if (c.from)
        put_param(&path, "from", c.from);
    if (c.to)
        put_param(&path, "to", c.to);
    if (host)
        put_param(&path, "host", host);
    if (file)
        put_param(&path, "file", file);
    if (settle)
        put_param(&path, "settle", settle);
    if (asettle)
        put_param(&path, "archive_settle", asettle);
    int64_t deadline = lh_time_mono_ns() + wait_ms * LH_NS_PER_MS;
    json_t *j = NULL;
    for (;;) {
        j = lh_cliq_call(&c, "GET", path.data, NULL, &code);
        if (!j) {
            code = 2;
            break;
        }
        int ok = json_is_true(json_object_get(j, "ok"));
        json_t *t = json_object_get(j, "totals");
        long long pend = num(t, "pending") + num(t, "archive_pending");
        if ((ok && pend == 0) || lh_time_mono_ns() >= deadline)
            break;
        json_decref(j);
        j = NULL;
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
    }
    lh_buf_free(&path);
    if (j) {
        if (c.json) {
            char *s = json_dumps(j, JSON_COMPACT);
            if (s)
                printf("%s\n", s);
            free(s);
        } else {
            print_table(j, stdout);
        }
        code = json_is_true(json_object_get(j, "ok")) ? 0 : 1;
        json_decref(j);
    }
out:
    lh_cliq_free(&c);
    return code;
}

const struct lh_cli_command lh_cli_audit = {
    .name = "audit",
    .summary = "prove nothing was lost: the delivery ledger per host, file and hour",
    .run = audit_run,
    .usage = audit_usage,
};

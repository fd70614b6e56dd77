/* bus_verify.c - reads every event on a bus topic (spool or Kafka) and checks
 * what ingest_load sent: each sequence number in [start, start+expect)
 * present exactly once (or at least once with --at-least-once, for runs
 * with failures where a retried batch may land twice, same ids), the
 * message key equal to the event's host, the tenant header right, and ids
 * unique. Exits 0 when everything holds.
 *
 * With --dump FILE, every message with a sequence number in range is also
 * written to FILE as one line "seq<TAB>id<TAB>file<TAB>raw" (raw and file
 * with backslash, tab, CR and LF escaped as \\ \t \r \n), for checkers of
 * the text and order (tests/integration/agent_e2e_check.py).
 *
 * usage: bus_verify --bus spool|kafka [--dir DIR] [--brokers B] [--topic logs]
 *                   --expect N [--start 0] [--tenant demo] [--at-least-once]
 *                   [--timeout 60] [--group G] [--dump FILE] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/arena.h"
#include "lh/bus.h"
#include "lh/event.h"
#include "lh/time.h"

static void dump_str(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '\\': fputs("\\\\", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        case '\n': fputs("\\n", f); break;
        default: fputc(*s, f);
        }
    }
}

int main(int argc, char **argv)
{
    const char *bus_type = NULL, *dir = "./var/spool", *brokers = "127.0.0.1:9092";
    const char *topic = "logs", *tenant = "demo", *group = NULL, *dump_path = NULL;
    long long expect = -1, start = 0;
    int at_least_once = 0;
    double timeout_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--at-least-once")) { at_least_once = 1; continue; }
        if (!v) { fprintf(stderr, "bus_verify: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--bus")) bus_type = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--brokers")) brokers = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else if (!strcmp(a, "--expect")) expect = atoll(v);
        else if (!strcmp(a, "--start")) start = atoll(v);
        else if (!strcmp(a, "--tenant")) tenant = v;
        else if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--timeout")) timeout_s = atof(v);
        else if (!strcmp(a, "--dump")) dump_path = v;
        else { fprintf(stderr, "bus_verify: unknown option %s\n", a); return 2; }
    }
    if (!bus_type || expect < 0) {
        fprintf(stderr, "usage: bus_verify --bus spool|kafka --expect N [options]\n");
        return 2;
    }
    FILE *dump = NULL;
    if (dump_path && !(dump = fopen(dump_path, "w"))) {
        perror(dump_path);
        return 2;
    }
    char groupbuf[64];
    if (!group) {
        snprintf(groupbuf, sizeof(groupbuf), "verify-%lld", (long long)lh_time_now_ns());
        group = groupbuf;
    }
    struct lh_bus_config cfg = { 0 };
    struct lh_err err = { 0 };
    struct lh_bus *bus = NULL;
    struct lh_bus_consumer *c = NULL;
    cfg.type = strcmp(bus_type, "kafka") == 0 ? LH_BUS_KAFKA : LH_BUS_SPOOL;
    cfg.topic = (char *)topic;
    cfg.spool.dir = (char *)dir;
    cfg.spool.segment_bytes = 64 << 20;
    cfg.spool.max_bytes = 1ULL << 40;
    cfg.kafka.brokers = (char *)brokers;
    cfg.kafka.client_id = (char *)"bus_verify";
    cfg.kafka.compression = (char *)"zstd";
    cfg.kafka.delivery_timeout_ms = 30000;
    cfg.kafka.session_timeout_ms = 10000;
    cfg.kafka.max_poll_interval_ms = 300000;
    if (lh_bus_open(&cfg, NULL, &bus, &err) < 0 ||
        lh_bus_consumer_open(bus, group, topic, &c, &err) < 0) {
        fprintf(stderr, "bus_verify: %s\n", err.msg);
        lh_bus_close(bus);
        if (dump)
            fclose(dump);
        return 1;
    }
    unsigned char *seen = calloc((size_t)expect + 1, 1);
    uint64_t *idhash = calloc((size_t)expect + 1, sizeof(*idhash));
    long long total = 0, dup = 0, bad = 0, out_of_range = 0, distinct = 0, id_changed = 0;
    struct lh_arena arena = LH_ARENA_INIT;
    double deadline = (double)lh_time_mono_ns() / 1e9 + timeout_s;
    int64_t last_progress = lh_time_mono_ns();
    while ((double)lh_time_mono_ns() / 1e9 < deadline) {
        struct lh_bus_batch b;
        int n = lh_bus_poll(c, 10000, 500, &b, &err);
        if (n < 0) {
            fprintf(stderr, "bus_verify: poll: %s\n", err.msg);
            break;
        }
        for (int i = 0; i < n; i++) {
            const struct lh_bus_msg *m = &b.msgs[i];
            struct lh_event ev;
            int ledger_row = 0;   /* the collector's delivery-ledger rows are not events */
            for (size_t k = 0; k < m->nheaders; k++)
                ledger_row |= strcmp(m->headers[k].key, "type") == 0 &&
                              strcmp(m->headers[k].value, "ledger") == 0;
            if (ledger_row)
                continue;
            total++;
            if (lh_event_decode(m->value, m->value_len, &arena, &ev, &err) < 0) {
                if (bad++ < 5)
                    fprintf(stderr, "bus_verify: undecodable message: %s\n", err.msg);
                continue;
            }
            const char *hdr_tenant = NULL;
            for (size_t k = 0; k < m->nheaders; k++)
                if (strcmp(m->headers[k].key, "tenant") == 0)
                    hdr_tenant = m->headers[k].value;
            const char *s = ev.raw ? strstr(ev.raw, "seq=") : NULL;
            int key_ok = ev.host && m->key && m->key_len == strlen(ev.host) &&
                         memcmp(m->key, ev.host, m->key_len) == 0;
            if (!s || !key_ok || !hdr_tenant || strcmp(hdr_tenant, tenant) != 0 ||
                !ev.tenant || strcmp(ev.tenant, tenant) != 0 || !ev.id) {
                if (bad++ < 5)
                    fprintf(stderr, "bus_verify: bad message (seq %s, key ok %d, tenant %s)\n",
                            s ? s : "-", key_ok, hdr_tenant ? hdr_tenant : "-");
                continue;
            }
            long long seq = atoll(s + 4) - start;
            if (seq < 0 || seq >= expect) {
                out_of_range++;
                continue;
            }
            /* A record delivered twice (a retried batch) must keep its id:
             * that is what makes the duplicate invisible downstream. */
            uint64_t h = 1469598103934665603ULL;
            for (const char *p = ev.id; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
            if (dump) {
                fprintf(dump, "%lld\t%s\t", seq + start, ev.id);
                dump_str(dump, ev.file);
                fputc('\t', dump);
                dump_str(dump, ev.raw);
                fputc('\n', dump);
            }
            if (seen[seq] < 255)
                seen[seq]++;
            if (seen[seq] == 1) {
                distinct++;
                idhash[seq] = h;
            } else {
                dup++;
                if (idhash[seq] != h && id_changed++ < 5)
                    fprintf(stderr, "bus_verify: seq %lld arrived again with another id %s\n",
                            seq + start, ev.id);
            }
            lh_arena_reset(&arena);
        }
        if (n > 0) {
            lh_bus_commit(c, &b, &err);
            lh_bus_batch_release(c, &b);
            last_progress = lh_time_mono_ns();
        }
        if (distinct == expect && lh_time_mono_ns() - last_progress > 2000000000LL)
            break;   /* all there, and nothing more arrived for 2 s */
    }
    long long missing = expect - distinct;
    for (long long i = 0, shown = 0; i < expect && shown < 5; i++)
        if (!seen[i]) {
            fprintf(stderr, "bus_verify: missing seq %lld\n", i + start);
            shown++;
        }
    printf("bus_verify: %lld messages, %lld distinct of %lld expected, %lld missing, "
           "%lld duplicates (%lld with another id), %lld bad, %lld out of range\n",
           total, distinct, expect, missing, dup, id_changed, bad, out_of_range);
    if (dump && fclose(dump) != 0) {
        perror(dump_path);
        bad++;
    }
    free(seen);
    free(idhash);
    lh_arena_free(&arena);
    lh_bus_consumer_close(c);
    lh_bus_close(bus);
    return missing == 0 && bad == 0 && id_changed == 0 && (at_least_once || dup == 0) ? 0 : 1;
}

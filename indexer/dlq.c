/* dlq.c - reading and replaying the dead-letter queue (see dlq.h). */
#include "dlq.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lh/buf.h"

static const char *header(const struct lh_bus_msg *m, const char *key)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->headers[i].key && strcmp(m->headers[i].key, key) == 0)
            return m->headers[i].value ? m->headers[i].value : "";
    return "";
}

void lh_dlq_entry_of(const struct lh_bus_msg *msg, struct lh_dlq_entry *out)
{
    out->msg = msg;
    out->reason = header(msg, "reason");
    out->sink = header(msg, "sink");
    out->tenant = header(msg, "tenant");
    out->origin = header(msg, "origin");
    out->failed_at = header(msg, "failed_at");
}

int lh_dlq_match(const struct lh_dlq_filter *f, const struct lh_dlq_entry *e)
{
    if (!f)
        return 1;
    if (f->tenant && strcmp(f->tenant, e->tenant) != 0)
        return 0;
    if (f->sink) {
        const char *want = strcmp(f->sink, "-") == 0 ? "" : f->sink;
        if (strcmp(want, e->sink) != 0)
            return 0;
    }
    if (f->reason && !strstr(e->reason, f->reason))
        return 0;
    return 1;
}

/* How many entries a scan reads: those there when it began (the first
 * batch and the lag behind it), so that a replay does not chase the dead
 * letters its own replays make; 0 when the bus cannot tell. */
static size_t end_of_scan(struct lh_bus_consumer *c, size_t first_batch)
{
    int64_t lag = 0;
    struct lh_err err = { 0 };
    if (lh_bus_consumer_lag(c, &lag, &err) < 0 || lag < 0)
        return 0;
    return first_batch + (size_t)lag;
}

/* Polls the scan's consumer: the next batch, 0 at the end, or an error. */
static int next_batch(struct lh_bus_consumer *c, const struct lh_dlq_scan *scan, int first,
                      size_t room, struct lh_bus_batch *b, struct lh_err *err)
{
    int wait = first ? scan->first_wait_ms : scan->idle_wait_ms;
    return lh_bus_poll(c, room < 1000 ? room : 1000, wait > 0 ? wait : 0, b, err);
}

/* Entries a poll may take: no more than max and limit (0: unbounded) leave. */
static size_t room_left(size_t seen, size_t max, size_t limit)
{
    size_t room = 1000;
    if (max && max - seen < room)
        room = max - seen;
    if (limit && limit - seen < room)
        room = limit - seen;
    return room;
}

int lh_dlq_each(struct lh_bus *bus, const struct lh_dlq_scan *scan,
                int (*visit)(void *arg, const struct lh_dlq_entry *e), void *arg,
                struct lh_err *err)
{
    struct lh_bus_consumer *c = NULL;
    int rc = lh_bus_consumer_open(bus, scan->group ? scan->group : LH_DLQ_GROUP, scan->topic,
                                  &c, err);
    if (rc < 0)
        return rc;
    size_t seen = 0, limit = 0;
    int first = 1, stop = 0;
    while (!stop) {
        struct lh_bus_batch b = { 0 };
        int n = next_batch(c, scan, first, room_left(seen, scan->max, limit), &b, err);
        if (n <= 0) {
            rc = n;
            break;
        }
        if (first)
            limit = end_of_scan(c, b.n);
        first = 0;
        for (size_t i = 0; i < b.n && !stop; i++) {
            struct lh_dlq_entry e;
            lh_dlq_entry_of(&b.msgs[i], &e);
            int v = visit(arg, &e);
            seen++;
            if (v < 0) {
                rc = v;
                stop = 1;
            } else if (v > 0 || (scan->max && seen >= scan->max) || (limit && seen >= limit)) {
                stop = 1;
            }
        }
        lh_bus_batch_release(c, &b);
    }
    lh_bus_consumer_close(c);
    return rc < 0 ? rc : (int)seen;
}

int lh_dlq_replay(struct lh_bus *bus, const struct lh_dlq_scan *scan, const char *target,
                  const struct lh_dlq_filter *f, int include_undecodable, int dry_run,
                  struct lh_dlq_replay_stats *st, struct lh_err *err)
{
    memset(st, 0, sizeof(*st));
    struct lh_bus_consumer *c = NULL;
    int rc = lh_bus_consumer_open(bus, scan->group ? scan->group : LH_DLQ_GROUP, scan->topic,
                                  &c, err);
    if (rc < 0)
        return rc;
    int first = 1;
    size_t limit = 0;
    struct lh_bus_msg *out = NULL;
    struct lh_bus_header *hdrs = NULL;
    char (*topics)[256] = NULL;
    char *done = NULL;
    for (;;) {
        if ((scan->max && st->seen >= scan->max) || (limit && st->seen >= limit))
            break;
        struct lh_bus_batch b = { 0 };
        int n = next_batch(c, scan, first, room_left((size_t)st->seen, scan->max, limit), &b,
                           err);
        if (n <= 0) {
            rc = n;
            break;
        }
        if (first)
            limit = end_of_scan(c, b.n);
        first = 0;
        size_t take = b.n;   /* polls never ask for more than max and limit allow */
        free(out);
        free(hdrs);
        free(topics);
        free(done);
        out = calloc(take, sizeof(*out));
        hdrs = calloc(take * 3, sizeof(*hdrs));
        topics = calloc(take, sizeof(*topics));
        done = calloc(take, 1);
        if (!out || !hdrs || !topics || !done) {
            lh_bus_batch_release(c, &b);
            rc = lh_err_set(err, LH_ENOMEM, "dlq replay: out of memory");
            break;
        }
        size_t m = 0;
        for (size_t i = 0; i < take; i++) {
            struct lh_dlq_entry e;
            lh_dlq_entry_of(&b.msgs[i], &e);
            st->seen++;
            if (!lh_dlq_match(f, &e) || (!e.sink[0] && !include_undecodable)) {
                st->skipped++;
                continue;
            }
            if ((rc = lh_bus_topic_expand(target, e.tenant[0] ? e.tenant : "default",
                                          topics[m], sizeof(topics[m]), err)) < 0)
                break;
            /* replay_sink: the pipeline delivers it to the sink that refused it only */
            hdrs[3 * m] = (struct lh_bus_header){ "tenant", e.tenant };
            hdrs[3 * m + 1] = (struct lh_bus_header){ "replay_of", e.origin };
            hdrs[3 * m + 2] = (struct lh_bus_header){ "replay_sink", e.sink };
            out[m] = (struct lh_bus_msg){ .key = b.msgs[i].key, .key_len = b.msgs[i].key_len,
                                          .value = b.msgs[i].value,
                                          .value_len = b.msgs[i].value_len,
                                          .headers = &hdrs[3 * m], .nheaders = 3 };
            m++;
        }
        /* Produce per target topic, then commit what this batch read. */
        struct lh_bus_msg *grp = rc == 0 && m ? calloc(m, sizeof(*grp)) : NULL;
        if (rc == 0 && m && !grp)
            rc = lh_err_set(err, LH_ENOMEM, "dlq replay: out of memory");
        for (size_t i = 0; rc == 0 && !dry_run && i < m; i++) {
            if (done[i])
                continue;
            size_t g = 0;
            for (size_t k = i; k < m; k++)
                if (!done[k] && strcmp(topics[k], topics[i]) == 0) {
                    grp[g++] = out[k];
                    done[k] = 1;
                }
            rc = lh_bus_produce(bus, topics[i], grp, g, err);
            if (rc < 0)
                lh_err_wrap(err, "dlq replay: produce to %s", topics[i]);
        }
        free(grp);
        if (rc == 0) {
            st->replayed += m;
            if (!dry_run && (rc = lh_bus_commit(c, &b, err)) < 0)
                lh_err_wrap(err, "dlq replay: commit");
        }
        lh_bus_batch_release(c, &b);
        if (rc < 0)
            break;
    }
    free(out);
    free(hdrs);
    free(topics);
    free(done);
    lh_bus_consumer_close(c);
    return rc < 0 ? rc : 0;
}

/* ---- printing ---- */

static void put_value_cut(FILE *f, const char *v, size_t n, size_t width)
{
    size_t k = n < width ? n : width;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)v[i];
        fputc(ch == '\n' || ch == '\r' || ch == '\t' ? ' ' : ch, f);
    }
    if (n > k)
        fputs("...", f);
}

void lh_dlq_print_line(FILE *f, const struct lh_dlq_entry *e, size_t width)
{
    const struct lh_bus_msg *m = e->msg;
    fprintf(f, "%" PRId32 ":%" PRId64 " %s tenant=%s sink=%s %s | ", m->partition, m->offset,
            e->failed_at[0] ? e->failed_at : "-", e->tenant[0] ? e->tenant : "-",
            e->sink[0] ? e->sink : "-", e->reason);
    put_value_cut(f, m->value ? m->value : "", m->value_len, width ? width : 160);
    fputc('\n', f);
}

static void json_str(struct lh_buf *b, const char *s)
{
    lh_buf_json_str(b, s, strlen(s));
}

void lh_dlq_print_json(FILE *f, const struct lh_dlq_entry *e)
{
    const struct lh_bus_msg *m = e->msg;
    struct lh_buf b = LH_BUF_INIT;
    lh_buf_printf(&b, "{\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"reason\":",
                  m->partition, m->offset);
    json_str(&b, e->reason);
    lh_buf_puts(&b, ",\"sink\":");
    json_str(&b, e->sink);
    lh_buf_puts(&b, ",\"tenant\":");
    json_str(&b, e->tenant);
    lh_buf_puts(&b, ",\"origin\":");
    json_str(&b, e->origin);
    lh_buf_puts(&b, ",\"failed_at\":");
    json_str(&b, e->failed_at);
    lh_buf_puts(&b, ",\"event\":");
    json_error_t je;
    json_t *j = m->value ? json_loadb(m->value, m->value_len, 0, &je) : NULL;
    if (j && json_is_object(j))
        lh_buf_append(&b, m->value, m->value_len);
    else
        lh_buf_json_str(&b, m->value ? m->value : "", m->value_len);
    json_decref(j);
    lh_buf_puts(&b, "}\n");
    if (b.data)
        fwrite(b.data, 1, b.len, f);
    lh_buf_free(&b);
}

void lh_dlq_print_full(FILE *f, const struct lh_dlq_entry *e)
{
    const struct lh_bus_msg *m = e->msg;
    fprintf(f, "position:   %s %" PRId32 ":%" PRId64 "\n", m->topic ? m->topic : "",
            m->partition, m->offset);
    for (size_t i = 0; i < m->nheaders; i++)
        fprintf(f, "%-11s %s\n", m->headers[i].key, m->headers[i].value);
    if (m->key_len)
        fprintf(f, "key:        %.*s\n", (int)m->key_len, m->key);
    fputs("event:\n", f);
    json_error_t je;
    json_t *j = m->value ? json_loadb(m->value, m->value_len, 0, &je) : NULL;
    char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (pretty)
        fprintf(f, "%s\n", pretty);
    else
        fprintf(f, "%.*s\n", (int)m->value_len, m->value ? m->value : "");
    free(pretty);
    json_decref(j);
}

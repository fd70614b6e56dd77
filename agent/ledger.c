/* ledger.c - per-file line accounting of loghaul-agent (see ledger.h). */
#include "ledger.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh/err.h"
#include "lh/uuid.h"

#define LEDGER_BUCKETS 1024
#define LEDGER_WINDOWS 64

/* A named counter pair in a small list (drop reasons, errors, flags). */
struct named {
    struct named *next;
    char *name;
    uint64_t lines;
    uint64_t bytes;
};

struct row {
    struct row *next;
    char *file;
    struct lh_ledger_file c;
    struct named *drops;       /* per-reason drops of this file */
};

struct lh_ledger {
    pthread_mutex_t mu;
    struct row *buckets[LEDGER_BUCKETS];
    size_t nrows;
    struct lh_ledger_file total;
    struct named *drops;       /* totals per drop reason */
    struct named *losses;      /* totals per loss reason (lines = windows, bytes) */
    struct named *errors;
    struct named *flags;
    struct lh_loss_window windows[LEDGER_WINDOWS];
    size_t nwindows;           /* total ever recorded; ring index = n % LEDGER_WINDOWS */
    char boot[33];             /* this ledger's id: its counters start at 0 with it */
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct named *named_get(struct named **head, const char *name)
{
    for (struct named *n = *head; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n;
    struct named *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strdup(name);
    if (!n->name) {
        free(n);
        return NULL;
    }
    n->next = *head;
    *head = n;
    return n;
}

static void named_free(struct named *n)
{
    while (n) {
        struct named *next = n->next;
        free(n->name);
        free(n);
        n = next;
    }
}

static struct row **row_slot(struct lh_ledger *l, const char *file)
{
    struct row **p = &l->buckets[str_hash(file) % LEDGER_BUCKETS];
    while (*p && strcmp((*p)->file, file) != 0)
        p = &(*p)->next;
    return p;
}

/* The row of file, created on first use; NULL when out of memory. */
static struct row *row_get(struct lh_ledger *l, const char *file)
{
    if (!file)
        return NULL;
    struct row **p = row_slot(l, file);
    if (*p)
        return *p;
    struct row *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->file = strdup(file);
    if (!r->file) {
        free(r);
        return NULL;
    }
    *p = r;
    l->nrows++;
    return r;
}

struct lh_ledger *lh_ledger_create(void)
{
    struct lh_ledger *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    struct lh_uuid u;
    if (lh_uuid_v4(&u, NULL) < 0 || pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    lh_uuid_format_hex(&u, l->boot);
    return l;
}

const char *lh_ledger_boot(const struct lh_ledger *l)
{
    return l->boot;
}

void lh_ledger_destroy(struct lh_ledger *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < LEDGER_BUCKETS; i++) {
        struct row *r = l->buckets[i];
        while (r) {
            struct row *next = r->next;
            named_free(r->drops);
            free(r->file);
            free(r);
            r = next;
        }
    }
    named_free(l->drops);
    named_free(l->losses);
    named_free(l->errors);
    named_free(l->flags);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void lh_ledger_read(struct lh_ledger *l, const char *file, uint64_t lines, uint64_t bytes)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    struct row *r = row_get(l, file);
    if (r) {
        r->c.lines_read += lines;
        r->c.bytes_read += bytes;
    }
    l->total.lines_read += lines;
    l->total.bytes_read += bytes;
    pthread_mutex_unlock(&l->mu);
}

void lh_ledger_acked(struct lh_ledger *l, const char *file, uint64_t lines)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    struct row *r = row_get(l, file);
    if (r)
        r->c.lines_acked += lines;
    l->total.lines_acked += lines;
    pthread_mutex_unlock(&l->mu);
}

void lh_ledger_drop(struct lh_ledger *l, const char *file, const char *reason, uint64_t lines,
                    uint64_t bytes)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    struct row *r = row_get(l, file);
    if (r) {
        r->c.lines_dropped += lines;
        r->c.bytes_dropped += bytes;
        struct named *n = named_get(&r->drops, reason);
        if (n) {
            n->lines += lines;
            n->bytes += bytes;
        }
    }
    l->total.lines_dropped += lines;
    l->total.bytes_dropped += bytes;
    struct named *n = named_get(&l->drops, reason);
    if (n) {
        n->lines += lines;
        n->bytes += bytes;
    }
    pthread_mutex_unlock(&l->mu);
}

void lh_ledger_loss(struct lh_ledger *l, const char *file, const char *reason, uint64_t start,
                    uint64_t end)
{
    if (!l || end <= start)
        return;
    uint64_t bytes = end - start;
    pthread_mutex_lock(&l->mu);
    struct row *r = row_get(l, file);
    if (r) {
        r->c.bytes_lost += bytes;
        r->c.loss_windows++;
    }
    l->total.bytes_lost += bytes;
    l->total.loss_windows++;
    struct named *n = named_get(&l->losses, reason);
    if (n) {
        n->lines++;
        n->bytes += bytes;
    }
    struct lh_loss_window *w = &l->windows[l->nwindows % LEDGER_WINDOWS];
    snprintf(w->path, sizeof(w->path), "%s", file ? file : "");
    snprintf(w->reason, sizeof(w->reason), "%s", reason);
    w->start = start;
    w->end = end;
    l->nwindows++;
    pthread_mutex_unlock(&l->mu);
}

static void named_add(struct lh_ledger *l, struct named **head, const char *name, uint64_t n)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    struct named *e = named_get(head, name);
    if (e)
        e->lines += n;
    pthread_mutex_unlock(&l->mu);
}

void lh_ledger_error(struct lh_ledger *l, const char *reason)
{
    if (l)
        named_add(l, &l->errors, reason, 1);
}

void lh_ledger_flag(struct lh_ledger *l, const char *flag, uint64_t n)
{
    if (l && n)
        named_add(l, &l->flags, flag, n);
}

void lh_ledger_retire(struct lh_ledger *l, const char *file)
{
    if (!l || !file)
        return;
    pthread_mutex_lock(&l->mu);
    struct row **p = row_slot(l, file);
    struct row *r = *p;
    if (r) {
        *p = r->next;
        named_free(r->drops);
        free(r->file);
        free(r);
        l->nrows--;
    }
    pthread_mutex_unlock(&l->mu);
}

int lh_ledger_get(struct lh_ledger *l, const char *file, struct lh_ledger_file *out)
{
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    if (!file) {
        *out = l->total;
    } else {
        struct row *r = *row_slot(l, file);
        if (r)
            *out = r->c;
        else
            rc = LH_ENOTFOUND;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static uint64_t named_lines(struct named *head, const char *name)
{
    for (struct named *n = head; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n->lines;
    return 0;
}

uint64_t lh_ledger_dropped(struct lh_ledger *l, const char *file, const char *reason)
{
    uint64_t v = 0;
    pthread_mutex_lock(&l->mu);
    if (!file) {
        v = named_lines(l->drops, reason);
    } else {
        struct row *r = *row_slot(l, file);
        if (r)
            v = named_lines(r->drops, reason);
    }
    pthread_mutex_unlock(&l->mu);
    return v;
}

uint64_t lh_ledger_errors(struct lh_ledger *l, const char *reason)
{
    pthread_mutex_lock(&l->mu);
    uint64_t v = named_lines(l->errors, reason);
    pthread_mutex_unlock(&l->mu);
    return v;
}

uint64_t lh_ledger_flags(struct lh_ledger *l, const char *flag)
{
    pthread_mutex_lock(&l->mu);
    uint64_t v = named_lines(l->flags, flag);
    pthread_mutex_unlock(&l->mu);
    return v;
}

size_t lh_ledger_loss_windows(struct lh_ledger *l, struct lh_loss_window *out, size_t max)
{
    pthread_mutex_lock(&l->mu);
    size_t have = l->nwindows < LEDGER_WINDOWS ? l->nwindows : LEDGER_WINDOWS;
    size_t n = have < max ? have : max;
    size_t first = l->nwindows - n;
    for (size_t i = 0; i < n; i++)
        out[i] = l->windows[(first + i) % LEDGER_WINDOWS];
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Prometheus label value escaping: \\, \" and \n. */
static int put_label(struct lh_buf *b, const char *key, const char *v)
{
    int rc = lh_buf_printf(b, "%s=\"", key);
    for (const char *p = v; rc == 0 && *p; p++) {
        if (*p == '\\' || *p == '"')
            rc = lh_buf_putc(b, '\\') || lh_buf_putc(b, *p) ? LH_ENOMEM : 0;
        else if (*p == '\n')
            rc = lh_buf_puts(b, "\\n");
        else
            rc = lh_buf_putc(b, *p);
    }
    return rc ? rc : lh_buf_putc(b, '"');
}

static int render_head(struct lh_buf *b, const char *name, const char *type, const char *help)
{
    return lh_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{key="value"} n */
static int render_named(struct lh_buf *b, const char *metric, const char *key,
                        struct named *head, int bytes)
{
    int rc = 0;
    for (struct named *n = head; rc == 0 && n; n = n->next) {
        rc = lh_buf_printf(b, "%s{", metric);
        if (rc == 0)
            rc = put_label(b, key, n->name);
        if (rc == 0)
            rc = lh_buf_printf(b, "} %llu\n",
                               (unsigned long long)(bytes ? n->bytes : n->lines));
    }
    return rc;
}

static int render_rows(struct lh_ledger *l, struct lh_buf *b, const char *metric, size_t off)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < LEDGER_BUCKETS; i++)
        for (struct row *r = l->buckets[i]; rc == 0 && r; r = r->next) {
            uint64_t v = *(const uint64_t *)((const char *)&r->c + off);
            rc = lh_buf_printf(b, "%s{", metric);
            if (rc == 0)
                rc = put_label(b, "file", r->file);
            if (rc == 0)
                rc = lh_buf_printf(b, "} %llu\n", (unsigned long long)v);
        }
    return rc;
}

int lh_ledger_render(struct lh_ledger *l, struct lh_buf *b)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } per_file[] = {
        { "loghaul_agent_file_lines_read_total", "Lines read from the file.",
          offsetof(struct lh_ledger_file, lines_read) },
        { "loghaul_agent_file_lines_acked_total", "Lines acknowledged by the collector.",
          offsetof(struct lh_ledger_file, lines_acked) },
        { "loghaul_agent_file_lines_dropped_total", "Lines dropped, all reasons.",
          offsetof(struct lh_ledger_file, lines_dropped) },
        { "loghaul_agent_file_lost_bytes_total", "Bytes in loss windows (never read).",
          offsetof(struct lh_ledger_file, bytes_lost) },
    };
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; rc == 0 && i < sizeof(per_file) / sizeof(per_file[0]); i++) {
        rc = render_head(b, per_file[i].name, "counter", per_file[i].help);
        if (rc == 0)
            rc = render_rows(l, b, per_file[i].name, per_file[i].off);
    }
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_lines_read_total", "counter",
                         "Lines read from all files.");
    if (rc == 0)
        rc = lh_buf_printf(b, "loghaul_agent_lines_read_total %llu\n",
                           (unsigned long long)l->total.lines_read);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_lines_acked_total", "counter",
                         "Lines acknowledged by the collector, all files.");
    if (rc == 0)
        rc = lh_buf_printf(b, "loghaul_agent_lines_acked_total %llu\n",
                           (unsigned long long)l->total.lines_acked);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_lines_dropped_total", "counter",
                         "Lines dropped by reason, all files.");
    if (rc == 0)
        rc = render_named(b, "loghaul_agent_lines_dropped_total", "reason", l->drops, 0);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_bytes_dropped_total", "counter",
                         "Bytes read but not shipped, by reason.");
    if (rc == 0)
        rc = render_named(b, "loghaul_agent_bytes_dropped_total", "reason", l->drops, 1);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_loss_windows_total", "counter",
                         "Ranges of file bytes that could not be read, by reason.");
    if (rc == 0)
        rc = render_named(b, "loghaul_agent_loss_windows_total", "reason", l->losses, 0);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_lost_bytes_total", "counter",
                         "Bytes in loss windows, by reason.");
    if (rc == 0)
        rc = render_named(b, "loghaul_agent_lost_bytes_total", "reason", l->losses, 1);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_tail_errors_total", "counter",
                         "Tail errors (open, read, checkpoint) by reason.");
    if (rc == 0)
        rc = render_named(b, "loghaul_agent_tail_errors_total", "reason", l->errors, 0);
    if (rc == 0)
        rc = render_head(b, "loghaul_agent_lines_flagged_total", "counter",
                         "Records marked split, truncated, invalid_utf8, binary, parse_error.");
    if (rc == 0)
        rc = render_named(b, "loghaul_agent_lines_flagged_total", "flag", l->flags, 0);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

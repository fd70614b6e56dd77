/* agent.c - loghaul-agent's core wiring on a libuv loop (see agent.h). */
#include "agent.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "lh/log.h"
#include "lh/time.h"

#ifndef LH_VERSION
#define LH_VERSION "0.1.0"
#endif

#define OFF(f) offsetof(struct lh_agent_config, f)
static const struct lh_opt mask_opts[] = {
    { LH_OPT_BOOL, "enabled", "false", offsetof(struct lh_agent_mask, enabled),
      "mask PII in messages before they leave the host" },
    { LH_OPT_SECTION, "rules", NULL, offsetof(struct lh_agent_mask, rules),
      "what to mask (e-mails, card numbers, patterns)", .sub = lh_mask_opts },
    { 0 }
};

const struct lh_opt lh_agent_opts[] = {
    { LH_OPT_SECTION, "tail", NULL, OFF(tail), "files to tail", .sub = lh_tail_opts },
    { LH_OPT_SECTION, "batch", NULL, OFF(batch), "batch bounds and compression",
      .sub = lh_batch_opts },
    { LH_OPT_SECTION, "ship", NULL, OFF(ship), "collectors to ship to", .sub = lh_ship_opts },
    { LH_OPT_SECTION, "buffer", NULL, OFF(buffer),
      "disk buffer for batches no collector can take, and sampling as it fills",
      .sub = lh_dbuf_opts },
    { LH_OPT_SECTION, "mask", NULL, OFF(mask), "PII masking at the edge", .sub = mask_opts },
    { LH_OPT_STR, "host_id", NULL, OFF(host_id),
      "host name sent with every batch (default: /etc/machine-id, else the hostname)" },
    { LH_OPT_STR, "cluster_name", NULL, OFF(cluster_name), "cluster sent with every batch" },
    { LH_OPT_STR, "region", NULL, OFF(region), "region sent with every batch" },
    { LH_OPT_DURATION, "checkpoint_interval", "200ms", OFF(checkpoint_interval_ms),
      "save acknowledged positions at most this often (after a crash up to this much is "
      "sent again)" },
    { 0 }
};
#undef OFF

struct ack_file {
    uint64_t uid, end;
};

/* A sealed batch whose records the tail has not been acknowledged for. */
struct pend {
    uint64_t seq;
    struct ack_file *files;
    uint32_t n;
    int done;
};

struct lh_agent {
    uv_loop_t *loop;
    const struct lh_agent_config *cfg;
    struct lh_shipper_meta meta;
    char host_id[256];
    struct lh_ledger *ledger;
    struct lh_metrics *metrics;        /* the one series go to */
    struct lh_metrics *own_metrics;    /* when the caller gave none */
    struct lh_dbuf *dbuf;
    struct lh_ship *ship;
    struct lh_batcher *batcher;
    struct lh_masker *masker;
    struct lh_buf maskbuf;
    unsigned long *mask_counts;
    struct lh_counter **mask_ctr;
    size_t nrules;
    struct lh_tail *tail;

    uv_timer_t timer;
    uv_async_t async;
    uv_poll_t *ipoll;
    int ipoll_active;
    int open_handles;

    struct pend *fifo;
    size_t head, n, cap;
    uint64_t next_seq;
    uint64_t acked_seq;                /* the last batch acknowledged to the tail */
    int64_t last_ckpt_ms;
    int ckpt_dirty;
    int64_t wall_ns;
    int64_t now_ms;

    int retail;                        /* recreate the tail once fifo is empty */
    int draining, drain_fired, destroying;
    void (*drain_done)(void *);
    void *drain_arg;

    struct lh_counter *c_batches;
    struct lh_agent_stats st;
};

static int64_t mono_ms(void)
{
    return lh_time_mono_ns() / LH_NS_PER_MS;
}

/* ---- own files ------------------------------------------------------------- */

/* Absolute, with "/./" and "//" removed (no symlinks resolved). */
static void absolute(const char *p, char *out, size_t n)
{
    char tmp[PATH_MAX * 2];
    if (p[0] == '/') {
        snprintf(tmp, sizeof(tmp), "%s", p);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            snprintf(cwd, sizeof(cwd), "/");
        snprintf(tmp, sizeof(tmp), "%s/%s", cwd, p);
    }
    size_t o = 0;
    for (size_t i = 0; tmp[i] && o + 1 < n;) {
        if (tmp[i] == '/' && tmp[i + 1] == '.' && (tmp[i + 2] == '/' || !tmp[i + 2])) {
            i += 2;
            continue;
        }
        if (tmp[i] == '/' && tmp[i + 1] == '/') {
            i++;
            continue;
        }
        out[o++] = tmp[i++];
    }
    out[o] = '\0';
}

static int excluded(const struct lh_tail_config *t, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < t->exclude.n; i++) {
        const char *x = t->exclude.v[i];
        if (strchr(x, '/') ? fnmatch(x, path, FNM_PATHNAME) == 0 : fnmatch(x, base, 0) == 0)
            return 1;
    }
    return 0;
}

/* Fails when a tail glob matches one of the agent's own files. */
static int check_own_files(const struct lh_agent_config *cfg, const char *own_log,
                           struct lh_err *err)
{
    char own[4][PATH_MAX];
    const char *what[4];
    size_t n = 0;
    if (own_log && *own_log) {
        absolute(own_log, own[n], PATH_MAX);
        what[n++] = "its own log file";
    }
    char link[PATH_MAX];
    struct stat st;
    ssize_t l = readlink("/proc/self/fd/2", link, sizeof(link) - 1);
    if (l > 0 && fstat(2, &st) == 0 && S_ISREG(st.st_mode)) {
        link[l] = '\0';
        absolute(link, own[n], PATH_MAX);
        what[n++] = "its stderr";
    }
    if (cfg->tail.checkpoint) {
        absolute(cfg->tail.checkpoint, own[n], PATH_MAX);
        what[n++] = "its checkpoint";
    }
    char b[PATH_MAX];
    snprintf(b, sizeof(b), "%s/00000000000000000001.batch",
             cfg->buffer.dir ? cfg->buffer.dir : "./var/agent/buffer");
    absolute(b, own[n], PATH_MAX);
    what[n++] = "its disk buffer";
    for (size_t i = 0; i < cfg->tail.include.n; i++) {
        char pat[PATH_MAX];
        absolute(cfg->tail.include.v[i], pat, sizeof(pat));
        for (size_t k = 0; k < n; k++)
            if (fnmatch(pat, own[k], FNM_PATHNAME | FNM_PERIOD) == 0 &&
                !excluded(&cfg->tail, own[k]))
                return lh_err_set(err, LH_EINVAL,
                                  "tail.include: %s matches %s (%s): the agent must never "
                                  "ship its own output; exclude it or move it",
                                  cfg->tail.include.v[i], own[k], what[k]);
    }
    return 0;
}

static void emit_nothing(void *arg, const struct lh_record *rec)
{
    (void)arg;
    (void)rec;
}

int lh_agent_config_check(const struct lh_agent_config *cfg, const char *own_log_file,
                          struct lh_err *err)
{
    int rc;
    if (!cfg->tail.include.n)
        return lh_err_set(err, LH_EINVAL, "tail.include: no patterns");
    if ((rc = lh_batch_config_check(&cfg->batch, err)) < 0 ||
        (rc = lh_dbuf_config_check(&cfg->buffer, err)) < 0 ||
        (rc = lh_ship_config_check(&cfg->ship, err)) < 0 ||
        (rc = check_own_files(cfg, own_log_file, err)) < 0)
        return rc;
    if (cfg->checkpoint_interval_ms < 0)
        return lh_err_set(err, LH_EINVAL, "checkpoint_interval: must not be negative");
    if (cfg->mask.enabled) {
        struct lh_masker *m;
        if ((rc = lh_masker_create(&cfg->mask.rules, &m, err)) < 0)
            return lh_err_wrap(err, "mask.rules");
        lh_masker_destroy(m);
    }
    /* The tail compiles its format and multiline rules at creation. */
    struct lh_tail_config tc = cfg->tail;
    tc.checkpoint = NULL;
    tc.inotify = 0;
    struct lh_ledger *l = lh_ledger_create();
    struct lh_tail *t = NULL;
    if (!l)
        return lh_err_set(err, LH_ENOMEM, "out of memory");
    rc = lh_tail_create(&tc, l, emit_nothing, NULL, &t, err);
    lh_tail_destroy(t);
    lh_ledger_destroy(l);
    return rc < 0 ? lh_err_wrap(err, "tail") : 0;
}

/* ---- acks and checkpoints ---------------------------------------------------- */

static void pop_done(struct lh_agent *a)
{
    while (a->head < a->n && a->fifo[a->head].done) {
        struct pend *p = &a->fifo[a->head];
        for (uint32_t i = 0; i < p->n; i++)
            if (a->tail && p->files[i].uid)
                lh_tail_ack(a->tail, p->files[i].uid, p->files[i].end, 0);
        if (p->n)
            a->ckpt_dirty = 1;
        a->acked_seq = p->seq;
        free(p->files);
        a->head++;
        a->st.acked_batches++;
    }
    if (a->head == a->n) {
        a->head = a->n = 0;
    } else if (a->head > 64 && a->head * 2 > a->n) {
        memmove(a->fifo, a->fifo + a->head, (a->n - a->head) * sizeof(*a->fifo));
        a->n -= a->head;
        a->head = 0;
    }
    a->st.pending = a->n - a->head;
}

static void take_durable(struct lh_agent *a)
{
    if (!a->ship)
        return;
    uint64_t seqs[64];
    size_t k;
    while ((k = lh_ship_take_durable(a->ship, seqs, 64)) > 0)
        for (size_t i = 0; i < k; i++) {
            if (a->head >= a->n || seqs[i] < a->fifo[a->head].seq)
                continue;
            size_t at = a->head + (size_t)(seqs[i] - a->fifo[a->head].seq);
            if (at < a->n && a->fifo[at].seq == seqs[i])
                a->fifo[at].done = 1;
        }
    pop_done(a);
}

/* Saves the checkpoint (it says which batches it includes), then lets the
 * shipper delete the delivered write-ahead files it covers. */
static void save_checkpoint(struct lh_agent *a, int64_t now)
{
    if (!a->tail || !a->ckpt_dirty)
        return;
    struct lh_err err = { 0 };
    uint64_t mark = a->acked_seq;
    if (mark)
        lh_tail_set_batch_seq(a->tail, mark);
    if (lh_tail_checkpoint_save(a->tail, &err) < 0) {
        lh_error("agent: %s", err.msg);
    } else {
        a->ckpt_dirty = 0;
        a->st.checkpoints++;
        if (a->ship && mark)
            lh_ship_checkpointed(a->ship, mark);
    }
    a->last_ckpt_ms = now;
}

static int64_t ckpt_interval(const struct lh_agent *a)
{
    return a->cfg->checkpoint_interval_ms ? a->cfg->checkpoint_interval_ms : 200;
}

/* ---- recovery ------------------------------------------------------------------ */

/* Applies one write-ahead batch's ranges to the checkpoint entries: each
 * file's entry (matched by key) moves to the batch's end, with the identity
 * the file had then; a file the checkpoint does not know yet is added. */
static int merge_ranges(struct lh_ckpt_entry **v, size_t *n, size_t *cap,
                        const struct lh_batch *b, size_t *moved)
{
    for (uint32_t i = 0; i < b->nfiles; i++) {
        const struct lh_batch_file *f = &b->files[i];
        if (!f->key)
            continue;
        struct lh_ckpt_entry *e = NULL;
        for (size_t k = 0; k < *n && !e; k++)
            if ((*v)[k].key == f->key)
                e = &(*v)[k];
        for (size_t k = 0; k < *n && !e; k++)   /* a checkpoint older than keys */
            if (!(*v)[k].key && (*v)[k].dev == f->dev && (*v)[k].ino == f->ino)
                e = &(*v)[k];
        if (e && f->end < e->offset)
            continue;
        if (!e) {
            if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                struct lh_ckpt_entry *nv = realloc(*v, nc * sizeof(*nv));
                if (!nv)
                    return LH_ENOMEM;
                *v = nv;
                *cap = nc;
            }
            e = &(*v)[(*n)++];
            memset(e, 0, sizeof(*e));
        }
        char *path = strdup(f->path ? f->path : ""), *real = strdup(f->real ? f->real : "");
        if (!path || !real) {
            free(path);
            free(real);
            return LH_ENOMEM;
        }
        free(e->path);
        free(e->real);
        e->path = path;
        e->real = real;
        e->key = f->key;
        e->dev = f->dev;
        e->ino = f->ino;
        e->fp = f->fp;
        e->fp_len = f->fp_len;
        e->offset = f->end;
        if (f->size > e->size)
            e->size = f->size;
        (*moved)++;
    }
    return 0;
}

/* After a crash, before the tail starts: the write-ahead batches in the
 * disk buffer that the checkpoint does not include yet (seq above its
 * batch_seq) are applied to it in seq order, so the tail resumes after the
 * lines they hold (they are sent again from the buffer, same UUIDs). They
 * must follow each other without a gap: batches are written in seq order
 * and none is sent before every older one is on disk, so batches after a
 * missing one were never sent; they are deleted, their lines read again.
 * *mark: the highest batch seq the checkpoint now includes. */
static int recover(struct lh_agent *a, const struct lh_agent_config *cfg, uint64_t *mark,
                   struct lh_err *err)
{
    *mark = 0;
    const char *ck = cfg->tail.checkpoint;
    if (!ck)
        return 0;
    struct lh_ckpt_entry *v = NULL;
    size_t n = 0, cap = 0, moved = 0, applied = 0, dropped = 0;
    uint64_t c = 0;
    struct lh_err e = { 0 };
    int exists = access(ck, F_OK) == 0;
    if (lh_ckpt_load_seq(ck, &v, &n, &c, &e) < 0)
        return 0;   /* the tail reports it (and moves a corrupt one aside) */
    cap = n;
    *mark = c;
    /* A very first start reading from the end: nothing to resume. */
    int merge = exists || cfg->tail.read_from != LH_TAIL_END;
    uint64_t expect = c ? c + 1 : 0, h = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < lh_dbuf_count(a->dbuf); i++) {
        uint64_t seq = lh_dbuf_seq_at(a->dbuf, i);
        if (seq <= c)
            continue;
        struct lh_batch *b = NULL;
        int wa = 0;
        int lrc = lh_dbuf_load_flags(a->dbuf, seq, &b, &wa, &e);
        if (lrc == LH_ECORRUPT || lrc == LH_ENOTFOUND) {
            lh_error("agent: %s", e.msg);
            i--;   /* the index shrank */
            continue;
        }
        if (lrc < 0) {
            rc = lh_err_set(err, lrc, "agent: recovering the disk buffer: %s", e.msg);
            break;
        }
        if (!wa) {
            lh_batch_free(b);
            continue;
        }
        if (!expect)
            expect = seq;
        if (seq != expect || !merge) {
            if (merge) {
                lh_dbuf_remove(a->dbuf, seq, NULL);
                dropped++;
                i--;
            }
            lh_batch_free(b);
            continue;
        }
        rc = merge_ranges(&v, &n, &cap, b, &moved);
        lh_batch_free(b);
        if (rc < 0) {
            rc = lh_err_set(err, rc, "agent: out of memory recovering the disk buffer");
            break;
        }
        applied++;
        h = seq;
        expect++;
    }
    if (dropped)
        lh_warn("agent: disk buffer: batch %llu is missing (a crash while writing it); %zu "
                "later batch(es) were never sent and are removed: their lines are read again",
                (unsigned long long)expect, dropped);
    if (rc == 0 && applied) {
        rc = lh_ckpt_save_seq(ck, v, n, h, err);
        if (rc == 0) {
            *mark = h;
            lh_info("agent: %zu batch(es) in the disk buffer were not in the checkpoint yet; "
                    "%zu file position(s) moved past them (they are sent again, same ids)",
                    applied, moved);
        }
    }
    lh_ckpt_free(v, n);
    return rc;
}

/* ---- batches ------------------------------------------------------------------- */

static void seal(struct lh_agent *a)
{
    struct lh_batch *b;
    struct lh_err err = { 0 };
    if (lh_batcher_seal(a->batcher, a->next_seq, &b, &err) < 0) {
        lh_error("agent: sealing a batch: %s", err.msg);
        return;
    }
    if (!b)
        return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct pend *nf = realloc(a->fifo, cap * sizeof(*nf));
        if (!nf) {
            lh_error("agent: out of memory; batch %llu dropped, its lines are read again "
                     "after a restart", (unsigned long long)b->seq);
            lh_batch_free(b);
            return;
        }
        a->fifo = nf;
        a->cap = cap;
    }
    struct pend *p = &a->fifo[a->n];
    memset(p, 0, sizeof(*p));
    p->seq = b->seq;
    p->files = calloc(b->nfiles ? b->nfiles : 1, sizeof(*p->files));
    if (!p->files) {
        lh_error("agent: out of memory; batch %llu dropped", (unsigned long long)b->seq);
        lh_batch_free(b);
        return;
    }
    for (uint32_t i = 0; i < b->nfiles; i++) {
        struct lh_batch_file *f = &b->files[i];
        p->files[i] = (struct ack_file){ f->uid, f->end };
        struct lh_ckpt_entry e;
        if (a->tail && lh_tail_file_ident(a->tail, f->uid, &e) == 0) {
            f->key = e.key;
            f->dev = e.dev;
            f->ino = e.ino;
            f->fp = e.fp;
            f->fp_len = e.fp_len;
            f->size = e.size > f->end ? e.size : f->end;
            f->real = e.real ? strdup(e.real) : NULL;
        }
    }
    p->n = b->nfiles;
    a->n++;
    a->next_seq++;
    a->st.batches++;
    lh_counter_add(a->c_batches, 1);
    if (b->nrec == 0 && !lh_dbuf_write_ahead(a->dbuf)) {   /* only skipped lines */
        p->done = 1;
        lh_batch_free(b);
        pop_done(a);
    } else {
        lh_ship_submit(a->ship, b);
    }
    a->st.pending = a->n - a->head;
}

static void on_record(void *arg, const struct lh_record *rec)
{
    struct lh_agent *a = arg;
    int64_t now = a->now_ms;
    const char *msg = rec->msg;
    size_t len = rec->len;
    if (a->masker) {
        int m = lh_mask_apply(a->masker, msg, len, &a->maskbuf, a->mask_counts);
        if (m > 0) {
            msg = a->maskbuf.data;
            len = a->maskbuf.len;
            a->st.masked += (uint64_t)m;
            for (size_t i = 0; i < a->nrules; i++)
                if (a->mask_counts[i]) {
                    lh_counter_add(a->mask_ctr[i], a->mask_counts[i]);
                    a->mask_counts[i] = 0;
                }
        }
    }
    int rc = lh_batcher_add(a->batcher, rec, msg, len, a->wall_ns, now);
    if (rc == LH_EFULL) {
        seal(a);
        rc = lh_batcher_add(a->batcher, rec, msg, len, a->wall_ns, now);
    }
    if (rc < 0) {
        lh_error("agent: cannot batch a record of %s (%s); dropped", rec->path,
                 lh_errcode_name(rc));
        lh_ledger_drop(a->ledger, rec->path, "error", rec->nlines, rec->len);
        lh_batcher_skip(a->batcher, rec, now);
        return;
    }
    a->st.records++;
    if (rc == 1)
        seal(a);
}

/* ---- masking ------------------------------------------------------------------ */

static void masker_free(struct lh_agent *a)
{
    lh_masker_destroy(a->masker);
    a->masker = NULL;
    free(a->mask_counts);
    free(a->mask_ctr);
    a->mask_counts = NULL;
    a->mask_ctr = NULL;
    a->nrules = 0;
}

static int masker_setup(struct lh_agent *a, const struct lh_agent_config *cfg,
                        struct lh_err *err)
{
    masker_free(a);
    if (!cfg->mask.enabled)
        return 0;
    int rc = lh_masker_create(&cfg->mask.rules, &a->masker, err);
    if (rc < 0)
        return rc;
    a->nrules = lh_masker_rule_count(a->masker);
    a->mask_counts = calloc(a->nrules, sizeof(*a->mask_counts));
    a->mask_ctr = calloc(a->nrules, sizeof(*a->mask_ctr));
    if (!a->mask_counts || !a->mask_ctr) {
        masker_free(a);
        return lh_err_set(err, LH_ENOMEM, "agent: out of memory");
    }
    for (size_t i = 0; i < a->nrules; i++) {
        char label[200];
        lh_metrics_label(label, sizeof(label), "rule", lh_masker_rule_name(a->masker, i));
        a->mask_ctr[i] = lh_counter_get(a->metrics, "loghaul_agent_masked_total",
                                        "Replacements made by masking at the edge, by rule.",
                                        label);
    }
    return 0;
}

/* ---- the loop ------------------------------------------------------------------ */

static void step(struct lh_agent *a);

static void on_timer(uv_timer_t *t)
{
    step(t->data);
}

static void on_async(uv_async_t *h)
{
    step(h->data);
}

static void on_ipoll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    step(h->data);
}

static void on_close(uv_handle_t *h)
{
    struct lh_agent *a = h->data;
    if (h->type == UV_POLL)
        free(h);
    if (--a->open_handles == 0 && a->destroying)
        free(a);
}

static void ipoll_close(struct lh_agent *a)
{
    if (!a->ipoll)
        return;
    uv_close((uv_handle_t *)a->ipoll, on_close);
    a->ipoll = NULL;
    a->ipoll_active = 0;
}

static void ipoll_open(struct lh_agent *a)
{
    int fd = a->tail ? lh_tail_fd(a->tail) : -1;
    if (fd < 0)
        return;
    uv_poll_t *p = calloc(1, sizeof(*p));
    if (!p || uv_poll_init(a->loop, p, fd) != 0) {
        free(p);
        lh_warn("agent: cannot watch the inotify descriptor; polling only");
        return;
    }
    p->data = a;
    a->ipoll = p;
    a->open_handles++;
}

static void ipoll_set(struct lh_agent *a, int on)
{
    if (!a->ipoll || a->ipoll_active == on)
        return;
    if (on)
        uv_poll_start(a->ipoll, UV_READABLE, on_ipoll);
    else
        uv_poll_stop(a->ipoll);
    a->ipoll_active = on;
}

/* Recreates the tail with the new tail section (every batch is durable
 * and acknowledged, the checkpoint saved). */
static void retail(struct lh_agent *a, int64_t now)
{
    save_checkpoint(a, now);
    ipoll_close(a);
    lh_tail_destroy(a->tail);
    a->tail = NULL;
    struct lh_err err = { 0 };
    if (lh_tail_create(&a->cfg->tail, a->ledger, on_record, a, &a->tail, &err) < 0) {
        lh_error("agent: the new tail section cannot start: %s; not tailing", err.msg);
        a->tail = NULL;
    } else {
        ipoll_open(a);
        lh_info("agent: tail restarted with the new configuration");
    }
    a->retail = 0;
}

static void schedule(struct lh_agent *a, int64_t now, int reading)
{
    if (a->destroying)
        return;
    int64_t t = 1000;
    if (reading) {
        int64_t w = lh_tail_next_wakeup(a->tail, now);
        if (w < t)
            t = w;
    } else if (!a->draining) {
        t = 50;   /* backpressure or a pending tail restart: look again soon */
    }
    int64_t due = lh_batcher_due(a->batcher);
    if (due != INT64_MAX && due - now < t)
        t = due - now;
    if (a->ckpt_dirty && a->last_ckpt_ms + ckpt_interval(a) - now < t)
        t = a->last_ckpt_ms + ckpt_interval(a) - now;
    if (t < 0)
        t = 0;
    uv_timer_start(&a->timer, on_timer, (uint64_t)t, 0);
}

static void step(struct lh_agent *a)
{
    if (a->destroying)
        return;
    int64_t now = mono_ms();
    a->now_ms = now;
    take_durable(a);
    if (a->retail && a->head == a->n)
        retail(a, now);
    int reading = a->tail && !a->draining && !a->retail && !lh_ship_busy(a->ship);
    a->st.paused = !reading;
    ipoll_set(a, reading);
    if (reading) {
        struct lh_err err = { 0 };
        a->wall_ns = lh_time_now_ns();
        if (lh_tail_poll_once(a->tail, now, &err) < 0)
            lh_error("agent: tail: %s", err.msg);
    }
    if (lh_batcher_due(a->batcher) <= now)
        seal(a);
    if (a->ckpt_dirty && now - a->last_ckpt_ms >= ckpt_interval(a))
        save_checkpoint(a, now);
    if (a->draining && !a->drain_fired && lh_ship_stopped(a->ship)) {
        take_durable(a);
        save_checkpoint(a, now);
        a->drain_fired = 1;
        uv_timer_stop(&a->timer);
        if (a->drain_done)
            a->drain_done(a->drain_arg);
        return;
    }
    schedule(a, now, reading);
}

static void ship_notify(void *arg)
{
    struct lh_agent *a = arg;
    uv_async_send(&a->async);
}

/* ---- public ---------------------------------------------------------------------- */

static void set_meta(struct lh_agent *a, const struct lh_agent_config *cfg)
{
    a->meta.host_id = cfg->host_id;
    if (!a->meta.host_id) {
        struct lh_err e = { 0 };
        if (!a->host_id[0] && lh_host_id_default(a->host_id, sizeof(a->host_id), &e) < 0)
            snprintf(a->host_id, sizeof(a->host_id), "unknown");
        a->meta.host_id = a->host_id;
    }
    a->meta.cluster_name = cfg->cluster_name;
    a->meta.region = cfg->region;
    a->meta.agent_version = "loghaul-agent/" LH_VERSION;
}

static double g_files_open(void *arg)
{
    struct lh_agent *a = arg;
    struct lh_tail_stats st = { 0 };
    if (a->tail)
        lh_tail_get_stats(a->tail, &st);
    return (double)st.files_open;
}

static double g_pending(void *arg)
{
    return (double)((struct lh_agent *)arg)->st.pending;
}

static double g_paused(void *arg)
{
    return ((struct lh_agent *)arg)->st.paused;
}

/* Frees everything but the uv handles. */
static void release(struct lh_agent *a)
{
    lh_ship_destroy(a->ship);
    a->ship = NULL;
    for (size_t i = a->head; i < a->n; i++)
        free(a->fifo[i].files);
    free(a->fifo);
    a->fifo = NULL;
    a->head = a->n = 0;
    lh_tail_destroy(a->tail);
    a->tail = NULL;
    lh_batcher_destroy(a->batcher);
    a->batcher = NULL;
    masker_free(a);
    lh_buf_free(&a->maskbuf);
    lh_dbuf_close(a->dbuf);
    a->dbuf = NULL;
    lh_ledger_destroy(a->ledger);
    a->ledger = NULL;
    lh_metrics_destroy(a->own_metrics);
    a->own_metrics = NULL;
}

int lh_agent_create(uv_loop_t *loop, const struct lh_agent_config *cfg,
                    struct lh_metrics *metrics, const char *own_log_file,
                    struct lh_agent **out, struct lh_err *err)
{
    int rc = lh_agent_config_check(cfg, own_log_file, err);
    if (rc < 0)
        return rc;
    struct lh_agent *a = calloc(1, sizeof(*a));
    if (!a)
        return lh_err_set(err, LH_ENOMEM, "agent: out of memory");
    a->loop = loop;
    a->cfg = cfg;
    a->metrics = metrics;
    if (!a->metrics && !(a->metrics = a->own_metrics = lh_metrics_create())) {
        free(a);
        return lh_err_set(err, LH_ENOMEM, "agent: out of memory");
    }
    set_meta(a, cfg);
    if (!(a->ledger = lh_ledger_create())) {
        rc = lh_err_set(err, LH_ENOMEM, "agent: out of memory");
        goto fail;
    }
    uint64_t mark = 0;
    if ((rc = lh_dbuf_open(&cfg->buffer, &a->dbuf, err)) < 0 ||
        (rc = recover(a, cfg, &mark, err)) < 0 ||
        (rc = lh_batcher_create(&cfg->batch, &a->meta, a->ledger, &a->batcher, err)) < 0 ||
        (rc = masker_setup(a, cfg, err)) < 0 ||
        (rc = lh_tail_create(&cfg->tail, a->ledger, on_record, a, &a->tail, err)) < 0)
        goto fail;
    /* Seqs only grow, also past batches long removed (the checkpoint's mark). */
    a->next_seq = lh_dbuf_next_seq(a->dbuf);
    if (a->next_seq <= mark)
        a->next_seq = mark + 1;
    a->acked_seq = mark;
    a->c_batches = lh_counter_get(a->metrics, "loghaul_agent_batches_total",
                                  "Batches sealed.", NULL);
    lh_gauge_fn(a->metrics, "loghaul_agent_files_open", "Files the tail holds open.", NULL,
                g_files_open, a);
    lh_gauge_fn(a->metrics, "loghaul_agent_batches_pending",
                "Sealed batches not yet durable (in memory or in flight).", NULL, g_pending, a);
    lh_gauge_fn(a->metrics, "loghaul_agent_reading_paused",
                "1 while reading waits for the collectors (backpressure).", NULL, g_paused, a);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    a->open_handles++;
    uv_async_init(loop, &a->async, on_async);
    a->async.data = a;
    a->open_handles++;
    if ((rc = lh_ship_create(&cfg->ship, a->dbuf, a->ledger, a->metrics, ship_notify, a,
                             &a->ship, err)) < 0) {
        release(a);
        a->destroying = 1;
        uv_close((uv_handle_t *)&a->timer, on_close);
        uv_close((uv_handle_t *)&a->async, on_close);
        return rc;
    }
    if (mark)
        lh_ship_checkpointed(a->ship, mark);
    ipoll_open(a);
    a->last_ckpt_ms = mono_ms();
    uv_timer_start(&a->timer, on_timer, 0, 0);
    *out = a;
    return 0;
fail:
    release(a);
    free(a);
    return rc;
}

static int tail_cfg_same(const struct lh_tail_config *x, const struct lh_tail_config *y)
{
#define SAME_STR(f) ((x->f == NULL) == (y->f == NULL) && (!x->f || strcmp(x->f, y->f) == 0))
    if (x->include.n != y->include.n || x->exclude.n != y->exclude.n)
        return 0;
    for (size_t i = 0; i < x->include.n; i++)
        if (strcmp(x->include.v[i], y->include.v[i]) != 0)
            return 0;
    for (size_t i = 0; i < x->exclude.n; i++)
        if (strcmp(x->exclude.v[i], y->exclude.v[i]) != 0)
            return 0;
    return x->format == y->format && x->multiline == y->multiline &&
           SAME_STR(multiline_start) && x->multiline_flush_ms == y->multiline_flush_ms &&
           x->multiline_max_lines == y->multiline_max_lines &&
           x->max_line_bytes == y->max_line_bytes && x->long_lines == y->long_lines &&
           x->read_from == y->read_from && x->fingerprint_bytes == y->fingerprint_bytes &&
           x->read_budget == y->read_budget && x->scan_interval_ms == y->scan_interval_ms &&
           x->rotate_wait_ms == y->rotate_wait_ms && x->inotify == y->inotify &&
           SAME_STR(checkpoint);
#undef SAME_STR
}

int lh_agent_reload(struct lh_agent *a, const struct lh_agent_config *cfg,
                    const char *own_log_file, struct lh_err *err)
{
    int rc = lh_agent_config_check(cfg, own_log_file, err);
    if (rc < 0)
        return rc;
    if ((rc = lh_ship_reload(a->ship, &cfg->ship, err)) < 0)
        return rc;
    /* The pending batch was built with the old settings and metadata. */
    seal(a);
    if ((rc = masker_setup(a, cfg, err)) < 0) {
        lh_error("agent: masking stays off until a reload succeeds: %s", err->msg);
        lh_err_clear(err);
    }
    int same_tail = tail_cfg_same(&a->cfg->tail, &cfg->tail);
    a->cfg = cfg;
    set_meta(a, cfg);
    lh_batcher_set_config(a->batcher, &cfg->batch);
    lh_dbuf_set_limits(a->dbuf, &cfg->buffer);
    if (!same_tail)
        a->retail = 1;
    a->st.reloads++;
    lh_info("agent: configuration reloaded%s", same_tail ? "" : " (the tail restarts once "
                                                                "every batch in flight is durable)");
    uv_timer_start(&a->timer, on_timer, 0, 0);
    return 0;
}

void lh_agent_drain(struct lh_agent *a, int64_t timeout_ms, void (*done)(void *arg), void *arg)
{
    if (a->draining)
        return;
    a->draining = 1;
    a->drain_done = done;
    a->drain_arg = arg;
    ipoll_set(a, 0);
    seal(a);
    lh_ship_stop(a->ship, mono_ms() + (timeout_ms > 0 ? timeout_ms : 0));
    uv_timer_start(&a->timer, on_timer, 0, 0);
}

void lh_agent_destroy(struct lh_agent *a)
{
    if (!a)
        return;
    if (a->ship && !lh_ship_stopped(a->ship)) {
        seal(a);
        lh_ship_stop(a->ship, 0);
        while (!lh_ship_stopped(a->ship)) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    take_durable(a);
    save_checkpoint(a, mono_ms());
    a->destroying = 1;
    release(a);
    uv_timer_stop(&a->timer);
    if (a->ipoll) {
        uv_close((uv_handle_t *)a->ipoll, on_close);
        a->ipoll = NULL;
    }
    uv_close((uv_handle_t *)&a->timer, on_close);
    uv_close((uv_handle_t *)&a->async, on_close);
}

int lh_agent_render_metrics(void *agent, struct lh_buf *out)
{
    struct lh_agent *a = agent;
    int rc = 0;
    if (a->own_metrics)
        rc = lh_metrics_render(a->own_metrics, out);
    return rc < 0 ? rc : lh_ledger_render(a->ledger, out);
}

int lh_agent_ready(void *agent, struct lh_buf *reason)
{
    struct lh_agent *a = agent;
    if (a->draining) {
        lh_buf_puts(reason, "draining");
        return 1;
    }
    if (!a->tail) {
        lh_buf_puts(reason, "not tailing (see the log)");
        return 1;
    }
    return 0;
}

struct lh_ledger *lh_agent_ledger(struct lh_agent *a)
{
    return a->ledger;
}

struct lh_ship *lh_agent_ship(struct lh_agent *a)
{
    return a->ship;
}

void lh_agent_get_stats(const struct lh_agent *a, struct lh_agent_stats *out)
{
    *out = a->st;
}

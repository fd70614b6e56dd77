/* Unit tests for agent/tail.c against real files: rotation (rename + create,
 * copytruncate, delete while open, same name reappearing, symlink flip), new
 * files, truncation while reading, loss windows, bad input, long lines, and
 * checkpoint + restart exactly-once for each rotation case.
 *
 * Every test line is "L<seq>-" padded to LINE bytes with its newline, from one
 * sequence per test, so "each line exactly once" is a tally over records. */
#include "../lh_test.h"
#include "../../agent/meta.h"
#include "../../agent/tail.h"
#include "lh/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE 40            /* bytes per test line, newline included */
#define MAXSEQ 8192

struct rec {
    char *msg;             /* the first 128 bytes */
    size_t len;
    uint64_t uid, start, end;
    unsigned flags;
    uint32_t nlines, part;
    int run;               /* uids are per tail instance */
    char path[256];
};

struct env {
    char dir[256], logs[320], ckpt[320];
    char *inc[2], *exc[2];
    struct lh_tail_config cfg;
    struct lh_ledger *ledger;
    struct lh_tail *t;
    struct rec *v;
    size_t n, cap, acked;
    int64_t now;
    int seq;
    int run;
};

static void sink(void *arg, const struct lh_record *r)
{
    struct env *e = arg;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 256;
        e->v = realloc(e->v, e->cap * sizeof(*e->v));
        REQUIRE(e->v);
    }
    struct rec *x = &e->v[e->n++];
    size_t keep = r->len < 128 ? r->len : 128;
    x->msg = malloc(keep + 1);
    REQUIRE(x->msg);
    memcpy(x->msg, r->msg, keep);
    x->msg[keep] = '\0';
    x->len = r->len;
    x->uid = r->file_uid;
    x->start = r->start;
    x->end = r->end;
    x->flags = r->flags;
    x->nlines = r->nlines;
    x->part = r->part;
    x->run = e->run;
    snprintf(x->path, sizeof(x->path), "%s", r->path);
}

static void open_tail(struct env *e)
{
    struct lh_err err = { 0 };
    e->run++;
    int rc = lh_tail_create(&e->cfg, e->ledger, sink, e, &e->t, &err);
    if (rc < 0)
        fprintf(stderr, "    lh_tail_create: %s\n", err.msg);
    REQUIRE(rc == 0);
}

/* Logs in <tmp>/logs, the checkpoint beside it; glob relative to logs. */
static void env_init(struct env *e, const char *glob_rel)
{
    memset(e, 0, sizeof(*e));
    lh_log_set_level(LH_LOG_WARN);          /* keep "following ..." lines out of the output */
    snprintf(e->dir, sizeof(e->dir), "%s", lh_test_tmpdir());
    snprintf(e->logs, sizeof(e->logs), "%s/logs", e->dir);
    snprintf(e->ckpt, sizeof(e->ckpt), "%s/ckpt.json", e->dir);
    REQUIRE(mkdir(e->logs, 0777) == 0);
    e->inc[0] = malloc(512);
    snprintf(e->inc[0], 512, "%s/%s", e->logs, glob_rel);
    e->cfg.include.v = e->inc;
    e->cfg.include.n = 1;
    e->cfg.checkpoint = e->ckpt;
    e->cfg.rotate_wait_ms = 0;
    e->cfg.scan_interval_ms = 1000;
    e->ledger = lh_ledger_create();
    REQUIRE(e->ledger);
    e->now = 1000000;
}

static void env_free(struct env *e)
{
    lh_tail_destroy(e->t);
    lh_ledger_destroy(e->ledger);
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].msg);
    free(e->v);
    free(e->inc[0]);
}

static const char *lpath(struct env *e, const char *name)
{
    static char buf[4][600];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 600, "%s/%s", e->logs, name);
    return p;
}

/* Appends n test lines through fd; returns the first sequence number. */
static int put_fd(struct env *e, int fd, int n)
{
    int first = e->seq;
    for (int i = 0; i < n; i++) {
        char line[LINE + 1];
        int k = snprintf(line, sizeof(line), "L%05d-", e->seq++);
        memset(line + k, 'a' + (e->seq % 26), (size_t)(LINE - 1 - k));
        line[LINE - 1] = '\n';
        REQUIRE(write(fd, line, LINE) == LINE);
    }
    return first;
}

static int put(struct env *e, const char *name, int n)
{
    int fd = open(lpath(e, name), O_WRONLY | O_APPEND | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    int first = put_fd(e, fd, n);
    close(fd);
    return first;
}

static int step(struct env *e, int64_t dt)
{
    e->now += dt;
    int r = lh_tail_poll_once(e->t, e->now, NULL);
    REQUIRE(r >= 0);
    return r;
}

/* Polls until nothing happens for a while (scans included). */
static void settle(struct env *e)
{
    int idle = 0;
    for (int i = 0; i < 2000 && idle < 4; i++) {
        int r = step(e, 500);
        idle = r == 0 && lh_tail_next_wakeup(e->t, e->now) > 0 ? idle + 1 : 0;
    }
}

/* Acknowledges records [acked, upto) and saves the checkpoint. */
static void ack_upto(struct env *e, size_t upto)
{
    for (; e->acked < upto && e->acked < e->n; e->acked++) {
        struct rec *r = &e->v[e->acked];
        REQUIRE(lh_tail_ack(e->t, r->uid, r->end, r->nlines) == 0);
    }
    struct lh_err err = { 0 };
    REQUIRE(lh_tail_checkpoint_save(e->t, &err) == 0);
}

/* Stops the tail (as kill -9 would, after the last checkpoint save): the
 * unacknowledged records are forgotten, a new tail starts from the file. */
static void restart(struct env *e)
{
    lh_tail_destroy(e->t);
    e->t = NULL;
    for (size_t i = e->acked; i < e->n; i++)
        free(e->v[i].msg);
    e->n = e->acked;
    open_tail(e);
}

static int seq_of(const struct rec *r)
{
    int s;
    if (r->msg[0] != 'L' || sscanf(r->msg + 1, "%5d", &s) != 1 || s < 0 || s >= MAXSEQ)
        return -1;
    return s;
}

/* Checks that lines [0, seq) were delivered exactly once, except those in
 * [lost_from, lost_to) (never); no record is foreign; per file, records
 * come in increasing offsets. */
static void check_once(struct env *e, int lost_from, int lost_to)
{
    static unsigned char cnt[MAXSEQ];
    memset(cnt, 0, sizeof(cnt));
    int bad = 0;
    for (size_t i = 0; i < e->n; i++) {
        int s = seq_of(&e->v[i]);
        if (s < 0) {
            if (bad++ < 3)
                fprintf(stderr, "    foreign record \"%s\"\n", e->v[i].msg);
            continue;
        }
        if (cnt[s] < 255)
            cnt[s]++;
        for (size_t k = i + 1; k < e->n; k++)
            if (e->v[k].uid == e->v[i].uid && e->v[k].run == e->v[i].run) {
                if (e->v[k].start < e->v[i].end)
                    fprintf(stderr, "    out of order: uid %llu [%llu,%llu) after [%llu,%llu)\n",
                            (unsigned long long)e->v[i].uid,
                            (unsigned long long)e->v[k].start, (unsigned long long)e->v[k].end,
                            (unsigned long long)e->v[i].start, (unsigned long long)e->v[i].end);
                CHECK(e->v[k].start >= e->v[i].end);
                break;
            }
    }
    CHECK_INT(bad, ==, 0);
    int wrong = 0;
    for (int s = 0; s < e->seq; s++) {
        int want = s >= lost_from && s < lost_to ? 0 : 1;
        if (cnt[s] != want && wrong++ < 5)
            fprintf(stderr, "    line L%05d delivered %d times (want %d)\n", s, cnt[s], want);
    }
    CHECK_INT(wrong, ==, 0);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        REQUIRE(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

/* Descriptors the tail holds: rotated files are closed once drained. */
static uint64_t files_open(struct env *e)
{
    struct lh_tail_stats st;
    lh_tail_get_stats(e->t, &st);
    return st.files_open;
}

static uint64_t lost_bytes(struct env *e)
{
    struct lh_ledger_file tot;
    REQUIRE(lh_ledger_get(e->ledger, NULL, &tot) == 0);
    return tot.bytes_lost;
}

/* ---- rotation cases ------------------------------------------------------- */

TEST(agent_tail_rename_create)
{
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    put(&e, "app.log", 50);
    settle(&e);
    CHECK_INT(e.n, ==, 50);
    /* An app still writing to its descriptor across the rotation. */
    int wfd = open(lpath(&e, "app.log"), O_WRONLY | O_APPEND);
    REQUIRE(wfd >= 0);
    put_fd(&e, wfd, 10);
    REQUIRE(rename(lpath(&e, "app.log"), lpath(&e, "app.log.1")) == 0);
    put(&e, "app.log", 10);                 /* the new file */
    put_fd(&e, wfd, 5);                     /* late lines into the rotated one */
    close(wfd);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    CHECK_INT(files_open(&e), ==, 1);

    /* Restart with part of the rotated file unacknowledged: it is resumed
     * from its rotated name, the new file from its acknowledged offset. */
    ack_upto(&e, 55);
    restart(&e);
    put(&e, "app.log", 5);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    /* Everything acknowledged: another restart produces nothing new. */
    ack_upto(&e, e.n);
    size_t before = e.n;
    restart(&e);
    settle(&e);
    CHECK_INT(e.n, ==, before);
    env_free(&e);
}

TEST(agent_tail_rename_rotated_name_matches_glob)
{
    /* The glob also matches the rotated name: the file goes on under it. */
    struct env e;
    env_init(&e, "app.log*");
    open_tail(&e);
    put(&e, "app.log", 20);
    settle(&e);
    REQUIRE(rename(lpath(&e, "app.log"), lpath(&e, "app.log.1")) == 0);
    put(&e, "app.log.1", 3);
    put(&e, "app.log", 7);
    settle(&e);
    check_once(&e, 0, 0);
    ack_upto(&e, 22);
    restart(&e);
    put(&e, "app.log.1", 2);
    put(&e, "app.log", 2);
    settle(&e);
    check_once(&e, 0, 0);
    env_free(&e);
}

TEST(agent_tail_copytruncate)
{
    /* The glob matches the copy too: it must not be read on its own. */
    struct env e;
    env_init(&e, "app.log*");
    open_tail(&e);
    put(&e, "app.log", 50);                 /* 2000 bytes: a full fingerprint */
    settle(&e);
    put(&e, "app.log", 10);                 /* unread when the copy is taken */
    copy_file(lpath(&e, "app.log"), lpath(&e, "app.log.1"));
    REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    put(&e, "app.log", 10);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    /* app.log, and the copy (it matches the glob: now followed as itself). */
    CHECK_INT(files_open(&e), ==, 2);

    ack_upto(&e, 55);
    restart(&e);
    put(&e, "app.log", 5);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);

    /* Again, with a scan between the copy and the truncation: the copy,
     * which the glob matches, is not read as a file of its own. */
    put(&e, "app.log", 30);
    settle(&e);
    put(&e, "app.log", 5);
    copy_file(lpath(&e, "app.log"), lpath(&e, "app.log.2"));
    step(&e, 1000);                         /* a scan sees app.log.2 */
    REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    put(&e, "app.log", 5);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    env_free(&e);
}

TEST(agent_tail_copytruncate_while_stopped)
{
    /* logrotate runs while the agent is down: the unacknowledged rest is
     * read from the copy after the restart. */
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    put(&e, "app.log", 40);
    settle(&e);
    ack_upto(&e, 30);
    lh_tail_destroy(e.t);
    e.t = NULL;
    for (size_t i = e.acked; i < e.n; i++)
        free(e.v[i].msg);
    e.n = e.acked;
    put(&e, "app.log", 5);
    copy_file(lpath(&e, "app.log"), lpath(&e, "app.log.1"));
    REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    put(&e, "app.log", 5);
    open_tail(&e);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    env_free(&e);
}

/* What the writer appends after the agent last looked, then rotates while
 * the agent is down: found under the rotated name (rename) or in the copy
 * (copytruncate), though the checkpoint knew of nothing unread. */
static void rotate_while_stopped_fully_acked(int copytruncate)
{
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    put(&e, "app.log", 40);
    settle(&e);
    ack_upto(&e, 40);
    lh_tail_destroy(e.t);
    e.t = NULL;
    put(&e, "app.log", 5);                  /* never seen before the stop */
    if (copytruncate) {
        copy_file(lpath(&e, "app.log"), lpath(&e, "app.log.1"));
        REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    } else {
        REQUIRE(rename(lpath(&e, "app.log"), lpath(&e, "app.log.1")) == 0);
    }
    put(&e, "app.log", 5);
    open_tail(&e);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    env_free(&e);
}

TEST(agent_tail_rename_while_stopped_after_full_ack)
{
    rotate_while_stopped_fully_acked(0);
}

TEST(agent_tail_copytruncate_while_stopped_after_full_ack)
{
    rotate_while_stopped_fully_acked(1);
}

/* Each file keeps its key across restarts and rotations (the write-ahead
 * buffer's entries are matched by it), and the batch seq given to the tail
 * is saved with the checkpoint and kept when loaded. */
TEST(agent_tail_file_keys_and_batch_seq_persist)
{
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    put(&e, "app.log", 10);
    settle(&e);
    struct lh_ckpt_entry id1, id2;
    REQUIRE(lh_tail_file_ident(e.t, e.v[0].uid, &id1) == 0);
    CHECK(id1.key != 0);
    CHECK_INT(id1.offset, ==, 0);
    CHECK_INT(id1.size, ==, 10 * LINE);
    CHECK(lh_tail_file_ident(e.t, 9999, &id2) == LH_ENOTFOUND);
    lh_tail_set_batch_seq(e.t, 77);
    ack_upto(&e, 10);
    uint64_t key = id1.key;
    REQUIRE(rename(lpath(&e, "app.log"), lpath(&e, "app.log.1")) == 0);
    put(&e, "app.log", 3);
    settle(&e);
    restart(&e);
    settle(&e);
    struct lh_ckpt_entry *v;
    size_t n;
    uint64_t bs = 0;
    struct lh_err err = { 0 };
    REQUIRE(lh_tail_checkpoint_save(e.t, &err) == 0);
    REQUIRE(lh_ckpt_load_seq(e.ckpt, &v, &n, &bs, &err) == 0);
    CHECK_INT(bs, ==, 77);
    int found = 0, others = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].key == key) {
            found++;
            CHECK_INT(v[i].offset, ==, 10 * LINE);
        } else {
            others += v[i].key != 0;
        }
    }
    CHECK_INT(found, ==, 1);                 /* the rotated file kept its key */
    CHECK_INT(others, ==, 1);                /* the new app.log got its own */
    lh_ckpt_free(v, n);
    env_free(&e);
}

TEST(agent_tail_delete_while_open)
{
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    put(&e, "app.log", 30);
    settle(&e);
    int wfd = open(lpath(&e, "app.log"), O_WRONLY | O_APPEND);
    REQUIRE(wfd >= 0);
    put_fd(&e, wfd, 10);
    REQUIRE(unlink(lpath(&e, "app.log")) == 0);
    put_fd(&e, wfd, 10);                    /* still written after the unlink */
    close(wfd);
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(files_open(&e), ==, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);

    /* Restart with the deleted file not fully acknowledged: what is gone is
     * counted, to the byte, as a loss window; nothing is duplicated. */
    ack_upto(&e, 35);
    restart(&e);
    settle(&e);
    check_once(&e, 35, 50);
    CHECK_INT(lost_bytes(&e), ==, 15 * LINE);
    struct lh_loss_window w[4];
    REQUIRE_INT(lh_ledger_loss_windows(e.ledger, w, 4), ==, 1);
    CHECK_INT(w[0].start, ==, 35 * LINE);
    CHECK_INT(w[0].end, ==, 50 * LINE);
    CHECK_STR(w[0].reason, LH_LOSS_DELETED);
    env_free(&e);
}

TEST(agent_tail_same_name_reappears)
{
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    put(&e, "app.log", 20);
    settle(&e);
    ack_upto(&e, 20);
    REQUIRE(unlink(lpath(&e, "app.log")) == 0);
    settle(&e);
    put(&e, "app.log", 10);                 /* a new file, maybe the same inode number */
    settle(&e);
    check_once(&e, 0, 0);
    ack_upto(&e, 25);
    restart(&e);
    put(&e, "app.log", 3);
    settle(&e);
    check_once(&e, 0, 0);

    /* The same inode with other content while stopped (inode reuse, or a
     * rewrite): the fingerprint tells, and it is read from 0. */
    ack_upto(&e, e.n);
    lh_tail_destroy(e.t);
    e.t = NULL;
    int fd = open(lpath(&e, "app.log"), O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    put_fd(&e, fd, 30);                     /* longer than the old offset */
    close(fd);
    open_tail(&e);
    settle(&e);
    check_once(&e, 0, 0);
    env_free(&e);
}

TEST(agent_tail_symlink_flip)
{
    struct env e;
    env_init(&e, "containers/*.log");
    char d[600], t0[600], t1[600], link[600], tmp[600];
    snprintf(d, sizeof(d), "%s/containers", e.logs);
    REQUIRE(mkdir(d, 0755) == 0);
    snprintf(d, sizeof(d), "%s/pods", e.logs);
    REQUIRE(mkdir(d, 0755) == 0);
    snprintf(t0, sizeof(t0), "%s/0.log", d);
    snprintf(t1, sizeof(t1), "%s/1.log", d);
    snprintf(link, sizeof(link), "%s/containers/web_ns_c-0123abcd.log", e.logs);
    snprintf(tmp, sizeof(tmp), "%s/containers/.tmp", e.logs);
    put(&e, "pods/0.log", 10);
    REQUIRE(symlink(t0, link) == 0);
    open_tail(&e);
    settle(&e);
    CHECK_INT(e.n, ==, 10);
    CHECK_STR(e.v[0].path, link);
    put(&e, "pods/0.log", 5);
    put(&e, "pods/1.log", 10);
    REQUIRE(symlink(t1, tmp) == 0);         /* ln -sfn: atomic replace */
    REQUIRE(rename(tmp, link) == 0);
    put(&e, "pods/0.log", 3);               /* late lines in the old target */
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(files_open(&e), ==, 1);
    for (size_t i = 0; i < e.n; i++)
        CHECK_STR(e.v[i].path, link);
    ack_upto(&e, 12);
    restart(&e);
    put(&e, "pods/1.log", 2);
    settle(&e);
    check_once(&e, 0, 0);
    env_free(&e);
}

TEST(agent_tail_new_file_inotify_and_poll)
{
    struct env e;
    env_init(&e, "*.log");
    e.cfg.inotify = 1;
    open_tail(&e);
    int ifd = lh_tail_fd(e.t);
    REQUIRE(ifd >= 0);
    step(&e, 0);                            /* first scan: nothing there */
    CHECK_INT(e.n, ==, 0);
    put(&e, "new.log", 3);
    struct pollfd p = { ifd, POLLIN, 0 };
    REQUIRE(poll(&p, 1, 1000) == 1);        /* inotify wakes the loop */
    step(&e, 1);                            /* well before the next scan */
    CHECK_INT(e.n, ==, 3);
    lh_tail_destroy(e.t);
    e.t = NULL;

    /* Polling only: found by the next scan, at most scan_interval later. */
    e.cfg.inotify = 0;
    e.cfg.checkpoint = NULL;
    open_tail(&e);
    CHECK_INT(lh_tail_fd(e.t), ==, -1);
    e.n = 0;
    for (size_t i = 0; i < 3; i++)
        free(e.v[i].msg);
    step(&e, 0);
    CHECK_INT(e.n, ==, 3);                  /* no checkpoint: new.log from 0 */
    put(&e, "other.log", 2);
    step(&e, 999);
    CHECK_INT(e.n, ==, 3);
    CHECK_INT(lh_tail_next_wakeup(e.t, e.now), ==, 1);
    step(&e, 1);
    CHECK_INT(e.n, ==, 5);
    env_free(&e);
}

/* ---- truncation and loss windows ---------------------------------------- */

TEST(agent_tail_truncate_to_zero_while_reading)
{
    struct env e;
    env_init(&e, "*.log");
    e.cfg.read_budget = 4096;               /* not a multiple of LINE: a cut line */
    open_tail(&e);
    put(&e, "app.log", 200);                /* 8000 bytes */
    step(&e, 10);                           /* reads [0, 4096) */
    CHECK_INT(e.n, ==, 4096 / LINE);
    REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    put(&e, "app.log", 10);
    settle(&e);
    /* Read lines once; the cut line shipped as far as read, marked; the
     * unread rest [4096, 8000) counted exactly; the new lines once. */
    int cut = 4096 / LINE;                  /* line 102 was cut */
    check_once(&e, cut + 1, 200);
    size_t marked = 0;
    for (size_t i = 0; i < e.n; i++)
        if (e.v[i].flags & LH_REC_NO_NEWLINE) {
            marked++;
            CHECK_INT(seq_of(&e.v[i]), ==, cut);
            CHECK_INT(e.v[i].start, ==, (uint64_t)cut * LINE);
            CHECK_INT(e.v[i].end, ==, 4096);
        }
    CHECK_INT(marked, ==, 1);
    CHECK_INT(lost_bytes(&e), ==, 8000 - 4096);
    struct lh_loss_window w[4];
    REQUIRE_INT(lh_ledger_loss_windows(e.ledger, w, 4), ==, 1);
    CHECK_INT(w[0].start, ==, 4096);
    CHECK_INT(w[0].end, ==, 8000);
    CHECK_STR(w[0].reason, LH_LOSS_TRUNCATED);

    ack_upto(&e, e.n - 3);
    restart(&e);
    put(&e, "app.log", 2);
    settle(&e);
    check_once(&e, cut + 1, 200);
    env_free(&e);
}

TEST(agent_tail_loss_window_copytruncate_race)
{
    /* The tail has seen the file at 4400 bytes but read only to 3000 when
     * logrotate copies at 4000 and truncates after a racing write: the copy
     * gives back [3000, 4000), and exactly [4000, 4400) is a loss window. */
    struct env e;
    env_init(&e, "*.log");
    e.cfg.read_budget = 1000;
    open_tail(&e);
    put(&e, "app.log", 50);                 /* [0, 2000) */
    settle(&e);
    CHECK_INT(e.n, ==, 50);
    put(&e, "app.log", 50);                 /* [2000, 4000) */
    copy_file(lpath(&e, "app.log"), lpath(&e, "app.log.1"));
    int racing = put(&e, "app.log", 10);    /* [4000, 4400): after the copy */
    step(&e, 10);                           /* sees 4400, reads [2000, 3000) */
    CHECK_INT(e.n, ==, 75);
    REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    put(&e, "app.log", 5);
    settle(&e);
    check_once(&e, racing, racing + 10);
    CHECK_INT(lost_bytes(&e), ==, 400);
    struct lh_loss_window w[4];
    REQUIRE_INT(lh_ledger_loss_windows(e.ledger, w, 4), ==, 1);
    CHECK_INT(w[0].start, ==, 4000);
    CHECK_INT(w[0].end, ==, 4400);
    CHECK_CONTAINS(w[0].path, "app.log");

    env_free(&e);
}

TEST(agent_tail_loss_window_truncated_no_copy)
{
    /* No copy at all: everything seen but unread is the window. */
    struct env e;
    env_init(&e, "*.log");
    e.cfg.read_budget = 1000;
    open_tail(&e);
    put(&e, "app.log", 100);                /* [0, 4000) */
    step(&e, 10);                           /* reads [0, 1000) */
    CHECK_INT(e.n, ==, 25);
    REQUIRE(truncate(lpath(&e, "app.log"), 0) == 0);
    settle(&e);
    check_once(&e, 25, 100);
    CHECK_INT(lost_bytes(&e), ==, 3000);
    struct lh_loss_window w[4];
    REQUIRE_INT(lh_ledger_loss_windows(e.ledger, w, 4), ==, 1);
    CHECK_INT(w[0].start, ==, 1000);
    CHECK_INT(w[0].end, ==, 4000);
    env_free(&e);
}

/* ---- bad input -------------------------------------------------------------- */

TEST(agent_tail_directory_in_place_of_file)
{
    struct env e;
    env_init(&e, "*.log");
    REQUIRE(mkdir(lpath(&e, "dir.log"), 0755) == 0);
    open_tail(&e);
    put(&e, "app.log", 10);
    settle(&e);
    settle(&e);
    CHECK_INT(e.n, ==, 10);
    /* Logged and counted once, not at every scan. */
    CHECK_INT(lh_ledger_errors(e.ledger, LH_TAILERR_NOT_REGULAR), ==, 1);
    /* A tailed file replaced by a directory: drained, then counted. */
    put(&e, "app.log", 5);
    REQUIRE(unlink(lpath(&e, "app.log")) == 0);
    REQUIRE(mkdir(lpath(&e, "app.log"), 0755) == 0);
    settle(&e);
    CHECK_INT(lh_ledger_errors(e.ledger, LH_TAILERR_NOT_REGULAR), ==, 2);
    put(&e, "other.log", 4);                /* the tail keeps going */
    settle(&e);
    check_once(&e, 0, 0);
    env_free(&e);
}

TEST(agent_tail_permission_denied)
{
    struct env e;
    env_init(&e, "*.log");
    REQUIRE(chmod(e.dir, 0777) == 0);
    put(&e, "ok.log", 5);
    put(&e, "secret.log", 5);
    REQUIRE(chmod(lpath(&e, "ok.log"), 0666) == 0);
    REQUIRE(chmod(lpath(&e, "secret.log"), 0) == 0);
    if (geteuid() == 0) {
        /* Root reads anything: drop to an unprivileged user in this
         * (forked) test process so the mode bits apply. */
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            printf("    note: running as root and cannot drop privileges (%s); "
                   "permission sub-check skipped\n", strerror(errno));
            env_free(&e);
            return;
        }
    }
    REQUIRE(access(lpath(&e, "secret.log"), R_OK) != 0);
    e.cfg.checkpoint = NULL;
    open_tail(&e);
    settle(&e);
    settle(&e);
    CHECK_INT(e.n, ==, 5);
    for (size_t i = 0; i < e.n; i++)
        CHECK_CONTAINS(e.v[i].path, "ok.log");
    CHECK_INT(lh_ledger_errors(e.ledger, LH_TAILERR_PERMISSION), ==, 1);
    put(&e, "ok.log", 2);
    settle(&e);
    CHECK_INT(e.n, ==, 7);
    env_free(&e);
}

TEST(agent_tail_binary_and_invalid_utf8_kept_marked)
{
    struct env e;
    env_init(&e, "*.log");
    open_tail(&e);
    /* Pseudo-random bytes (fixed seed), with newlines where they fall. */
    unsigned char junk[20000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (unsigned char)(x >> 16);
    }
    const char text[] = "ok line\nbad \xff\xfe utf8\nnul \0 inside\n";
    int fd = open(lpath(&e, "bin.log"), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
    REQUIRE(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    REQUIRE(write(fd, "\nend\n", 5) == 5);
    close(fd);
    settle(&e);
    REQUIRE_INT(e.n, >=, 5);
    CHECK_STR(e.v[0].msg, "ok line");
    CHECK_INT(e.v[0].flags & (LH_REC_INVALID_UTF8 | LH_REC_BINARY), ==, 0);
    CHECK_INT(e.v[1].len, ==, 11);
    CHECK(memcmp(e.v[1].msg, "bad \xff\xfe utf8", 11) == 0);   /* bytes kept */
    CHECK(e.v[1].flags & LH_REC_INVALID_UTF8);
    CHECK_INT(e.v[2].len, ==, 12);
    CHECK(e.v[2].flags & LH_REC_BINARY);
    CHECK_STR(e.v[e.n - 1].msg, "end");
    /* Every byte accounted for: the ranges tile the file. */
    uint64_t at = 0;
    size_t newlines = 0;
    for (size_t i = 0; i < sizeof(junk); i++)
        newlines += junk[i] == '\n';
    for (size_t i = 0; i < e.n; i++) {
        CHECK_INT(e.v[i].start, ==, at);
        at = e.v[i].end;
    }
    CHECK_INT(at, ==, sizeof(text) - 1 + sizeof(junk) + 5);
    CHECK_INT(e.n, ==, 3 + newlines + 2);
    CHECK_INT(lh_ledger_flags(e.ledger, LH_FLAG_INVALID_UTF8), >=, 2);
    CHECK_INT(lh_ledger_flags(e.ledger, LH_FLAG_BINARY), >=, 2);
    env_free(&e);
}

static void write_x(int fd, uint64_t n)
{
    static char buf[1 << 20];
    memset(buf, 'x', sizeof(buf));
    while (n) {
        size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
        REQUIRE(write(fd, buf, k) == (ssize_t)k);
        n -= k;
    }
}

TEST(agent_tail_50mb_line_split_bounded)
{
    const uint64_t big = 50000000, max = 65536;
    struct env e;
    env_init(&e, "*.log");
    e.cfg.max_line_bytes = max;
    e.cfg.read_budget = 8 << 20;
    open_tail(&e);
    int fd = open(lpath(&e, "big.log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    REQUIRE(fd >= 0);
    write_x(fd, big);                       /* no newline yet */
    settle(&e);
    uint64_t full = big / max;
    CHECK_INT(e.n, ==, full);
    for (size_t i = 0; i < e.n; i++) {
        CHECK(e.v[i].flags & LH_REC_SPLIT);
        CHECK_INT(e.v[i].part, ==, i + 1);
        CHECK_INT(e.v[i].len, ==, max);
        CHECK_INT(e.v[i].start, ==, i * max);
    }
    REQUIRE(write(fd, "\nafter\n", 7) == 7);
    close(fd);
    settle(&e);
    REQUIRE_INT(e.n, ==, full + 2);
    struct rec *last = &e.v[full];
    CHECK(last->flags & LH_REC_SPLIT_LAST);
    CHECK_INT(last->part, ==, full + 1);
    CHECK_INT(last->len, ==, big - full * max);
    CHECK_INT(last->end, ==, big + 1);
    CHECK_STR(e.v[full + 1].msg, "after");
    struct lh_tail_stats st;
    lh_tail_get_stats(e.t, &st);
    CHECK_INT(st.buffer_peak, <=, 2 * max + 64);
    CHECK_INT(lh_ledger_flags(e.ledger, LH_FLAG_SPLIT), ==, full + 1);
    /* Restart in the middle of the long line's pieces: no piece twice. */
    ack_upto(&e, 100);
    restart(&e);
    settle(&e);
    CHECK_INT(e.n, ==, full + 2);
    CHECK_INT(e.v[100].start, ==, 100 * max);
    CHECK_STR(e.v[e.n - 1].msg, "after");
    env_free(&e);
}

TEST(agent_tail_50mb_line_truncated_counted)
{
    const uint64_t big = 50000000, max = 65536;
    struct env e;
    env_init(&e, "*.log");
    e.cfg.max_line_bytes = max;
    e.cfg.long_lines = LH_TAIL_TRUNCATE;
    e.cfg.read_budget = 8 << 20;
    open_tail(&e);
    int fd = open(lpath(&e, "big.log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "before\n", 7) == 7);
    write_x(fd, big);
    settle(&e);
    CHECK_INT(e.n, ==, 1);                  /* the long line waits for its end */
    REQUIRE(write(fd, "\nafter\n", 7) == 7);
    close(fd);
    settle(&e);
    REQUIRE_INT(e.n, ==, 3);
    CHECK(e.v[1].flags & LH_REC_TRUNCATED);
    CHECK_INT(e.v[1].len, ==, max);
    CHECK_INT(e.v[1].start, ==, 7);
    CHECK_INT(e.v[1].end, ==, 7 + big + 1);
    CHECK_STR(e.v[2].msg, "after");
    struct lh_ledger_file tot;
    REQUIRE(lh_ledger_get(e.ledger, NULL, &tot) == 0);
    CHECK_INT(tot.bytes_dropped, ==, big - max);
    CHECK_INT(lh_ledger_flags(e.ledger, LH_FLAG_TRUNCATED), ==, 1);
    struct lh_tail_stats st;
    lh_tail_get_stats(e.t, &st);
    CHECK_INT(st.buffer_peak, <=, 2 * max + 64);
    env_free(&e);
}

/* ---- formats, checkpoint details, ledger ---------------------------------- */

TEST(agent_tail_cri_k8s_records_and_ledger)
{
    struct env e;
    env_init(&e, "*.log");
    e.cfg.format = LH_FMT_CRI;
    open_tail(&e);
    const char *name = "web-1_prod_app-00aa11bb.log";
    int fd = open(lpath(&e, name), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    const char *text = "2024-01-02T03:04:05Z stdout P hello \n"
                       "2024-01-02T03:04:05Z stdout F world\n"
                       "2024-01-02T03:04:06Z stderr F oops\n";
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    settle(&e);
    REQUIRE_INT(e.n, ==, 2);
    CHECK_STR(e.v[0].msg, "hello world");
    CHECK_INT(e.v[0].nlines, ==, 2);
    CHECK_STR(e.v[1].msg, "oops");
    struct lh_ledger_file lf;
    REQUIRE(lh_ledger_get(e.ledger, lpath(&e, name), &lf) == 0);
    CHECK_INT(lf.lines_read, ==, 3);
    CHECK_INT(lf.bytes_read, ==, strlen(text));
    ack_upto(&e, 1);
    REQUIRE(lh_ledger_get(e.ledger, lpath(&e, name), &lf) == 0);
    CHECK_INT(lf.lines_acked, ==, 2);
    CHECK_INT(lh_tail_ack(e.t, 999999, 1, 1), ==, LH_ENOTFOUND);
    env_free(&e);
}

static void k8s_capture(void *arg, const struct lh_record *r)
{
    char *out = arg;
    if (r->k8s)
        snprintf(out, 256, "%s/%s/%s/%s", r->k8s->namespace_, r->k8s->pod, r->k8s->container,
                 r->k8s->container_id);
}

TEST(agent_tail_k8s_metadata_on_records)
{
    struct env e;
    env_init(&e, "*.log");
    e.cfg.checkpoint = NULL;
    put(&e, "web-1_prod_app-00aa11bb.log", 1);
    char got[256] = "";
    struct lh_tail *t = NULL;
    REQUIRE(lh_tail_create(&e.cfg, e.ledger, k8s_capture, got, &t, NULL) == 0);
    REQUIRE(lh_tail_poll_once(t, 0, NULL) == 1);
    CHECK_STR(got, "prod/web-1/app/00aa11bb");
    lh_tail_destroy(t);
    env_free(&e);
}

TEST(agent_tail_checkpoint_only_acknowledged_and_read_from_end)
{
    struct env e;
    env_init(&e, "*.log");
    put(&e, "old.log", 10);
    e.cfg.read_from = LH_TAIL_END;          /* first start: skip what is there */
    open_tail(&e);
    settle(&e);
    CHECK_INT(e.n, ==, 0);
    put(&e, "old.log", 3);
    put(&e, "new.log", 2);                  /* found later: from its beginning */
    settle(&e);
    check_once(&e, 0, 10);
    /* Nothing acknowledged: a kill -9 now re-reads all of it. */
    struct lh_err err = { 0 };
    REQUIRE(lh_tail_checkpoint_save(e.t, &err) == 0);
    restart(&e);                            /* read_from no longer applies */
    settle(&e);
    check_once(&e, 0, 10);
    /* A corrupt checkpoint is moved aside and reading starts over. */
    lh_tail_destroy(e.t);
    e.t = NULL;
    FILE *f = fopen(e.ckpt, "w");
    REQUIRE(f);
    fputs("{not json", f);
    fclose(f);
    e.cfg.read_from = LH_TAIL_BEGINNING;
    for (size_t i = 0; i < e.n; i++)
        free(e.v[i].msg);
    e.n = e.acked = 0;
    open_tail(&e);
    char aside[600];
    snprintf(aside, sizeof(aside), "%s.corrupt", e.ckpt);
    CHECK(access(aside, F_OK) == 0);
    CHECK_INT(lh_ledger_errors(e.ledger, LH_TAILERR_CHECKPOINT), ==, 1);
    settle(&e);
    check_once(&e, 0, 0);
    env_free(&e);
}

TEST(agent_tail_multiline_flush_and_restart)
{
    struct env e;
    env_init(&e, "*.log");
    e.cfg.multiline = LH_ML_START;
    e.cfg.multiline_start = "^L";
    e.cfg.multiline_flush_ms = 1000;
    open_tail(&e);
    int fd = open(lpath(&e, "ml.log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    REQUIRE(fd >= 0);
    put_fd(&e, fd, 2);
    REQUIRE(write(fd, "\tat x\n\tat y\n", 12) == 12);
    put_fd(&e, fd, 1);
    step(&e, 10);
    CHECK_INT(e.n, ==, 2);                  /* the last record waits */
    CHECK_INT(lh_tail_next_wakeup(e.t, e.now), ==, 1000);
    CHECK_CONTAINS(e.v[1].msg, "\n\tat x\n\tat y");
    CHECK_INT(e.v[1].nlines, ==, 3);
    /* Restart before the pending record was emitted: it is read again, once. */
    ack_upto(&e, 2);
    restart(&e);
    step(&e, 10);
    CHECK_INT(e.n, ==, 2);
    step(&e, 1000);
    CHECK_INT(e.n, ==, 3);
    check_once(&e, 0, 0);
    close(fd);
    env_free(&e);
}

TEST(agent_tail_split_keeps_utf8_sequences_whole)
{
    struct env e;
    env_init(&e, "*.log");
    e.cfg.max_line_bytes = 10;
    open_tail(&e);
    int fd = open(lpath(&e, "u.log"), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    const char text[] = "aaaaaaaaa\xc3\xa9" "bbb\nshort\n0123456789\n";
    REQUIRE(write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
    close(fd);
    settle(&e);
    REQUIRE_INT(e.n, ==, 4);
    CHECK_STR(e.v[0].msg, "aaaaaaaaa");            /* cut before the 2-byte sequence */
    CHECK_INT(e.v[0].flags & (LH_REC_SPLIT | LH_REC_SPLIT_LAST), ==, LH_REC_SPLIT);
    CHECK_STR(e.v[1].msg, "\xc3\xa9" "bbb");
    CHECK_INT(e.v[1].flags & (LH_REC_SPLIT | LH_REC_SPLIT_LAST), ==,
              LH_REC_SPLIT | LH_REC_SPLIT_LAST);
    CHECK_INT(e.v[1].part, ==, 2);
    CHECK_INT(e.v[0].flags & LH_REC_INVALID_UTF8, ==, 0);
    CHECK_INT(e.v[1].flags & LH_REC_INVALID_UTF8, ==, 0);
    CHECK_STR(e.v[2].msg, "short");
    CHECK_STR(e.v[3].msg, "0123456789");           /* exactly the limit: whole */
    CHECK_INT(e.v[3].flags & LH_REC_SPLIT, ==, 0);
    env_free(&e);
}

TEST(agent_tail_rotated_away_before_opened)
{
    /* Rename-and-create faster than the scans: a file is created, written
     * and renamed to a name the glob does not match before any scan opened
     * it. inotify's rename pair says where it went: it is read from there
     * under its tailed name, nothing is lost. */
    struct env e;
    env_init(&e, "*.log");
    e.cfg.inotify = 1;
    open_tail(&e);
    REQUIRE(lh_tail_fd(e.t) >= 0);
    step(&e, 0);                            /* first scan: the directory is watched */
    put(&e, "hot.log", 50);
    settle(&e);
    CHECK_INT(e.n, ==, 50);
    for (int r = 1; r <= 5; r++) {          /* five rotations between two polls */
        char to[32];
        snprintf(to, sizeof(to), "hot.log.%d", r);
        REQUIRE(rename(lpath(&e, "hot.log"), lpath(&e, to)) == 0);
        put(&e, "hot.log", 7);
    }
    settle(&e);
    check_once(&e, 0, 0);
    CHECK_INT(lost_bytes(&e), ==, 0);
    CHECK_INT(files_open(&e), ==, 1);       /* the rotated ones are closed once drained */
    for (size_t i = 50; i < e.n; i++)       /* reported under the tailed name */
        CHECK_CONTAINS(e.v[i].path, "/hot.log");
    env_free(&e);
}

/* Unit tests for the agent's write-ahead guarantee under crashes: the agent
 * runs in a child process that is killed with SIGKILL at random moments
 * (mid-batch, mid-write, between a write and the checkpoint save, while the
 * collector answers 503) and started again on the same state directory,
 * while lines are appended and files rotated (rename + create,
 * copytruncate). A test collector, in a process of its own, records for
 * each line the Idempotency-Key and record index of every copy it receives.
 * At the end every line must have arrived, and every line that arrived
 * twice must carry the same (batch UUID, index) both times: the event id
 * downstream is derived from them, so such a duplicate is invisible.
 *
 * The random delays come from a seed printed on failure; LH_CRASH_SEED=N
 * replays a run. Test lines are "L<seq> INFO ..." (seq from 0). */
#include "http_test_util.h"   /* OpenSSL first: its lhash defines lh_error */
#undef lh_error
#include "../lh_test.h"
#include "../../agent/agent.h"
#include "../../collector/ingest.h"
#include "lh/codec.h"
#include "lh/log.h"
#include "lh/time.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NLINES 6000
#define KEYLEN 40

/* What the collector process saw, in memory shared with the test. */
struct seen {
    volatile int port;
    volatile int fail;              /* answer 503 to everything */
    volatile int stop;
    int requests, lines, distinct, dup_same, dup_diff;
    int bad_diff_seq;               /* first line that came back with another id */
    int counts[NLINES];
    uint32_t first_idx[NLINES];
    char first_key[NLINES][KEYLEN];
};

static void reply(struct lh_http_req *req, int status, const char *body)
{
    struct lh_http_header h[2] = { { "Retry-After", "0" }, { NULL, NULL } };
    lh_http_respond_json(req, status, status == 503 ? h : NULL, body, strlen(body));
}

static void on_ingest(struct lh_http_req *req, void *arg)
{
    struct seen *sh = arg;
    sh->requests++;
    if (sh->fail) {
        reply(req, 503, "{\"error\":{\"code\":\"unavailable\"}}");
        return;
    }
    const char *key = lh_http_req_header(req, "Idempotency-Key");
    const char *enc = lh_http_req_header(req, "Content-Encoding");
    size_t len;
    const char *body = lh_http_req_body(req, &len);
    enum lh_codec codec = LH_CODEC_NONE;
    struct lh_err err = { 0 };
    if (enc)
        lh_codec_parse(enc, strlen(enc), &codec, &err);
    struct lh_buf json = LH_BUF_INIT;
    struct lh_codec_ctx *cx = NULL;
    lh_codec_ctx_create(&cx, &err);
    int rc = lh_codec_ctx_decode(cx, codec, body, len, 64u << 20, 0, &json, &err);
    lh_codec_ctx_destroy(cx);
    struct lh_arena ar = LH_ARENA_INIT;
    struct lh_ingest_batch b;
    struct lh_ingest_error e;
    struct lh_ingest_limits lim = { 100000, 1 << 20, 100, 64, 1 };
    struct lh_uuid u = { { 0 } };
    struct lh_ingest_context ctx = { "t", u.b, lh_time_now_ns(), "h" };
    if (rc == 0)
        rc = lh_ingest_decode_json(json.data, json.len, &lim, &ctx, &ar, &b, &e);
    if (rc < 0 || !key) {
        reply(req, 400, "{\"error\":{\"code\":\"bad_body\"}}");
    } else {
        for (size_t i = 0; i < b.n; i++) {
            int seq;
            const char *raw = b.events[i].raw ? b.events[i].raw : "";
            sh->lines++;
            if (sscanf(raw, "L%d", &seq) != 1 || seq < 0 || seq >= NLINES)
                continue;
            if (sh->counts[seq]++ == 0) {
                sh->distinct++;
                snprintf(sh->first_key[seq], KEYLEN, "%s", key);
                sh->first_idx[seq] = (uint32_t)i;
            } else if (strcmp(sh->first_key[seq], key) == 0 && sh->first_idx[seq] == i) {
                sh->dup_same++;
            } else {
                if (!sh->dup_diff++)
                    sh->bad_diff_seq = seq;
            }
        }
        reply(req, 200, "{\"accepted\":1}");
    }
    lh_buf_free(&json);
    lh_arena_free(&ar);
}

static void tc_setup(struct lh_http_server *srv, void *arg)
{
    lh_http_server_route(srv, "POST", "/v1/logs/ingest", on_ingest, arg, NULL);
}

/* The collector process: serves until sh->stop. */
static void collector_main(struct seen *sh)
{
    lh_log_set_level(LH_LOG_OFF);
    struct ht_server hs;
    memset(&hs, 0, sizeof(hs));
    struct lh_http_server_config cfg = { .listen = "127.0.0.1:0" };
    if (ht_start(&hs, &cfg, tc_setup, sh) != 0)
        _exit(3);
    sh->port = hs.port;
    while (!sh->stop)
        ht_sleep_ms(5);
    ht_stop(&hs);
    _exit(0);
}

/* The agent process: runs until killed. */
static void agent_main(const char *yaml)
{
    lh_log_set_level(getenv("LH_CRASH_LOG") ? LH_LOG_INFO : LH_LOG_OFF);
    struct lh_agent_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct lh_err err = { 0 };
    uv_loop_t loop;
    struct lh_agent *a;
    if (lh_conf_load_string("agent.yaml", yaml, strlen(yaml), lh_agent_opts, &cfg, &err) < 0 ||
        uv_loop_init(&loop) != 0 || lh_agent_create(&loop, &cfg, NULL, NULL, &a, &err) < 0) {
        fprintf(stderr, "    agent: %s\n", err.msg);
        _exit(3);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(4);
}

static pid_t spawn_agent(const char *yaml)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        agent_main(yaml);
    REQUIRE(pid > 0);
    return pid;
}

static void kill_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

/* A small deterministic generator (xorshift), so a seed replays a run. */
static uint64_t rnd_state;
static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static const char *const files[3] = { "a.log", "b.log", "c.log" };

/* Appends lines [from, to) round-robin to the three files. */
static void write_lines(const char *logs, int from, int to)
{
    struct lh_buf b[3] = { LH_BUF_INIT, LH_BUF_INIT, LH_BUF_INIT };
    for (int i = from; i < to; i++)
        lh_buf_printf(&b[i % 3], "L%d INFO payload of line %d padding-padding-padding\n", i, i);
    for (int k = 0; k < 3; k++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", logs, files[k]);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, b[k].data, b[k].len) == (ssize_t)b[k].len);
        close(fd);
        lh_buf_free(&b[k]);
    }
}

static int count_batch_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strlen(de->d_name) > 6 && strcmp(de->d_name + strlen(de->d_name) - 6, ".batch") == 0;
    closedir(d);
    return n;
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof(buf))) > 0)
        REQUIRE(write(out, buf, (size_t)r) == r);
    close(in);
    close(out);
}

/* One crash run: kills the agent `kills` times, with the given
 * write_ahead setting; returns what the collector saw (caller unmaps). */
static struct seen *crash_run(int kills, int write_ahead, uint64_t seed)
{
    char dir[300], logs[400], state[400], buffer[500], yaml[4096];
    snprintf(dir, sizeof(dir), "%s", lh_test_tmpdir());
    snprintf(logs, sizeof(logs), "%s/logs", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(buffer, sizeof(buffer), "%s/buffer", state);
    REQUIRE(mkdir(logs, 0777) == 0 && mkdir(state, 0777) == 0);
    rnd_state = seed ? seed : 1;

    struct seen *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0);
    REQUIRE(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    fflush(NULL);
    pid_t cpid = fork();
    if (cpid == 0)
        collector_main(sh);
    REQUIRE(cpid > 0);
    for (int i = 0; i < 1000 && !sh->port; i++)
        ht_sleep_ms(5);
    REQUIRE(sh->port > 0);

    /* Small batches, several in flight, and a checkpoint saved rarely: most
     * kills find batches on disk that the checkpoint does not include. */
    snprintf(yaml, sizeof(yaml),
             "tail:\n"
             "  include: ['%s/*.log']\n"
             "  checkpoint: %s/checkpoint.json\n"
             "  scan_interval: 50ms\n"
             "  rotate_wait: 100ms\n"
             "batch:\n"
             "  max_age: 20ms\n"
             "  max_records: 40\n"
             "ship:\n"
             "  endpoints: ['http://127.0.0.1:%d']\n"
             "  in_flight: 4\n"
             "  backoff_base: 20ms\n"
             "  backoff_max: 100ms\n"
             "  spill_after: 100ms\n"
             "  connect_timeout: 1s\n"
             "  timeout: 5s\n"
             "buffer:\n"
             "  dir: %s\n"
             "  write_ahead: %s\n"
             "host_id: crash-host\n"
             "checkpoint_interval: 300ms\n",
             logs, state, sh->port, buffer, write_ahead ? "true" : "false");

    int next = 0, leftovers = 0;
    for (int k = 0; k < kills; k++) {
        leftovers += count_batch_files(buffer);
        pid_t apid = spawn_agent(yaml);
        int fail_round = k % 4 == 2;   /* the collector is down for this round */
        sh->fail = fail_round;
        int ms = fail_round ? 300 : 20 + (int)rnd(280);
        for (int t = 0; t < ms; t += 5) {
            if (next < NLINES) {
                int n = 10 + (int)rnd(40);
                if (next + n > NLINES)
                    n = NLINES - next;
                write_lines(logs, next, next + n);
                next += n;
            }
            if (k == 1 && t == 40) {   /* rename + create */
                char from[600], to[600];
                snprintf(from, sizeof(from), "%s/a.log", logs);
                snprintf(to, sizeof(to), "%s/a.log.1", logs);
                REQUIRE(rename(from, to) == 0);
            }
            if (k == 3 && t == 40) {   /* copytruncate */
                char from[600], to[600];
                snprintf(from, sizeof(from), "%s/b.log", logs);
                snprintf(to, sizeof(to), "%s/b.log.1", logs);
                copy_file(from, to);
                REQUIRE(truncate(from, 0) == 0);
            }
            ht_sleep_ms(5);
        }
        kill_wait(apid);
    }
    sh->fail = 0;
    if (next < NLINES)
        write_lines(logs, next, NLINES);
    leftovers += count_batch_files(buffer);
    pid_t apid = spawn_agent(yaml);   /* the last one runs to the end */
    for (int i = 0; i < 6000 && sh->distinct < NLINES; i++)
        ht_sleep_ms(5);
    ht_sleep_ms(300);   /* anything still on its way */
    kill_wait(apid);
    sh->stop = 1;
    int st;
    while (waitpid(cpid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!write_ahead || getenv("LH_CRASH_LOG"))
        fprintf(stderr, "    write_ahead=%d: %d kills, %d lines received for %d, %d distinct, "
                "%d repeats with the same id, %d with another id, %d batch files found at "
                "restarts\n", write_ahead, kills, sh->lines, NLINES, sh->distinct, sh->dup_same,
                sh->dup_diff, leftovers);
    sh->requests = leftovers;   /* reported to the caller */
    return sh;
}

static uint64_t crash_seed(void)
{
    const char *s = getenv("LH_CRASH_SEED");
    return s ? strtoull(s, NULL, 10) : (uint64_t)lh_time_now_ns() ^ (uint64_t)getpid();
}

TEST(agent_crash_kill9_no_visible_duplicates)
{
    uint64_t seed = crash_seed();
    struct seen *sh = crash_run(10, 1, seed);
    int missing = 0, first_missing = -1;
    for (int i = 0; i < NLINES; i++)
        if (!sh->counts[i]) {
            if (!missing++)
                first_missing = i;
            if (missing <= 20)
                fprintf(stderr, "    missing L%d\n", i);
        }
    if (missing || sh->dup_diff)
        lh_test_fail(__FILE__, __LINE__,
                     "seed %llu: %d lines missing (first L%d), %d repeated with another id "
                     "(first L%d), %d repeated with the same id",
                     (unsigned long long)seed, missing, first_missing, sh->dup_diff,
                     sh->bad_diff_seq, sh->dup_same);
    /* The run did crash with batches on disk (else it proved nothing). */
    CHECK_INT(sh->requests, >, 0);
    /* Lines arrive twice only from batches in flight at a kill (4 requests
     * of up to 40 records): delivered batches are not sent again. */
    CHECK_INT(sh->dup_same, <=, 10 * 4 * 40);
    munmap(sh, sizeof(*sh));
}

/* A crash image with a hole: the agent wrote batches 1..N ahead (the
 * collector refused them all) and was killed before any checkpoint; then
 * batch 4's file is removed, as if the crash had hit while it was being
 * written. The restarted agent sends 1..3 again (same UUIDs) and resumes
 * the file after them; 5..N cannot have been sent (nothing is sent before
 * every older batch is on disk), so they are deleted and their lines read
 * again: every line arrives exactly once. */
TEST(agent_crash_recovery_resumes_after_buffer_and_drops_after_a_gap)
{
    char dir[300], logs[400], state[400], buffer[500], yaml[4096], path[600];
    snprintf(dir, sizeof(dir), "%s", lh_test_tmpdir());
    snprintf(logs, sizeof(logs), "%s/logs", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(buffer, sizeof(buffer), "%s/buffer", state);
    REQUIRE(mkdir(logs, 0777) == 0 && mkdir(state, 0777) == 0);
    struct seen *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0);
    REQUIRE(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    sh->fail = 1;
    fflush(NULL);
    pid_t cpid = fork();
    if (cpid == 0)
        collector_main(sh);
    REQUIRE(cpid > 0);
    for (int i = 0; i < 1000 && !sh->port; i++)
        ht_sleep_ms(5);
    REQUIRE(sh->port > 0);
    snprintf(yaml, sizeof(yaml),
             "tail:\n  include: ['%s/*.log']\n  checkpoint: %s/checkpoint.json\n"
             "batch:\n  max_age: 20ms\n  max_records: 40\n"
             "ship:\n  endpoints: ['http://127.0.0.1:%d']\n  backoff_base: 20ms\n"
             "  backoff_max: 50ms\n"
             "buffer:\n  dir: %s\n"
             "host_id: crash-host\ncheckpoint_interval: 1h\n",
             logs, state, sh->port, buffer);
    const int n = 400;   /* 10 batches of 40 */
    write_lines(logs, 0, n);
    pid_t apid = spawn_agent(yaml);
    for (int i = 0; i < 2000 && count_batch_files(buffer) < 10; i++)
        ht_sleep_ms(5);
    kill_wait(apid);
    REQUIRE_INT(count_batch_files(buffer), ==, 10);
    snprintf(path, sizeof(path), "%s/checkpoint.json", state);
    REQUIRE(access(path, F_OK) != 0);   /* no checkpoint: only the buffer knows */
    CHECK_INT(sh->distinct, ==, 0);
    snprintf(path, sizeof(path), "%s/00000000000000000004.batch", buffer);
    REQUIRE(unlink(path) == 0);

    sh->fail = 0;
    apid = spawn_agent(yaml);
    for (int i = 0; i < 2000 && sh->distinct < n; i++)
        ht_sleep_ms(5);
    ht_sleep_ms(200);
    kill_wait(apid);
    sh->stop = 1;
    int st;
    while (waitpid(cpid, &st, 0) < 0 && errno == EINTR)
        ;
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (sh->counts[i] != 1 && bad++ < 5)
            fprintf(stderr, "    L%d arrived %d times\n", i, sh->counts[i]);
    CHECK_INT(bad, ==, 0);
    CHECK_INT(sh->distinct, ==, n);
    CHECK_INT(sh->dup_diff + sh->dup_same, ==, 0);
    munmap(sh, sizeof(*sh));
}

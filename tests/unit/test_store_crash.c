/* test_store_crash.c - durability tests of the embedded log store: the
 * writer killed with SIGKILL at random points, torn tails, and flipped
 * bytes in segments (verify reports them, queries skip the damaged blocks). */
#include "../lh_test.h"
#include "store_testlib.h"
#include "../../common/store_int.h"
#include "lh/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void gen_batch(uint64_t seed, struct lh_arena *a, struct lh_event *evs, size_t n)
{
    struct tgen g = { seed * 0x9e3779b97f4a7c15ull + 1, a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "crash", TBASE, 2 * TDAY);
}

#define CRASH_BATCH 25

/* Child: appends batches forever, reporting each acknowledged one. */
static void crash_child(const char *dir, int iter, int fd)
{
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)dir;
    cfg.block_events = 16;
    cfg.segment_bytes = 32 * 1024;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0)
        _exit(2);
    struct lh_arena a = LH_ARENA_INIT;
    for (uint32_t b = 0;; b++) {
        struct lh_event evs[CRASH_BATCH];
        uint64_t seed = (uint64_t)iter * 100000 + b;
        lh_arena_reset(&a);
        if (b > 0 && b % 3 == 0) {   /* a retry of the previous batch */
            gen_batch(seed - 1, &a, evs, CRASH_BATCH);
            if (lh_store_append(s, evs, CRASH_BATCH, NULL, &err) < 0)
                _exit(3);
            lh_arena_reset(&a);
        }
        gen_batch(seed, &a, evs, CRASH_BATCH);
        if (lh_store_append(s, evs, CRASH_BATCH, NULL, &err) < 0)
            _exit(3);
        if (write(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed))
            _exit(4);
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

TEST(store_crash_kill9_50_times)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/crash", lh_test_tmpdir());
    uint64_t *acked = NULL;
    size_t nacked = 0;
    uint64_t rng = (uint64_t)time(NULL) | 1;
    int bad_iters = 0;
    for (int iter = 0; iter < 50; iter++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(dir, iter, p[1]);
        }
        close(p[1]);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if (rng % 4) {
            /* mostly: let it get going, then kill at a random point */
            uint64_t first;
            if (read(p[0], &first, sizeof(first)) == (ssize_t)sizeof(first)) {
                acked = realloc(acked, (nacked + 1) * sizeof(*acked));
                acked[nacked++] = first;
            }
            usleep((useconds_t)(rng % 20000));
        } else {
            /* sometimes: during open and recovery */
            usleep((useconds_t)(rng % 3000));
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));   /* it was still appending, not failed */
        uint64_t seed;
        while (read(p[0], &seed, sizeof(seed)) == (ssize_t)sizeof(seed)) {
            acked = realloc(acked, (nacked + 1) * sizeof(*acked));
            acked[nacked++] = seed;
        }
        close(p[0]);

        /* restart: recovery, then every acknowledged event exactly once */
        struct lh_store_config cfg = { 0 };
        cfg.dir = dir;
        struct lh_store *s = NULL;
        struct lh_err err = { 0 };
        REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
        struct lh_store_report *rep = NULL;
        REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
        if (rep->nproblems) {
            fprintf(stderr, "iteration %d: verify: %s\n", iter, rep->problems[0]);
            bad_iters++;
        }
        lh_store_report_free(rep);
        struct lh_store_query q = { .tenant = "crash", .limit = 10000000 };
        struct lh_store_result *res = NULL;
        REQUIRE_INT(lh_store_search(s, &q, &res, &err), ==, 0);
        const char **ids = malloc((res->n + 1) * sizeof(*ids));
        for (size_t i = 0; i < res->n; i++)
            ids[i] = res->events[i].id;
        qsort(ids, res->n, sizeof(*ids), str_cmp);
        size_t dups = 0, missing = 0;
        for (size_t i = 1; i < res->n; i++)
            dups += strcmp(ids[i], ids[i - 1]) == 0;
        struct lh_arena a = LH_ARENA_INIT;
        for (size_t k = 0; k < nacked; k++) {
            struct lh_event evs[CRASH_BATCH];
            lh_arena_reset(&a);
            gen_batch(acked[k], &a, evs, CRASH_BATCH);
            for (size_t i = 0; i < CRASH_BATCH; i++)
                missing += bsearch(&evs[i].id, ids, res->n, sizeof(*ids), str_cmp) == NULL;
        }
        lh_arena_free(&a);
        if (dups || missing) {
            fprintf(stderr, "iteration %d: %zu duplicates, %zu acknowledged events missing\n",
                    iter, dups, missing);
            bad_iters++;
        }
        CHECK(res->n >= nacked * CRASH_BATCH);
        free(ids);
        lh_store_result_free(res);
        lh_store_close(s);
    }
    CHECK_INT(bad_iters, ==, 0);
    CHECK(nacked >= 30);   /* the children got real work done */
    free(acked);
}

/* ---- torn tails --------------------------------------------------------- */

static int last_segment(const char *pdir, char *out, size_t outsz)
{
    DIR *d = opendir(pdir);
    if (!d)
        return -1;
    struct dirent *de;
    char best[64] = "";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", de->d_name);
    closedir(d);
    if (!best[0])
        return -1;
    snprintf(out, outsz, "%s/%s", pdir, best);
    return 0;
}

static uint64_t count_all(struct lh_store *s, const char *tenant)
{
    struct lh_store_query q = { .tenant = tenant };
    uint64_t n = 0;
    struct lh_err err = { 0 };
    if (lh_store_count(s, &q, &n, &err) < 0)
        return UINT64_MAX;
    return n;
}

TEST(store_torn_tail_dropped_at_open)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_event evs[40];
    /* a writer that dies without sealing its segment */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct lh_store_config cfg = { .dir = (char *)dir, .block_events = 10 };
        struct lh_store *s = NULL;
        if (lh_store_open(&s, &cfg, LH_STORE_WRITE, NULL) < 0)
            _exit(2);
        for (int b = 0; b < 3; b++) {
            struct lh_event e[40];
            struct tgen g = { 100 + (uint64_t)b, &a, 0, { 0 }, 0 };
            tg_new_batch(&g);
            for (int i = 0; i < 40; i++)
                tg_event(&g, &e[i], "torn", TBASE, TDAY);
            if (lh_store_append(s, e, 40, NULL, NULL) < 0)
                _exit(3);
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char pdir[600], seg[700];
    snprintf(pdir, sizeof(pdir), "%s/torn/2024-10-04", dir);
    REQUIRE(last_segment(pdir, seg, sizeof(seg)) == 0);
    struct stat st;
    REQUIRE(stat(seg, &st) == 0);
    off_t full = st.st_size;

    /* 1: garbage after the last block (a header that never completed) */
    int fd = open(seg, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    char junk[100];
    memset(junk, 0x5a, sizeof(junk));
    memcpy(junk, "HLK1", 4);
    REQUIRE(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    struct lh_store_config cfg = { .dir = (char *)dir };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    struct lh_store_report *rep = NULL;
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_READ, &err), ==, 0);
    CHECK_INT(count_all(s, "torn"), ==, 120);     /* readers ignore an incomplete tail */
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK(rep->nproblems > 0);                    /* verify sees it before recovery */
    lh_store_report_free(rep);
    lh_store_close(s);
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK_INT(rep->nproblems, ==, 0);
    CHECK_INT(rep->events, ==, 120);
    lh_store_report_free(rep);
    CHECK_INT(count_all(s, "torn"), ==, 120);
    lh_store_close(s);

    /* the torn segment was replaced by a sealed copy of its valid blocks */
    CHECK(access(seg, F_OK) != 0);
    REQUIRE(last_segment(pdir, seg, sizeof(seg)) == 0);
    REQUIRE(stat(seg, &st) == 0);
    CHECK_INT(st.st_size, ==, full + 8 + LHS_BLK_HDR);   /* longer header, blocks, seal: no junk */
    /* 2: the last block cut in the middle (lost on power failure) */
    REQUIRE(truncate(seg, st.st_size - LHS_BLK_HDR - 30) == 0);
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK_INT(rep->nproblems, ==, 0);
    uint64_t n = count_all(s, "torn");
    CHECK(n < 120 && n >= 100);
    CHECK_INT(rep->events, ==, n);
    lh_store_report_free(rep);
    /* the writer goes on appending; the lost events can be appended again */
    struct tgen g = { 102, &a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    for (int i = 0; i < 40; i++)
        tg_event(&g, &evs[i], "torn", TBASE, TDAY);
    struct lh_store_append_stats as;
    REQUIRE_INT(lh_store_append(s, evs, 40, &as, &err), ==, 0);
    CHECK_INT(as.stored, ==, 120 - n);
    CHECK_INT(count_all(s, "torn"), ==, 120);
    lh_store_close(s);
    lh_arena_free(&a);
}

/* ---- corruption --------------------------------------------------------- */

static void flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    if (fd < 0 || pread(fd, &c, 1, (off_t)off) != 1)
        abort();
    c ^= 0x41;
    if (pwrite(fd, &c, 1, (off_t)off) != 1)
        abort();
    close(fd);
}

TEST(store_corruption_detected_and_skipped)
{
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store_config cfg = { .dir = (char *)dir, .block_events = 50 };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    size_t n = 1000;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    struct tgen g = { 2024, &a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "cor", TBASE, TDAY);
    REQUIRE_INT(lh_store_append(s, evs, n, NULL, &err), ==, 0);
    lh_store_close(s);

    char pdir[600], seg[700];
    snprintf(pdir, sizeof(pdir), "%s/cor/2024-10-04", dir);
    REQUIRE(last_segment(pdir, seg, sizeof(seg)) == 0);
    struct lhs_seg *sg = NULL;
    REQUIRE_INT(lhs_seg_open(seg, &sg, &err), ==, 0);
    REQUIRE_INT(lhs_seg_scan(sg, 1, NULL, NULL, &err), ==, 0);
    REQUIRE_INT(sg->nblocks, ==, 20);
    /* damage: a body byte of block 3, a meta byte of block 9, a header byte of 15 */
    const struct lhs_block *b3 = sg->blocks[3], *b9 = sg->blocks[9], *b15 = sg->blocks[15];
    uint64_t lost = b3->nrows + b9->nrows + b15->nrows;
    uint64_t off3 = b3->off + LHS_BLK_HDR + b3->meta_len + b3->body_len / 2;
    uint64_t off9 = b9->off + LHS_BLK_HDR + 200;
    uint64_t off15 = b15->off + 9;
    lhs_seg_unref(sg);
    flip(seg, off3);
    flip(seg, off9);
    flip(seg, off15);

    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_READ, &err), ==, 0);
    struct lh_store_report *rep = NULL;
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK_INT(rep->nproblems, ==, 3);
    CHECK_INT(rep->corrupt_blocks, ==, 3);
    for (size_t i = 0; i < rep->nproblems; i++)
        CHECK_CONTAINS(rep->problems[i], ".seg@");
    lh_store_report_free(rep);

    /* queries skip the damaged blocks and return only intact events */
    CHECK_INT(count_all(s, "cor"), ==, n - lost);
    struct lh_store_query q = { .tenant = "cor", .limit = 100000 };
    struct lh_store_result *res = NULL;
    REQUIRE_INT(lh_store_search(s, &q, &res, &err), ==, 0);
    CHECK_INT(res->n, ==, n - lost);
    CHECK(res->blocks_corrupt >= 1);
    size_t bad = 0;
    for (size_t i = 0; i < res->n; i++) {
        const struct lh_event *e = &res->events[i];
        const struct lh_event *orig = NULL;
        for (size_t k = 0; k < n && !orig; k++)
            if (strcmp(evs[k].id, e->id) == 0)
                orig = &evs[k];
        bad += !orig || !ref_event_eq(e, orig);
    }
    CHECK_INT(bad, ==, 0);
    lh_store_result_free(res);
    /* a term search that needs the damaged block's text still works */
    const char *terms[] = { "timeout" };
    q.terms = terms;
    q.nterms = 1;
    uint64_t cnt;
    CHECK_INT(lh_store_count(s, &q, &cnt, &err), ==, 0);
    lh_store_close(s);

    /* the writer opens the damaged store (it is not a torn tail) and keeps it;
     * merge leaves the damaged segment alone */
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    CHECK_INT(count_all(s, "cor"), ==, n - lost);
    struct lh_store_maint_stats ms = { 0 };
    CHECK_INT(lh_store_merge(s, &ms, &err), ==, 0);
    CHECK_INT(ms.segments_written, ==, 0);
    CHECK_INT(count_all(s, "cor"), ==, n - lost);
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK_INT(rep->nproblems, ==, 3);
    lh_store_report_free(rep);
    lh_store_close(s);
    lh_arena_free(&a);
}

/* Random damage anywhere in a segment: never a crash, never a wrong event. */
TEST(store_random_damage_never_served)
{
    lh_log_set_level(LH_LOG_OFF);   /* hundreds of expected "block skipped" lines */
    const char *dir = lh_test_tmpdir();
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store_config cfg = { .dir = (char *)dir, .block_events = 40 };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    size_t n = 400;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    struct tgen g = { 77, &a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "dmg", TBASE, TDAY);
    REQUIRE_INT(lh_store_append(s, evs, n, NULL, &err), ==, 0);
    lh_store_close(s);
    char pdir[600], seg[700];
    snprintf(pdir, sizeof(pdir), "%s/dmg/2024-10-04", dir);
    REQUIRE(last_segment(pdir, seg, sizeof(seg)) == 0);
    int fd = open(seg, O_RDONLY);
    REQUIRE(fd >= 0);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    size_t size = (size_t)st.st_size;
    uint8_t *orig = malloc(size);
    REQUIRE(read(fd, orig, size) == (ssize_t)size);
    close(fd);
    uint64_t rng = 12345;
    size_t wrong = 0;
    for (int iter = 0; iter < 60; iter++) {
        uint8_t *copy = malloc(size);
        memcpy(copy, orig, size);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            copy[rng % size] ^= (uint8_t)(1 + (rng >> 32) % 255);
        }
        fd = open(seg, O_WRONLY | O_TRUNC);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, copy, size) == (ssize_t)size);
        close(fd);
        free(copy);
        REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_READ, &err), ==, 0);
        struct lh_store_report *rep = NULL;
        if (lh_store_inspect(s, 1, &rep, &err) == 0)
            lh_store_report_free(rep);
        struct lh_store_query q = { .tenant = "dmg", .limit = 100000 };
        struct lh_store_result *res = NULL;
        if (lh_store_search(s, &q, &res, &err) == 0) {
            for (size_t i = 0; i < res->n; i++) {
                const struct lh_event *e = &res->events[i];
                const struct lh_event *o = NULL;
                for (size_t k = 0; k < n && !o; k++)
                    if (e->id && strcmp(evs[k].id, e->id) == 0)
                        o = &evs[k];
                wrong += !o || !ref_event_eq(e, o);
            }
            lh_store_result_free(res);
        }
        const char *terms[] = { "error" };
        q.terms = terms;
        q.nterms = 1;
        uint64_t cnt;
        lh_store_count(s, &q, &cnt, &err);
        lh_store_close(s);
    }
    CHECK_INT(wrong, ==, 0);
    free(orig);
    lh_arena_free(&a);
}

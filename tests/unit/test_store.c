/* test_store.c - unit tests of the embedded log store: encoding round trips,
 * every query operation against a brute-force reference on random data,
 * cursors under concurrent appends, duplicate ids, retention, merge while
 * reading, tenant isolation. */
#include "../lh_test.h"
#include "store_testlib.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "lh/store.h"

static struct lh_store *open_store(const char *dir, enum lh_store_mode mode, int64_t block_events)
{
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)dir;
    cfg.block_events = block_events;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    int rc = lh_store_open(&s, &cfg, mode, &err);
    if (rc < 0)
        fprintf(stderr, "open: %s\n", err.msg);
    return s;
}

static char *subdir(const char *name)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", lh_test_tmpdir(), name);
    return b;
}

/* Every matching event, newest first, by walking pages of `limit`. */
static size_t walk_all(struct lh_store *s, struct lh_store_query *q, size_t limit,
                       struct lh_arena *a, struct lh_event **out)
{
    size_t n = 0, cap = 64;
    struct lh_event *v = lh_arena_alloc(a, cap * sizeof(*v));
    struct lh_store_pos pos;
    q->limit = limit;
    q->after = NULL;
    for (int pages = 0; pages < 100000; pages++) {
        struct lh_store_result *r = NULL;
        struct lh_err err = { 0 };
        if (lh_store_search(s, q, &r, &err) < 0) {
            fprintf(stderr, "search: %s\n", err.msg);
            break;
        }
        for (size_t i = 0; i < r->n; i++) {
            if (n == cap) {
                struct lh_event *nv = lh_arena_alloc(a, 2 * cap * sizeof(*nv));
                memcpy(nv, v, n * sizeof(*v));
                v = nv;
                cap *= 2;
            }
            v[n] = r->events[i];
            tg_event_own(a, &v[n++]);   /* strings copied into a */
        }
        int more = r->more;
        if (r->n)
            pos = r->next;
        size_t got = r->n;
        lh_store_result_free(r);
        if (!more || got == 0)
            break;
        q->after = &pos;
    }
    q->after = NULL;
    *out = v;
    return n;
}

TEST(store_roundtrip_all_fields)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *s = open_store(lh_test_tmpdir(), LH_STORE_WRITE, 50);
    REQUIRE(s);
    struct tgen g = { 12345, &a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    size_t n = 700;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    for (size_t i = 0; i < n; i++)
        tg_event(&g, &evs[i], "acme", TBASE, TDAY / 2);
    /* edge cases: every field absent, long values, \x01 in fields */
    evs[0] = (struct lh_event){ .ts_ns = TBASE + 5, .id = "bare-1", .tenant = "acme" };
    char *longmsg = lh_arena_alloc(&a, 100001);
    for (int i = 0; i < 100000; i++)
        longmsg[i] = (char)('a' + i % 26);
    longmsg[100000] = 0;
    evs[1].message = longmsg;
    evs[1].raw = longmsg;
    evs[2].message = "ctl\x01M in message";
    evs[2].raw = "ctl\x01M in message and raw \x01";
    struct lh_store_append_stats st;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_append(s, evs, n, &st, &err), ==, 0);
    CHECK_INT(st.stored, ==, n);
    CHECK_INT(st.duplicates, ==, 0);

    struct lh_store_query q = { .tenant = "acme" };
    struct lh_event *got;
    size_t ng = walk_all(s, &q, 1000, &a, &got);
    REQUIRE_INT(ng, ==, n);
    qsort(got, ng, sizeof(*got), tg_id_cmp);
    struct lh_event *want = lh_arena_alloc(&a, n * sizeof(*want));
    memcpy(want, evs, n * sizeof(*want));
    qsort(want, n, sizeof(*want), tg_id_cmp);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !ref_event_eq(&got[i], &want[i]);
    CHECK_INT(bad, ==, 0);

    /* a reader handle in another "process" sees the same */
    struct lh_store *r = open_store(lh_test_tmpdir(), LH_STORE_READ, 0);
    REQUIRE(r);
    uint64_t cnt = 0;
    CHECK_INT(lh_store_count(r, &q, &cnt, &err), ==, 0);
    CHECK_INT(cnt, ==, n);
    lh_store_close(r);
    lh_store_close(s);

    /* and after reopening */
    s = open_store(lh_test_tmpdir(), LH_STORE_READ, 0);
    REQUIRE(s);
    CHECK_INT(lh_store_count(s, &q, &cnt, &err), ==, 0);
    CHECK_INT(cnt, ==, n);
    struct lh_store_report *rep = NULL;
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK_INT(rep->nproblems, ==, 0);
    CHECK_INT(rep->events, ==, n);
    CHECK(rep->blocks >= n / 50);
    CHECK(rep->disk_bytes > 0 && rep->raw_bytes > rep->disk_bytes);
    lh_store_report_free(rep);
    lh_store_close(s);
    lh_arena_free(&a);
}

TEST(store_position_encoding)
{
    struct lh_store_pos p = { 1234567890123456789ll, "0123456789abcdef0123456789abcdef-42" }, q;
    uint8_t buf[LH_STORE_POS_BYTES];
    size_t n = lh_store_pos_encode(&p, buf);
    CHECK(n <= LH_STORE_POS_BYTES);
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_pos_decode(buf, n, &q, &err), ==, 0);
    CHECK_INT(q.ts_ns, ==, p.ts_ns);
    CHECK_STR(q.id, p.id);
    buf[3] ^= 1;
    CHECK_INT(lh_store_pos_decode(buf, n, &q, &err), ==, LH_EINVAL);
    CHECK_INT(lh_store_pos_decode(buf, n - 1, &q, &err), ==, LH_EINVAL);
}

TEST(store_duplicate_ids)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *s = open_store(lh_test_tmpdir(), LH_STORE_WRITE, 16);
    REQUIRE(s);
    struct tgen g = { 777, &a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    struct lh_event evs[100];
    for (int i = 0; i < 100; i++)
        tg_event(&g, &evs[i], "t1", TBASE, TDAY * 2);
    struct lh_store_append_stats st;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_append(s, evs, 60, &st, &err), ==, 0);
    CHECK_INT(st.stored, ==, 60);
    /* retry of the batch plus new ones; a duplicate inside the batch too */
    evs[99] = evs[70];
    REQUIRE_INT(lh_store_append(s, evs, 100, &st, &err), ==, 0);
    CHECK_INT(st.stored, ==, 39);
    CHECK_INT(st.duplicates, ==, 61);
    /* bad ids are rejected, not stored */
    struct lh_event bad = evs[0];
    bad.id = NULL;
    REQUIRE_INT(lh_store_append(s, &bad, 1, &st, &err), ==, 0);
    CHECK_INT(st.rejected, ==, 1);
    lh_store_close(s);

    /* the id index is rebuilt from disk */
    s = open_store(lh_test_tmpdir(), LH_STORE_WRITE, 16);
    REQUIRE(s);
    REQUIRE_INT(lh_store_append(s, evs, 100, &st, &err), ==, 0);
    CHECK_INT(st.stored, ==, 0);
    CHECK_INT(st.duplicates, ==, 100);
    struct lh_store_query q = { .tenant = "t1" };
    uint64_t n = 0;
    REQUIRE_INT(lh_store_count(s, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 99);
    lh_store_close(s);
    lh_arena_free(&a);
}

/* ---- property test: random queries vs brute force --------------------- */

static const char *const q_fields[] = {
    "service", "level", "host", "trace_id", "user_id", "message", "stream", "container_id",
    "k8s.namespace", "k8s.pod", "region", "file", "raw", "timestamp", "received", "span_id",
    "metadata.k1", "metadata.duration_ms", "metadata.region_hint", "id",
};
#define NQF (sizeof(q_fields) / sizeof(q_fields[0]))

static const char *pick_value(struct tgen *g, const struct lh_event *evs, size_t n,
                              const char *field, struct lh_arena *a)
{
    char buf[32];
    if (!strcmp(field, "level")) {
        static const char *const lv[] = { "error", "WARN", "info", "Debug", "trace", "FATAL",
                                          "unknown", "bogus" };
        return lv[tg_below(g, 8)];
    }
    int istime = !strcmp(field, "timestamp") || !strcmp(field, "received");
    if (tg_below(g, 8) == 0)
        return istime ? "1728000000000000000" : "no-such-value";
    const struct lh_event *e = &evs[tg_below(g, n)];
    const char *v = ref_field(e, field, buf);
    if (!v)
        return "5";
    char *c = lh_arena_strdup(a, v);
    if (tg_below(g, 3) == 0 && strlen(c) > 2)
        c[1 + tg_below(g, strlen(c) - 1)] = 0;   /* a prefix of a real value */
    return c;
}

static void random_query(struct tgen *g, struct lh_store_query *q, const struct lh_event *evs,
                         size_t n, struct lh_arena *a)
{
    memset(q, 0, sizeof(*q));
    q->tenant = tg_below(g, 20) ? "prop" : "other";
    if (tg_below(g, 2)) {
        q->start_ns = TBASE + (int64_t)tg_below(g, 3 * TDAY / 1000000) * 1000000 - TDAY / 2;
        q->end_ns = tg_below(g, 4) ? q->start_ns + (int64_t)tg_below(g, 2 * TDAY) : 0;
    }
    size_t nt = tg_below(g, 3) == 0 ? tg_below(g, 3) : 0;
    const char **terms = lh_arena_alloc(a, 4 * sizeof(char *));
    for (size_t i = 0; i < nt; i++) {
        uint64_t k = tg_below(g, 10);
        if (k < 6)
            terms[i] = tg_words[tg_below(g, TG_NWORDS)];
        else if (k < 8)
            terms[i] = tg_text(g, 2, 2);      /* a phrase, e.g. "timeout, error" */
        else if (k == 8) {
            const char *t = evs[tg_below(g, n)].trace_id;
            terms[i] = t ? t : "zzz";
        }
        else
            terms[i] = "absentword";
    }
    if (tg_below(g, 2)) {
        q->terms = terms;
        q->nterms = nt;
    } else {
        q->phrases = terms;
        q->nphrases = nt;
    }
    size_t np = tg_below(g, 3);
    struct lh_store_pred *p = lh_arena_alloc(a, (np ? np : 1) * sizeof(*p));
    for (size_t i = 0; i < np; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].field = q_fields[tg_below(g, NQF)];
        int istime = !strcmp(p[i].field, "timestamp") || !strcmp(p[i].field, "received");
        do
            p[i].op = (enum lh_store_op)tg_below(g, LH_STORE_GE + 1);
        while (istime && (p[i].op == LH_STORE_PREFIX || p[i].op == LH_STORE_CONTAINS));
        if (p[i].op == LH_STORE_IN) {
            size_t nv = 1 + tg_below(g, 3);
            const char **vals = lh_arena_alloc(a, nv * sizeof(char *));
            for (size_t k = 0; k < nv; k++)
                vals[k] = pick_value(g, evs, n, p[i].field, a);
            p[i].values = vals;
            p[i].nvalues = nv;
        } else if (p[i].op == LH_STORE_CONTAINS && !istime) {
            const char *v = pick_value(g, evs, n, p[i].field, a);
            size_t l = strlen(v), st = l > 2 ? tg_below(g, l - 1) : 0;
            p[i].value = lh_arena_strndup(a, v + st, l > 2 ? 1 + tg_below(g, l - st) : l);
        } else {
            p[i].value = pick_value(g, evs, n, p[i].field, a);
        }
    }
    q->preds = p;
    q->npreds = np;
}

static void dump_query(const struct lh_store_query *q)
{
    fprintf(stderr, "  tenant=%s range=[%lld,%lld)", q->tenant, (long long)q->start_ns,
            (long long)q->end_ns);
    for (size_t i = 0; i < q->nterms; i++)
        fprintf(stderr, " term='%s'", q->terms[i]);
    for (size_t i = 0; i < q->nphrases; i++)
        fprintf(stderr, " phrase='%s'", q->phrases[i]);
    for (size_t i = 0; i < q->npreds; i++) {
        fprintf(stderr, " pred(%s op%d", q->preds[i].field, (int)q->preds[i].op);
        if (q->preds[i].value)
            fprintf(stderr, " '%s'", q->preds[i].value);
        for (size_t k = 0; k < q->preds[i].nvalues; k++)
            fprintf(stderr, " '%s'", q->preds[i].values[k]);
        fprintf(stderr, ")");
    }
    fprintf(stderr, "\n");
}

TEST(store_property_queries_match_reference)
{
    struct lh_arena a = LH_ARENA_INIT;
    const char *dir = lh_test_tmpdir();
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)dir;
    cfg.block_events = 80;
    cfg.segment_bytes = 64 * 1024;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct tgen g = { 0x9e3779b97f4a7c15ull, &a, 0, { 0 }, 0 };
    size_t n = 2000, stored = 0;
    struct lh_event *evs = lh_arena_alloc(&a, n * sizeof(*evs));
    /* batches of random size; some retried (duplicates); three days */
    for (size_t i = 0; i < n;) {
        tg_new_batch(&g);
        size_t b = 1 + tg_below(&g, 200);
        if (b > n - i)
            b = n - i;
        for (size_t k = 0; k < b; k++)
            tg_event(&g, &evs[i + k], tg_below(&g, 10) ? "prop" : "other", TBASE - TDAY / 2,
                     3 * TDAY);
        struct lh_store_append_stats st;
        REQUIRE_INT(lh_store_append(s, evs + i, b, &st, &err), ==, 0);
        stored += st.stored;
        if (tg_below(&g, 4) == 0) {
            REQUIRE_INT(lh_store_append(s, evs + i, b, &st, &err), ==, 0);
            CHECK_INT(st.stored, ==, 0);
        }
        i += b;
    }
    REQUIRE_INT(stored, ==, n);
    struct lh_store *r = open_store(dir, LH_STORE_READ, 0);
    REQUIRE(r);
    const struct lh_event **m = malloc(n * sizeof(*m));
    int failures = 0;
    ref_cache_build(evs, n);
    for (int qi = 0; qi < 2000 && failures < 5; qi++) {
        if (qi == 1000) {   /* the second half runs on merged segments */
            struct lh_store_maint_stats ms = { 0 };
            CHECK_INT(lh_store_merge(s, &ms, &err), ==, 0);
            CHECK(ms.segments_merged > 0);
        }
        struct lh_arena qa = LH_ARENA_INIT;
        g.a = &qa;
        struct lh_store_query q;
        random_query(&g, &q, evs, n, &qa);
        size_t nm = 0;
        for (size_t i = 0; i < n; i++)
            if (ref_match(&evs[i], &q))
                m[nm++] = &evs[i];
        qsort(m, nm, sizeof(*m), ref_order);
        struct lh_store *h = qi % 2 ? r : s;
        uint64_t cnt = 0;
        if (lh_store_count(h, &q, &cnt, &err) < 0 || cnt != nm) {
            fprintf(stderr, "query %d: count %llu, reference %zu (%s)\n", qi,
                    (unsigned long long)cnt, nm, err.msg);
            dump_query(&q);
            failures++;
        }
        /* first page (and total) */
        q.limit = 1 + tg_below(&g, 30);
        q.want_total = 1;
        struct lh_store_result *res = NULL;
        if (lh_store_search(h, &q, &res, &err) < 0) {
            fprintf(stderr, "query %d: %s\n", qi, err.msg);
            failures++;
        } else {
            size_t want = nm < q.limit ? nm : q.limit;
            int ok = res->n == want && res->total == nm && res->more == (nm > q.limit);
            for (size_t i = 0; ok && i < res->n; i++)
                ok = ref_event_eq(&res->events[i], m[i]);
            if (!ok) {
                fprintf(stderr, "query %d: page of %zu (total %llu) vs %zu of %zu\n", qi,
                        res->n, (unsigned long long)res->total, want, nm);
                failures++;
            }
            lh_store_result_free(res);
        }
        q.want_total = 0;
        /* full walk for some */
        if (qi % 25 == 0) {
            struct lh_event *all;
            size_t na = walk_all(h, &q, nm / 4 + 1 + tg_below(&g, 40), &qa, &all);
            int ok = na == nm;
            for (size_t i = 0; ok && i < na; i++)
                ok = strcmp(all[i].id, m[i]->id) == 0;
            if (!ok) {
                fprintf(stderr, "query %d: walk %zu vs %zu\n", qi, na, nm);
                failures++;
            }
        }
        /* histogram and top-N for some */
        if (qi % 5 == 0 && q.end_ns) {
            int64_t bucket = (int64_t)(1 + tg_below(&g, 12)) * 3600000000000ll;
            struct lh_store_histogram *hg = NULL;
            if (lh_store_histogram(h, &q, bucket, &hg, &err) < 0) {
                fprintf(stderr, "query %d: histogram: %s\n", qi, err.msg);
                failures++;
            } else {
                uint64_t sum = 0;
                int ok = 1;
                for (size_t b = 0; b < hg->n; b++) {
                    uint64_t want = 0;
                    for (size_t i = 0; i < nm; i++)
                        want += m[i]->ts_ns >= hg->first_ns + (int64_t)b * bucket &&
                                m[i]->ts_ns < hg->first_ns + (int64_t)(b + 1) * bucket;
                    ok &= hg->counts[b] == want;
                    sum += hg->counts[b];
                }
                if (!ok || sum != nm) {
                    fprintf(stderr, "query %d: histogram mismatch\n", qi);
                    failures++;
                }
                lh_store_histogram_free(hg);
            }
        }
        if (qi % 5 == 1) {
            const char *f = q_fields[tg_below(&g, NQF)];
            struct lh_store_top *t = NULL;
            if (lh_store_top(h, &q, f, 0, &t, &err) < 0) {
                fprintf(stderr, "query %d: top: %s\n", qi, err.msg);
                failures++;
            } else {
                uint64_t sum = t->missing;
                int ok = 1;
                for (size_t e = 0; e < t->n; e++) {
                    if (e < 8) {   /* the leaders, exactly */
                        uint64_t want = 0;
                        char buf[32];
                        for (size_t i = 0; i < nm; i++) {
                            const char *v = ref_field(m[i], f, buf);
                            want += v && strcmp(v, t->entries[e].value) == 0;
                        }
                        ok &= want == t->entries[e].count;
                    }
                    if (e > 0)
                        ok &= t->entries[e - 1].count >= t->entries[e].count;
                    sum += t->entries[e].count;
                }
                if (!ok || sum != nm) {
                    fprintf(stderr, "query %d: top %s mismatch\n", qi, f);
                    failures++;
                }
                lh_store_top_free(t);
            }
        }
        lh_arena_free(&qa);
        g.a = &a;
    }
    CHECK_INT(failures, ==, 0);
    ref_cache_free();
    free(m);
    lh_store_close(r);
    lh_store_close(s);
    lh_arena_free(&a);
}

TEST(store_top_n_and_errors)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *s = open_store(lh_test_tmpdir(), LH_STORE_WRITE, 0);
    REQUIRE(s);
    struct lh_event evs[10];
    const char *svc[10] = { "a", "b", "a", "c", "a", "b", NULL, "a", "b", "d" };
    char ids[10][8];
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "e%d", i);
        evs[i] = (struct lh_event){ .ts_ns = TBASE + i, .id = ids[i], .tenant = "t",
                                    .service = svc[i], .level = LH_LEVEL_INFO };
    }
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_append(s, evs, 10, NULL, &err), ==, 0);
    struct lh_store_query q = { .tenant = "t" };
    struct lh_store_top *t = NULL;
    REQUIRE_INT(lh_store_top(s, &q, "service", 2, &t, &err), ==, 0);
    REQUIRE_INT(t->n, ==, 2);
    CHECK_STR(t->entries[0].value, "a");
    CHECK_INT(t->entries[0].count, ==, 4);
    CHECK_STR(t->entries[1].value, "b");
    CHECK_INT(t->entries[1].count, ==, 3);
    CHECK_INT(t->distinct, ==, 4);
    CHECK_INT(t->missing, ==, 1);
    lh_store_top_free(t);
    struct lh_store_pred bad = { .field = "nosuch", .op = LH_STORE_EQ, .value = "x" };
    q.preds = &bad;
    q.npreds = 1;
    uint64_t n;
    CHECK_INT(lh_store_count(s, &q, &n, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "nosuch");
    q.npreds = 0;
    q.tenant = NULL;
    CHECK_INT(lh_store_count(s, &q, &n, &err), ==, LH_EINVAL);
    /* a second writer is refused */
    struct lh_store *w2 = NULL;
    struct lh_store_config cfg = { .dir = (char *)lh_test_tmpdir() };
    CHECK_INT(lh_store_open(&w2, &cfg, LH_STORE_WRITE, &err), ==, LH_EUNAVAIL);
    /* tenant isolation */
    q.tenant = "other";
    REQUIRE_INT(lh_store_count(s, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 0);
    q.tenant = "t";
    REQUIRE_INT(lh_store_count(s, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 10);
    lh_store_close(s);
    lh_arena_free(&a);
}

/* ---- cursors stay stable while new events arrive ----------------------- */

TEST(store_cursor_stable_under_appends)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store *s = open_store(lh_test_tmpdir(), LH_STORE_WRITE, 32);
    REQUIRE(s);
    struct lh_store *r = open_store(lh_test_tmpdir(), LH_STORE_READ, 0);
    REQUIRE(r);
    struct tgen g = { 4242, &a, 0, { 0 }, 0 };
    tg_new_batch(&g);
    size_t n = 600;
    struct lh_event *evs = lh_arena_alloc(&a, 2 * n * sizeof(*evs));
    for (size_t i = 0; i < 2 * n; i++)
        tg_event(&g, &evs[i], "c", TBASE, TDAY / 24);
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_append(s, evs, n, NULL, &err), ==, 0);
    const struct lh_event **before = malloc(n * sizeof(*before));
    for (size_t i = 0; i < n; i++)
        before[i] = &evs[i];
    qsort(before, n, sizeof(*before), ref_order);

    /* walk pages of 7 while appending more events, newer and older */
    struct lh_store_query q = { .tenant = "c", .limit = 7 };
    struct lh_store_pos pos;
    size_t seen = 0, late = 0, added = n;
    int ok = 1;
    int64_t last_ts = INT64_MAX;
    const char *last_id = NULL;
    for (;;) {
        struct lh_store_result *res;
        REQUIRE_INT(lh_store_search(r, &q, &res, &err), ==, 0);
        for (size_t i = 0; i < res->n; i++) {
            const struct lh_event *e = &res->events[i];
            /* strictly decreasing (ts, id): nothing repeats */
            if (last_id && (e->ts_ns > last_ts ||
                            (e->ts_ns == last_ts && strcmp(e->id, last_id) >= 0)))
                ok = 0;
            last_ts = e->ts_ns;
            last_id = lh_arena_strdup(&a, e->id);
            if (seen < n && strcmp(e->id, before[seen]->id) == 0)
                seen++;
            else
                late++;   /* appended during the walk, older than the position */
        }
        int more = res->more;
        if (res->n)
            pos = res->next;
        lh_store_result_free(res);
        if (added < 2 * n) {
            REQUIRE_INT(lh_store_append(s, evs + added, 40, NULL, &err), ==, 0);
            added += 40;
        }
        if (!more)
            break;
        q.after = &pos;
    }
    CHECK(ok);
    CHECK_INT(seen, ==, n);   /* every event present at the start was returned, in order */
    CHECK(late > 0);
    free(before);
    lh_store_close(r);
    lh_store_close(s);
    lh_arena_free(&a);
}

/* ---- retention -------------------------------------------------------- */

TEST(store_retention_by_age_and_size)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)lh_test_tmpdir();
    cfg.retention_ms = 2 * 86400000ll;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct tgen g = { 99, &a, 0, { 0 }, 0 };
    /* 6 days x 2 tenants x 100 events */
    for (int d = 0; d < 6; d++) {
        for (int t = 0; t < 2; t++) {
            struct lh_event evs[100];
            tg_new_batch(&g);
            for (int i = 0; i < 100; i++)
                tg_event(&g, &evs[i], t ? "big" : "small", TBASE + d * TDAY, TDAY);
            REQUIRE_INT(lh_store_append(s, evs, 100, NULL, &err), ==, 0);
        }
    }
    struct lh_store *r = open_store(lh_test_tmpdir(), LH_STORE_READ, 0);
    struct lh_store_query q = { .tenant = "big" };
    uint64_t n;
    REQUIRE_INT(lh_store_count(r, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 600);
    /* now = end of day 5 + 1h: days 0..2 ended more than 2 days ago */
    struct lh_store_maint_stats st = { 0 };
    int64_t now = TBASE + 6 * TDAY + 3600000000000ll;
    REQUIRE_INT(lh_store_retain(s, now, &st, &err), ==, 0);
    CHECK_INT(st.partitions_dropped, ==, 2 * 4);
    REQUIRE_INT(lh_store_count(r, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 200);
    q.start_ns = TBASE;
    q.end_ns = TBASE + 4 * TDAY;
    REQUIRE_INT(lh_store_count(r, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 0);
    lh_store_close(s);

    /* by size: keep the newest partition only */
    cfg.retention_ms = 0;
    cfg.retention_bytes = 1;
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    memset(&st, 0, sizeof(st));
    REQUIRE_INT(lh_store_retain(s, now, &st, &err), ==, 0);
    CHECK_INT(st.partitions_dropped, ==, 2);
    q.start_ns = 0;
    q.end_ns = 0;
    REQUIRE_INT(lh_store_count(r, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 100);
    /* appending to a dropped day recreates it */
    struct lh_event e = { .ts_ns = TBASE + 5 * TDAY + 1, .id = "late-1", .tenant = "big" };
    REQUIRE_INT(lh_store_append(s, &e, 1, NULL, &err), ==, 0);
    REQUIRE_INT(lh_store_count(r, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 101);
    lh_store_close(s);
    lh_store_close(r);
    lh_arena_free(&a);
}

/* ---- merge while reading ---------------------------------------------- */

struct reader_arg {
    const char *dir;
    uint64_t expect;
    volatile int stop;
    int errors;
    int rounds;
};

static void *reader_main(void *p)
{
    struct reader_arg *ra = p;
    struct lh_store *r = open_store(ra->dir, LH_STORE_READ, 0);
    if (!r) {
        ra->errors++;
        return NULL;
    }
    struct lh_store_query q = { .tenant = "m" };
    struct lh_store_query q2 = { .tenant = "m", .limit = 1000000 };
    while (!ra->stop || ra->rounds < 3) {
        uint64_t n = 0;
        struct lh_err err = { 0 };
        if (lh_store_count(r, &q, &n, &err) < 0 || n != ra->expect) {
            fprintf(stderr, "reader: count %llu (%s)\n", (unsigned long long)n, err.msg);
            ra->errors++;
        }
        struct lh_store_result *res = NULL;
        if (lh_store_search(r, &q2, &res, &err) < 0 || res->n != ra->expect || res->more) {
            ra->errors++;
        } else {
            for (size_t i = 1; i < res->n; i++)
                if (strcmp(res->events[i].id, res->events[i - 1].id) == 0)
                    ra->errors++;
        }
        lh_store_result_free(res);
        ra->rounds++;
    }
    lh_store_close(r);
    return NULL;
}

TEST(store_merge_while_reading)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)lh_test_tmpdir();
    cfg.block_events = 64;
    cfg.segment_bytes = 16 * 1024;   /* many small segments */
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct tgen g = { 31337, &a, 0, { 0 }, 0 };
    size_t total = 0;
    for (int b = 0; b < 60; b++) {
        struct lh_event evs[30];
        tg_new_batch(&g);
        for (int i = 0; i < 30; i++)
            tg_event(&g, &evs[i], "m", TBASE, TDAY);
        REQUIRE_INT(lh_store_append(s, evs, 30, NULL, &err), ==, 0);
        total += 30;
    }
    struct lh_store_report *before = NULL, *after = NULL;
    REQUIRE_INT(lh_store_inspect(s, 0, &before, &err), ==, 0);
    CHECK(before->parts[0].segments > 5);

    struct reader_arg ra = { cfg.dir, total, 0, 0, 0 };
    pthread_t th;
    REQUIRE_INT(pthread_create(&th, NULL, reader_main, &ra), ==, 0);
    usleep(20000);
    lh_store_close(s);   /* seal the active segment so it can merge too */
    cfg.block_events = 4096;
    cfg.segment_bytes = 64 << 20;
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct lh_store_maint_stats st = { 0 };
    REQUIRE_INT(lh_store_merge(s, &st, &err), ==, 0);
    CHECK(st.segments_merged > 5);
    CHECK_INT(st.segments_written, ==, 1);
    ra.stop = 1;
    pthread_join(th, NULL);
    CHECK_INT(ra.errors, ==, 0);
    CHECK(ra.rounds >= 3);

    REQUIRE_INT(lh_store_inspect(s, 1, &after, &err), ==, 0);
    CHECK_INT(after->parts[0].segments, ==, 1);
    CHECK(after->parts[0].blocks < before->parts[0].blocks);
    CHECK_INT(after->events, ==, total);
    CHECK_INT(after->nproblems, ==, 0);
    CHECK(after->disk_bytes < before->disk_bytes);
    /* dedupe still holds after the merge and a restart */
    lh_store_close(s);
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    g.s = 31337;
    struct lh_event evs[30];
    tg_new_batch(&g);
    for (int i = 0; i < 30; i++)
        tg_event(&g, &evs[i], "m", TBASE, TDAY);
    struct lh_store_append_stats as;
    REQUIRE_INT(lh_store_append(s, evs, 30, &as, &err), ==, 0);
    CHECK_INT(as.duplicates, ==, 30);
    lh_store_report_free(before);
    lh_store_report_free(after);
    lh_store_close(s);
    lh_arena_free(&a);
}

TEST(store_background_merge_thread)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store_config cfg = { 0 };
    cfg.dir = subdir("bg");
    cfg.block_events = 16;
    cfg.segment_bytes = 64 * 1024;
    cfg.merge_min_bytes = 1 << 20;
    cfg.merge_interval_ms = 20;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct tgen g = { 5, &a, 0, { 0 }, 0 };
    for (int b = 0; b < 40; b++) {
        struct lh_event evs[20];
        tg_new_batch(&g);
        for (int i = 0; i < 20; i++)
            tg_event(&g, &evs[i], "bgt", TBASE, TDAY);
        REQUIRE_INT(lh_store_append(s, evs, 20, NULL, &err), ==, 0);
        usleep(2000);
    }
    /* 40 appends of 20 events made 80 blocks; merged, 800 / 16 = 50 */
    struct lh_store_report *rep = NULL;
    for (int tries = 0; tries < 300; tries++) {
        REQUIRE_INT(lh_store_inspect(s, 0, &rep, &err), ==, 0);
        uint64_t blocks = rep->blocks;
        lh_store_report_free(rep);
        if (blocks <= 55)
            break;
        usleep(10000);
    }
    struct lh_store_query q = { .tenant = "bgt" };
    uint64_t n = 0;
    REQUIRE_INT(lh_store_count(s, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, 800);
    REQUIRE_INT(lh_store_inspect(s, 1, &rep, &err), ==, 0);
    CHECK_INT(rep->nproblems, ==, 0);
    CHECK_INT(rep->events, ==, 800);
    CHECK(rep->blocks <= 55);
    lh_store_report_free(rep);
    lh_store_close(s);
    lh_arena_free(&a);
}

TEST(store_new_events_visible_to_reader_within_1s)
{
    struct lh_arena a = LH_ARENA_INIT;
    const char *dir = subdir("vis");
    struct lh_store *r = open_store(dir, LH_STORE_READ, 0);   /* before any data exists */
    REQUIRE(r);
    struct lh_store *w = open_store(dir, LH_STORE_WRITE, 0);
    REQUIRE(w);
    struct tgen g = { 8, &a, 0, { 0 }, 0 };
    struct lh_store_query q = { .tenant = "v" };
    struct lh_err err = { 0 };
    for (int round = 1; round <= 5; round++) {
        struct lh_event evs[10];
        tg_new_batch(&g);
        for (int i = 0; i < 10; i++)
            tg_event(&g, &evs[i], "v", TBASE + round * TDAY, TDAY);   /* a new day each time */
        REQUIRE_INT(lh_store_append(w, evs, 10, NULL, &err), ==, 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t n = 0;
        double waited = 0;
        while (waited < 1.0) {
            REQUIRE_INT(lh_store_count(r, &q, &n, &err), ==, 0);
            if (n == (uint64_t)round * 10)
                break;
            usleep(1000);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        }
        CHECK_INT(n, ==, round * 10);
    }
    lh_store_close(w);
    lh_store_close(r);
    lh_arena_free(&a);
}

TEST(store_config_table_loads)
{
    struct lh_store_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *y = "dir: /var/lib/loghaul/store\nretention: 3d\nretention_size: 10GiB\n"
                    "block_size: 2MiB\nmerge_interval: 10s\nthreads: 4\n";
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_conf_load_string("store.yaml", y, strlen(y), lh_store_opts, &cfg, &err), ==, 0);
    CHECK_STR(cfg.dir, "/var/lib/loghaul/store");
    CHECK_INT(cfg.retention_ms, ==, 3 * 86400000ll);
    CHECK_INT(cfg.retention_bytes, ==, 10ull << 30);
    CHECK_INT(cfg.block_bytes, ==, 2u << 20);
    CHECK_INT(cfg.merge_interval_ms, ==, 10000);
    CHECK_INT(cfg.threads, ==, 4);
    CHECK_INT(cfg.segment_bytes, ==, 64u << 20);   /* default */
    CHECK_INT(cfg.zstd_level, ==, 1);
    CHECK_INT(cfg.merge_zstd_level, ==, 9);
    CHECK_INT(cfg.merge_block_bytes, ==, 2u << 20);
    lh_conf_free(lh_store_opts, &cfg);
    memset(&cfg, 0, sizeof(cfg));
    const char *bad = "dir: x\nretention: soon\n";
    CHECK(lh_conf_load_string("store.yaml", bad, strlen(bad), lh_store_opts, &cfg, &err) < 0);
    CHECK_CONTAINS(err.msg, "retention");
    lh_conf_free(lh_store_opts, &cfg);
}

TEST(store_raw_template_search)
{
    struct lh_store *s = open_store(lh_test_tmpdir(), LH_STORE_WRITE, 0);
    REQUIRE(s);
    struct lh_event evs[3] = {
        { .ts_ns = TBASE + 1, .id = "r1", .tenant = "t", .span_id = "00f067aa0ba902b7",
          .message = "checkout done", .user_id = "usr_5",
          .raw = "12:00 span=00f067aa0ba902b7 user=usr_5 checkout done \x01" },
        { .ts_ns = TBASE + 2, .id = "r2", .tenant = "t", .span_id = "1111222233334444",
          .message = "other", .raw = "plain other line" },
        { .ts_ns = TBASE + 3, .id = "r3", .tenant = "t", .span_id = "abcd",
          .raw = "abcdabcd x" },   /* span_id not at a token boundary: kept literal */
    };
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_append(s, evs, 3, NULL, &err), ==, 0);
    struct {
        const char *term;
        uint64_t want;
    } cases[] = {
        { "00F067AA0BA902B7", 1 },     /* span_id only reachable through raw */
        { "user usr", 1 },             /* a phrase across a field inside raw */
        { "span 00f067aa0ba902b7 user", 1 },
        { "usr_5 checkout", 1 },
        { "1111222233334444", 0 },     /* span_id of r2 is not in its raw */
        { "abcdabcd", 1 },
        { "abcd", 0 },                 /* not a token of r3's raw, span_id is not searched */
        { "done", 1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *terms[] = { cases[i].term };
        struct lh_store_query q = { .tenant = "t", .terms = terms, .nterms = 1 };
        uint64_t n = 99;
        REQUIRE_INT(lh_store_count(s, &q, &n, &err), ==, 0);
        if (n != cases[i].want)
            fprintf(stderr, "term '%s': %llu\n", cases[i].term, (unsigned long long)n);
        CHECK_INT(n, ==, cases[i].want);
    }
    struct lh_store_query q = { .tenant = "t", .limit = 10 };
    struct lh_store_result *r = NULL;
    REQUIRE_INT(lh_store_search(s, &q, &r, &err), ==, 0);
    REQUIRE_INT(r->n, ==, 3);
    CHECK_STR(r->events[2].raw, evs[0].raw);
    CHECK_STR(r->events[0].raw, evs[2].raw);
    lh_store_result_free(r);
    lh_store_close(s);
}

/* test_store_encode.c - unit tests of the store's encoder internals: the
 * block tokenizer-hasher against the query side's tokenizer, and raw
 * templates whose values are found past a first false match. */
#include "../lh_test.h"
#include "store_testlib.h"
#include "../../common/store_int.h"

#include <unistd.h>

struct collect {
    struct lhs_hset *set;
};

static int collect_tok(void *ctx, const char *tok, size_t len)
{
    struct collect *c = ctx;
    return lhs_hset_add(c->set, lhs_tok_hash(tok, len));
}

/* Same set of hashes, whatever the table order. */
static int hset_equal(const struct lhs_hset *a, const struct lhs_hset *b)
{
    if (a->n != b->n || a->has_zero != b->has_zero)
        return 0;
    for (size_t i = 0; i < a->cap; i++) {
        uint64_t h = a->v[i];
        if (!h)
            continue;
        size_t j = (size_t)h & (b->cap - 1);
        while (b->v[j] && b->v[j] != h)
            j = (j + 1) & (b->cap - 1);
        if (b->v[j] != h)
            return 0;
    }
    return 1;
}

TEST(store_tokenize_hash_matches_query_tokenizer)
{
    /* bytes drawn from letters of both cases, digits, separators and
     * bytes >= 0x80, lengths across the 16- and 64-byte steps */
    static const char alphabet[] = "aZbYcXmM09_-. ,:/@[`{\x01\x7f\x80\xc3\xa9\xff";
    struct tgen g = { 777, NULL, 0, { 0 }, 0 };
    char buf[600];
    size_t bad = 0;
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)tg_below(&g, round < 200 ? 80 : sizeof(buf));
        for (size_t i = 0; i < n; i++) {
            /* runs of one class make long tokens and long gaps too */
            if (i && tg_below(&g, 3) == 0)
                buf[i] = buf[i - 1];
            else
                buf[i] = alphabet[tg_below(&g, sizeof(alphabet) - 1)];
        }
        struct lhs_hset want = { 0 }, got = { 0 };
        struct collect c = { &want };
        REQUIRE_INT(lhs_tokenize(buf, n, collect_tok, &c), ==, 0);
        REQUIRE_INT(lhs_tokenize_hash(buf, n, &got), ==, 0);
        if (!hset_equal(&want, &got)) {
            if (bad++ < 3)
                fprintf(stderr, "round %d: %zu tokens vs %zu\n", round, want.n, got.n);
        }
        lhs_hset_free(&want);
        lhs_hset_free(&got);
    }
    CHECK_INT(bad, ==, 0);

    /* a known case: "Foo-BAR_9 é" has the tokens foo, bar, 9 and é */
    struct lhs_hset s = { 0 };
    REQUIRE_INT(lhs_tokenize_hash("Foo-BAR_9 \xc3\xa9", 12, &s), ==, 0);
    CHECK_INT(s.n, ==, 4);
    struct lhs_hset one = { 0 };
    REQUIRE_INT(lhs_hset_add(&one, lhs_tok_hash("bar", 3)), ==, 0);
    int found = 0;
    for (size_t i = 0; i < s.cap; i++)
        found |= s.v[i] == lhs_tok_hash("bar", 3);
    CHECK(found);
    lhs_hset_clear(&s);
    CHECK_INT(s.n, ==, 0);
    lhs_hset_free(&s);
    lhs_hset_free(&one);
}

/* Reference: the first i with lower(h[i..i+len)) == tok, one byte at a time. */
static const char *ci_find_ref(const char *h, size_t n, const char *tok, size_t len)
{
    for (size_t i = 0; i + len <= n; i++) {
        size_t k = 0;
        while (k < len && lhs_lower[(unsigned char)h[i + k]] == (unsigned char)tok[k])
            k++;
        if (k == len)
            return h + i;
    }
    return NULL;
}

TEST(store_case_insensitive_find_matches_reference)
{
    /* An alphabet where case, digits against the control bytes 32 below them,
     * and bytes >= 0x80 against their 0x20-cleared twins could be confused. */
    static const char alpha[] = { 'a', 'B', 'b', 'A', '1', 0x11, '9', 0x19, '_', ' ', 'z', 'Z',
                                  (char)0xc3, (char)0xe3, (char)0xa9, 0 };
    char h[300], tok[8];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % sizeof(h), len = 1 + (seed >> 20) % 6;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            h[i] = alpha[(seed >> 16) % sizeof(alpha)];
        }
        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            tok[k] = (char)lhs_lower[(unsigned char)alpha[(seed >> 16) % sizeof(alpha)]];
        }
        if (n >= len && (seed & 1)) {   /* plant it, in mixed case, half the time */
            size_t at = (seed >> 3) % (n - len + 1);
            for (size_t k = 0; k < len; k++)
                h[at + k] = (k & 1) && tok[k] >= 'a' && tok[k] <= 'z' ? (char)(tok[k] - 32)
                                                                      : tok[k];
        }
        REQUIRE(lhs_ci_find(h, n, tok, len) == ci_find_ref(h, n, tok, len));
    }
    CHECK(lhs_ci_find("xxTrace-ID", 10, "id", 2) != NULL);
    CHECK(lhs_ci_find("\x11", 1, "1", 1) == NULL);
    CHECK(lhs_ci_find("\xe3", 1, "\xc3", 1) == NULL);
}

TEST(store_raw_template_value_after_false_match)
{
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)lh_test_tmpdir();
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    /* the first occurrence of each value sits inside a longer token; the
     * second is on token boundaries. Raw equal to the message, and the
     * message repeated in raw, too. */
    struct lh_event evs[4] = {
        { .ts_ns = TBASE + 1, .id = "f1", .tenant = "t", .trace_id = "abcd1234",
          .message = "disk full", .raw = "xabcd1234 trace=abcd1234 disk full" },
        { .ts_ns = TBASE + 2, .id = "f2", .tenant = "t", .message = "same line",
          .raw = "same line" },
        { .ts_ns = TBASE + 3, .id = "f3", .tenant = "t", .message = "echo",
          .raw = "echo echo echoes" },
        { .ts_ns = TBASE + 4, .id = "f4", .tenant = "t", .user_id = "usr_77",
          .message = "m", .raw = "usr_777 usr_77usr_77 usr_77" },
    };
    REQUIRE_INT(lh_store_append(s, evs, 4, NULL, &err), ==, 0);
    struct lh_store_query q = { .tenant = "t", .limit = 10 };
    struct lh_store_result *r = NULL;
    REQUIRE_INT(lh_store_search(s, &q, &r, &err), ==, 0);
    REQUIRE_INT(r->n, ==, 4);
    for (size_t i = 0; i < 4; i++)
        CHECK_STR(r->events[i].raw, evs[3 - i].raw);
    lh_store_result_free(r);
    struct {
        const char *term;
        uint64_t want;
    } cases[] = {
        { "xabcd1234", 1 },   /* the literal part stays searchable */
        { "abcd1234", 1 },
        { "echoes", 1 },
        { "usr_777", 1 },
        { "usr_77usr_77", 1 },
        { "usr_77", 1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t n = tq_count_term(s, "t", cases[i].term);
        if (n != cases[i].want)
            fprintf(stderr, "term '%s': %llu\n", cases[i].term, (unsigned long long)n);
        CHECK_INT(n, ==, cases[i].want);
    }
    lh_store_close(s);
}

TEST(store_event_id_shape_parse)
{
    uint8_t batch[16], u[16];
    for (int i = 0; i < 16; i++)
        batch[i] = (uint8_t)(i * 17 + 3);
    char id[LH_EVENT_ID_MAX];
    uint32_t idx = 0;
    const uint32_t idxs[] = { 0, 7, 10, 4294967295u };
    for (size_t k = 0; k < sizeof(idxs) / sizeof(idxs[0]); k++) {
        lh_event_id(id, batch, idxs[k]);
        REQUIRE_INT(lhs_id_parse(id, u, &idx), ==, 0);
        CHECK(memcmp(u, batch, 16) == 0);
        CHECK_INT(idx, ==, idxs[k]);
    }
    const char *bad[] = {
        "0123456789ABCDEF0123456789abcdef-1",   /* upper-case hex */
        "0123456789abcdef0123456789abcdeg-1",
        "0123456789abcdef0123456789abcde-1",    /* 31 digits */
        "0123456789abcdef0123456789abcdef1",
        "0123456789abcdef0123456789abcdef-",
        "0123456789abcdef0123456789abcdef-01",  /* leading zero */
        "0123456789abcdef0123456789abcdef-4294967296",
        "0123456789abcdef0123456789abcdef-1x",
        "0123456789abcdef",
        "",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        if (lhs_id_parse(bad[k], u, &idx) == 0)
            fprintf(stderr, "accepted '%s'\n", bad[k]);
        CHECK_INT(lhs_id_parse(bad[k], u, &idx), ==, -1);
    }
}

/* Encodings (enc of column c) of every block of the store's segments. */
static void block_encodings(const char *pdir, int c, int *counts)
{
    char path[1200];
    for (int seq = 1; seq < 20; seq++) {
        snprintf(path, sizeof(path), "%s/%016x.seg", pdir, seq);
        struct lhs_seg *sg = NULL;
        struct lh_err err = { 0 };
        if (access(path, F_OK) != 0 || lhs_seg_open(path, &sg, &err) < 0)
            continue;
        if (lhs_seg_scan(sg, 1, NULL, NULL, &err) == 0)
            for (size_t b = 0; b < sg->nblocks; b++)
                counts[sg->blocks[b]->m.col[c].enc & 15]++;
        lhs_seg_unref(sg);
    }
}

TEST(store_receive_times_and_event_ids_encodings_round_trip)
{
    struct lh_arena a = LH_ARENA_INIT;
    const char *dir = lh_test_tmpdir();
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)dir;
    cfg.block_events = 400;
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    /* block 1: one receive time for all (a replayed file), one batch
     * uuid; block 2: receive times at the int64 ends, 300 batch uuids
     * (too many for EVID: stored plain); block 3: one id not shaped
     * like lh_event_id among shaped ones */
    struct tgen g = { 31, &a, 0, { 0 }, 0 };
    struct lh_event evs[1200];
    uint8_t batch[16] = { 1, 2, 3 };
    for (int i = 0; i < 1200; i++) {
        tg_event(&g, &evs[i], "enc", TBASE + (i / 400) * 3600000000000ll, 3600000000000ll);
        char *id = lh_arena_alloc(&a, LH_EVENT_ID_MAX);
        batch[15] = (uint8_t)(i / 400);
        if (i >= 400 && i < 800) {   /* a batch uuid per event */
            batch[13] = (uint8_t)i;
            batch[14] = (uint8_t)(i >> 8);
        }
        lh_event_id(id, batch, (uint32_t)i);
        evs[i].id = id;
        if (i < 400)
            evs[i].received_ns = TBASE + 7200000000000ll;
        else if (i < 800)
            evs[i].received_ns = i % 2 ? INT64_MAX - i : INT64_MIN + i;
    }
    char custom[] = "custom-id-1";
    evs[1000].id = custom;
    REQUIRE_INT(lh_store_append(s, evs, 1200, NULL, &err), ==, 0);
    struct lh_event *got;
    REQUIRE_INT(tq_all_by_id(s, "enc", &a, &got), ==, 1200);
    qsort(evs, 1200, sizeof(evs[0]), tg_id_cmp);
    size_t bad = 0;
    for (size_t i = 0; i < 1200; i++)
        bad += !ref_event_eq(&got[i], &evs[i]);
    CHECK_INT(bad, ==, 0);
    lh_store_close(s);

    char pdir[1100];
    snprintf(pdir, sizeof(pdir), "%s/enc/2024-10-04", dir);
    int recv[16] = { 0 }, id[16] = { 0 };
    block_encodings(pdir, LHS_C_RECV, recv);
    block_encodings(pdir, LHS_C_ID, id);
    CHECK_INT(recv[LHS_ENC_RDELTA], >=, 1);
    CHECK_INT(recv[LHS_ENC_ZIGZAG], >=, 1);
    CHECK_INT(id[LHS_ENC_EVID], ==, 1);
    CHECK_INT(id[LHS_ENC_PLAIN], ==, 2);
    lh_arena_free(&a);
}

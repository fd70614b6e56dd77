/* Unit tests for uuid.c: version/variant bits, uniqueness, v7 order, text forms. */
#include "../lh_test.h"
#include "lh/time.h"
#include "lh/uuid.h"

#include <pthread.h>

static int cmp_uuid(const void *a, const void *b) { return lh_uuid_cmp(a, b); }

static void check_bits(const struct lh_uuid *u, int version)
{
    CHECK_INT(lh_uuid_version(u), ==, version);
    CHECK_INT(u->b[8] & 0xC0, ==, 0x80);                  /* variant 10 */
    char s[LH_UUID_STR_SIZE];
    lh_uuid_format(u, s);
    CHECK_INT(s[14], ==, '0' + version);
    CHECK(strchr("89ab", s[19]) != NULL);
}

TEST(uuid_v4_bits_and_uniqueness)
{
    enum { N = 100000 };
    struct lh_uuid *u = malloc(N * sizeof(*u));
    unsigned ones[128] = {0};
    for (int i = 0; i < N; i++) {
        REQUIRE(lh_uuid_v4(&u[i], NULL) == 0);
        if (i < 1000) {
            check_bits(&u[i], 4);
            for (int bit = 0; bit < 128; bit++)
                ones[bit] += (u[i].b[bit / 8] >> (7 - bit % 8)) & 1;
        }
    }
    qsort(u, N, sizeof(*u), cmp_uuid);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += lh_uuid_cmp(&u[i - 1], &u[i]) == 0;
    CHECK_INT(dups, ==, 0);
    /* The 122 random bits look random: each set in roughly half of 1000 ids. */
    for (int bit = 0; bit < 128; bit++) {
        if ((bit >= 48 && bit < 52) || bit == 64 || bit == 65)
            continue;                                     /* version and variant */
        if (ones[bit] < 400 || ones[bit] > 600)
            lh_test_fail(__FILE__, __LINE__, "bit %d set %u times in 1000", bit, ones[bit]);
    }
    free(u);
}

TEST(uuid_v7_bits_order_and_uniqueness)
{
    enum { N = 100000 };
    struct lh_uuid *u = malloc(N * sizeof(*u));
    uint64_t before = (uint64_t)(lh_time_now_ns() / LH_NS_PER_MS);
    for (int i = 0; i < N; i++)
        REQUIRE(lh_uuid_v7(&u[i], NULL) == 0);
    uint64_t after = (uint64_t)(lh_time_now_ns() / LH_NS_PER_MS);
    check_bits(&u[0], 7);
    check_bits(&u[N - 1], 7);
    CHECK_INT(lh_uuid_v7_ms(&u[0]), >=, before);
    /* Many ids per ms: the timestamp may run a little ahead, never behind. */
    CHECK_INT(lh_uuid_v7_ms(&u[N - 1]), <=, after + 1);
    int out_of_order = 0, text_order = 0;
    for (int i = 1; i < N; i++) {
        out_of_order += lh_uuid_cmp(&u[i - 1], &u[i]) >= 0;
        if (i % 1000 == 0) {
            char a[LH_UUID_STR_SIZE], b[LH_UUID_STR_SIZE];
            text_order += strcmp(lh_uuid_format(&u[i - 1], a), lh_uuid_format(&u[i], b)) >= 0;
            check_bits(&u[i], 7);
        }
    }
    CHECK_INT(out_of_order, ==, 0);
    CHECK_INT(text_order, ==, 0);
    free(u);
}

static void *v7_worker(void *arg)
{
    struct lh_uuid *u = arg;
    for (int i = 0; i < 20000; i++)
        if (lh_uuid_v7(&u[i], NULL) != 0)
            memset(&u[i], 0, sizeof(u[i]));
    return NULL;
}

/* Threads interleave, yet each thread's ids increase and none repeat. */
TEST(uuid_v7_threads)
{
    enum { T = 4, N = 20000 };
    struct lh_uuid *u = malloc(T * N * sizeof(*u));
    pthread_t th[T];
    for (int t = 0; t < T; t++)
        REQUIRE(pthread_create(&th[t], NULL, v7_worker, u + t * N) == 0);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    int bad = 0;
    for (int t = 0; t < T; t++)
        for (int i = 1; i < N; i++)
            bad += lh_uuid_cmp(&u[t * N + i - 1], &u[t * N + i]) >= 0;
    CHECK_INT(bad, ==, 0);
    qsort(u, T * N, sizeof(*u), cmp_uuid);
    int dups = 0;
    for (int i = 1; i < T * N; i++)
        dups += lh_uuid_cmp(&u[i - 1], &u[i]) == 0;
    CHECK_INT(dups, ==, 0);
    free(u);
}

TEST(uuid_text_round_trip)
{
    for (int i = 0; i < 1000; i++) {
        struct lh_uuid u, p1, p2, p3;
        REQUIRE((i % 2 ? lh_uuid_v7(&u, NULL) : lh_uuid_v4(&u, NULL)) == 0);
        char s[LH_UUID_STR_SIZE], h[LH_UUID_HEX_SIZE];
        lh_uuid_format(&u, s);
        lh_uuid_format_hex(&u, h);
        CHECK_INT(strlen(s), ==, 36);
        CHECK_INT(strlen(h), ==, 32);
        CHECK(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
        REQUIRE(lh_uuid_parse(s, 36, &p1, NULL) == 0);
        REQUIRE(lh_uuid_parse(h, 32, &p2, NULL) == 0);
        for (char *c = s; *c; c++)
            if (*c >= 'a' && *c <= 'f')
                *c = (char)(*c - 'a' + 'A');
        REQUIRE(lh_uuid_parse(s, 36, &p3, NULL) == 0);
        CHECK(lh_uuid_cmp(&u, &p1) == 0 && lh_uuid_cmp(&u, &p2) == 0 &&
              lh_uuid_cmp(&u, &p3) == 0);
    }
    struct lh_uuid u;
    REQUIRE(lh_uuid_parse("123e4567-E89B-12d3-a456-426614174000", 36, &u, NULL) == 0);
    CHECK_INT(u.b[0], ==, 0x12);
    CHECK_INT(u.b[6], ==, 0x12);
    CHECK_INT(u.b[15], ==, 0x00);
    CHECK_INT(lh_uuid_version(&u), ==, 1);
    char h[LH_UUID_HEX_SIZE];
    CHECK_STR(lh_uuid_format_hex(&u, h), "123e4567e89b12d3a456426614174000");
    /* RFC 9562 appendix A.6 example v7 */
    REQUIRE(lh_uuid_parse("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 36, &u, NULL) == 0);
    CHECK_INT(lh_uuid_v7_ms(&u), ==, 0x017F22E279B0LL);
    CHECK_INT(lh_uuid_version(&u), ==, 7);
}

TEST(uuid_parse_rejects_garbage)
{
    static const char *const bad[] = {
        "", "123e4567-e89b-12d3-a456-42661417400", "123e4567-e89b-12d3-a456-4266141740000",
        "123e4567e89b-12d3-a456-4266141740000", "123e4567-e89b-12d3-a456_426614174000",
        "123e4567-e89b-12d3-a4564-26614174000", "g23e4567-e89b-12d3-a456-426614174000",
        "123e4567-e89b-12d3-a456-42661417400z", "123e4567e89b12d3a45642661417400",
        "123e4567e89b12d3a456426614174000x", "{123e4567-e89b-12d3-a456-4266141740}",
        "123e4567 e89b 12d3 a456 426614174000", "123e4567-e89b-12d3-a456-4266-1417400",
        "123e4567e89b12d3a45642661417400-",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lh_uuid u;
        memset(&u, 0x5a, sizeof(u));
        struct lh_err e = {0};
        if (lh_uuid_parse(bad[i], strlen(bad[i]), &u, &e) != LH_EINVAL || u.b[0] != 0x5a)
            lh_test_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
        else
            CHECK_CONTAINS(e.msg, "uuid");
    }
}

/* Unit tests for crc32c.c: standard CRC-32C vectors and the incremental form. */
#include "../lh_test.h"
#include "lh/crc32c.h"

TEST(crc32c_known_vectors)
{
    CHECK_INT(lh_crc32c(0, "123456789", 9), ==, 0xE3069283);
    CHECK_INT(lh_crc32c(0, NULL, 0), ==, 0);
    CHECK_INT(lh_crc32c(0, "a", 1), ==, 0xC1D04330);
    /* RFC 3720 B.4 test patterns (iSCSI). */
    unsigned char buf[32];
    memset(buf, 0, sizeof(buf));
    CHECK_INT(lh_crc32c(0, buf, 32), ==, 0x8A9136AA);
    memset(buf, 0xFF, sizeof(buf));
    CHECK_INT(lh_crc32c(0, buf, 32), ==, 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    CHECK_INT(lh_crc32c(0, buf, 32), ==, 0x46DD794E);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    CHECK_INT(lh_crc32c(0, buf, 32), ==, 0x113FDB5C);
}

TEST(crc32c_incremental_matches_one_shot)
{
    size_t n = 100000;
    unsigned char *p = malloc(n);
    uint64_t s = 99;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1;
        p[i] = (unsigned char)(s >> 56);
    }
    uint32_t whole = lh_crc32c(0, p, n);
    size_t cuts[] = { 0, 1, 7, 8, 63, 64, 4095, 50000, n - 1, n };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        uint32_t c = lh_crc32c(lh_crc32c(0, p, cuts[i]), p + cuts[i], n - cuts[i]);
        CHECK_INT(c, ==, whole);
    }
    uint32_t c = 0;
    for (size_t i = 0; i < n; i += 3)
        c = lh_crc32c(c, p + i, n - i < 3 ? n - i : 3);
    CHECK_INT(c, ==, whole);
    p[n / 2] ^= 1;
    CHECK_INT(lh_crc32c(0, p, n), !=, whole);
    free(p);
}

/* Unit tests for archive.c and archive_dir.c: the dir backend (operations,
 * atomic replacement, crash safety), client-side AES-256-GCM, object keys,
 * the option table, and the S3 XML parsing (the S3 backend itself is
 * tested against a real server in tests/integration/archive_s3.c). */
#include "../lh_test.h"
#include "../../common/archive_impl.h"
#include "lh/archive.h"
#include "lh/conf.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct lh_archive *open_dir(const char *sub, const char *enc_key)
{
    static char path[4096];
    struct lh_archive_config c;
    struct lh_archive *a = NULL;
    struct lh_err err = { 0 };
    memset(&c, 0, sizeof(c));
    snprintf(path, sizeof(path), "%s/%s", lh_test_tmpdir(), sub);
    c.type = LH_ARCHIVE_DIR;
    c.dir.path = path;
    c.dir.fsync = 1;
    c.zstd_level = 3;
    c.encryption_key = (char *)enc_key;
    if (lh_archive_open(&a, &c, &err) < 0)
        lh_test_fail(__FILE__, __LINE__, "open: %s", err.msg);
    return a;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

TEST(archive_dir_operations)
{
    struct lh_archive *a = open_dir("arch/", NULL);
    REQUIRE(a != NULL);
    CHECK_STR(lh_archive_backend(a), "dir");
    struct lh_err err = { 0 };
    struct lh_buf b = LH_BUF_INIT;
    uint64_t size = 0;
    const char *keys[] = { "acme/year=2026/month=05/day=23/hour=08/eu_web-1_a.parquet",
                           "acme/year=2026/month=05/day=23/hour=09/eu_web-1_b.parquet",
                           "acme/year=2026/month=06/day=01/hour=00/eu_web-2_c.parquet",
                           "globex/year=2026/month=05/day=23/hour=08/x.ndjson.zst",
                           "top-level-object" };
    for (size_t i = 0; i < 5; i++)
        REQUIRE_INT(lh_archive_put(a, keys[i], keys[i], strlen(keys[i]), &err), ==, 0);

    REQUIRE_INT(lh_archive_get(a, keys[0], 0, 0, &b, &err), ==, 0);
    CHECK_STR(b.data, keys[0]);
    lh_buf_reset(&b);
    REQUIRE_INT(lh_archive_get(a, keys[0], 5, 4, &b, &err), ==, 0);
    CHECK_STR(b.data, "year");
    lh_buf_reset(&b);
    REQUIRE_INT(lh_archive_get(a, keys[4], 10, 0, &b, &err), ==, 0);
    CHECK_STR(b.data, "object");
    lh_buf_reset(&b);
    CHECK_INT(lh_archive_get(a, keys[4], 16, 1, &b, &err), ==, LH_EINVAL);
    CHECK_INT(lh_archive_get(a, "acme/nope", 0, 0, &b, &err), ==, LH_ENOTFOUND);
    CHECK_INT(lh_archive_get(a, "acme/year=2026", 0, 0, &b, &err), ==, LH_ENOTFOUND);   /* a dir */
    CHECK_INT(b.len, ==, 0);
    REQUIRE_INT(lh_archive_head(a, keys[3], &size, &err), ==, 0);
    CHECK_INT(size, ==, strlen(keys[3]));
    CHECK_INT(lh_archive_head(a, "acme", &size, &err), ==, LH_ENOTFOUND);

    struct lh_archive_list l = { 0 };
    REQUIRE_INT(lh_archive_list(a, "", &l, &err), ==, 0);
    REQUIRE_INT(l.n, ==, 5);
    for (size_t i = 0; i < 5; i++) {   /* sorted by key, as S3 lists */
        CHECK_STR(l.items[i].key, keys[i]);
        CHECK_INT(l.items[i].size, ==, strlen(keys[i]));
    }
    lh_archive_list_free(&l);
    REQUIRE_INT(lh_archive_list(a, "acme/year=2026/month=05/", &l, &err), ==, 0);
    CHECK_INT(l.n, ==, 2);
    lh_archive_list_free(&l);
    /* a prefix that ends inside a path segment */
    REQUIRE_INT(lh_archive_list(a, "acme/year=2026/mo", &l, &err), ==, 0);
    CHECK_INT(l.n, ==, 3);
    lh_archive_list_free(&l);
    REQUIRE_INT(lh_archive_list(a, "acme/year=2026/month=05/day=23/hour=08/eu_web-1_a", &l,
                                &err), ==, 0);
    CHECK_INT(l.n, ==, 1);
    lh_archive_list_free(&l);
    REQUIRE_INT(lh_archive_list(a, "nobody/", &l, &err), ==, 0);
    CHECK_INT(l.n, ==, 0);
    lh_archive_list_free(&l);

    /* delete removes the object and the directories it leaves empty */
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/arch/acme/year=2026/month=06", lh_test_tmpdir());
    CHECK(exists(dir));
    REQUIRE_INT(lh_archive_delete(a, keys[2], &err), ==, 0);
    CHECK(!exists(dir));
    snprintf(dir, sizeof(dir), "%s/arch/acme/year=2026", lh_test_tmpdir());
    CHECK(exists(dir));   /* still holds month=05 */
    CHECK_INT(lh_archive_delete(a, keys[2], &err), ==, 0);   /* idempotent */
    CHECK_INT(lh_archive_head(a, keys[2], &size, &err), ==, LH_ENOTFOUND);
    /* a put into a directory deleted meanwhile recreates it */
    REQUIRE_INT(lh_archive_put(a, keys[2], "again", 5, &err), ==, 0);
    CHECK_INT(lh_archive_head(a, keys[2], &size, &err), ==, 0);
    CHECK_INT(size, ==, 5);

    /* keys that could escape the root or collide with temporary files */
    const char *bad[] = { "", "/abs", "../up", "a/../b", "a//b", "a/./b", ".hidden", "a/.tmp-1",
                          "a/", "tab\there" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(lh_archive_put(a, bad[i], "x", 1, &err), ==, LH_EINVAL);
        CHECK_INT(lh_archive_get(a, bad[i], 0, 0, &b, &err), ==, LH_EINVAL);
        CHECK_INT(lh_archive_delete(a, bad[i], &err), ==, LH_EINVAL);
    }
    CHECK_CONTAINS(err.msg, "invalid object key");
    CHECK_INT(lh_archive_list(a, "/etc", &l, &err), ==, LH_EINVAL);
    lh_buf_free(&b);
    lh_archive_close(a);
}

struct writer_arg {
    struct lh_archive *a;
    const char *key;
    char fill;
    size_t size;
    int rounds;
    int failures;
};

static void *writer(void *arg)
{
    struct writer_arg *w = arg;
    char *data = malloc(w->size);
    memset(data, w->fill, w->size);
    for (int i = 0; i < w->rounds; i++)
        if (lh_archive_put(w->a, w->key, data, w->size, NULL) < 0)
            w->failures++;
    free(data);
    return NULL;
}

TEST(archive_dir_atomic_replace_under_concurrency)
{
    struct lh_archive *a = open_dir("arch", NULL);
    REQUIRE(a != NULL);
    const char *key = "t/year=2026/obj.parquet";
    size_t size = 1 << 20;
    REQUIRE_INT(lh_archive_put(a, key, "", 0, NULL), ==, 0);
    struct writer_arg wa = { a, key, 'A', size, 30, 0 }, wb = { a, key, 'B', size, 30, 0 };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, writer, &wa);
    pthread_create(&tb, NULL, writer, &wb);
    int reads = 0, torn = 0, temp_seen = 0;
    struct lh_buf b = LH_BUF_INIT;
    struct lh_archive_list l = { 0 };
    for (int i = 0; i < 200; i++) {
        lh_buf_reset(&b);
        if (lh_archive_get(a, key, 0, 0, &b, NULL) == 0) {
            reads++;
            if (b.len != 0) {
                int whole = b.len == size;
                for (size_t k = 0; whole && k < b.len; k++)
                    whole = b.data[k] == b.data[0];
                torn += !whole;
            }
        }
        if (lh_archive_list(a, "t/", &l, NULL) == 0)
            temp_seen += l.n != 1 || strcmp(l.items[0].key, key) != 0;
        lh_archive_list_free(&l);
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(wa.failures + wb.failures, ==, 0);
    CHECK_INT(reads, ==, 200);
    CHECK_INT(torn, ==, 0);         /* every read saw one whole version */
    CHECK_INT(temp_seen, ==, 0);    /* temporary files never listed */
    lh_buf_free(&b);
    lh_archive_close(a);
}

TEST(archive_dir_crash_leaves_no_partial_object)
{
    size_t size = 32u << 20;
    char root[4200];
    snprintf(root, sizeof(root), "%s/arch", lh_test_tmpdir());
    for (int round = 0; round < 4; round++) {
        struct lh_archive *a = open_dir("arch", NULL);
        REQUIRE(a != NULL);
        char key[64];
        snprintf(key, sizeof(key), "crash/obj-%d.bin", round);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            char *data = malloc(size);
            memset(data, 'C', size);
            lh_archive_put(a, key, data, size, NULL);
            _exit(0);
        }
        /* kill it while it writes (the later rounds may let it finish) */
        struct timespec ts = { 0, 2000000L * (1 + round * round * 10) };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        struct lh_archive_list l = { 0 };
        REQUIRE_INT(lh_archive_list(a, "crash/", &l, NULL), ==, 0);
        for (size_t i = 0; i < l.n; i++)   /* only whole objects are visible */
            CHECK_INT(l.items[i].size, ==, size);
        lh_archive_list_free(&l);
        uint64_t got = 0;
        int rc = lh_archive_head(a, key, &got, NULL);
        CHECK(rc == LH_ENOTFOUND || (rc == 0 && got == size));
        lh_archive_close(a);
    }
    /* a later put of the same key works and the listing stays clean */
    struct lh_archive *a = open_dir("arch", NULL);
    REQUIRE_INT(lh_archive_put(a, "crash/obj-0.bin", "ok", 2, NULL), ==, 0);
    uint64_t got = 0;
    CHECK_INT(lh_archive_head(a, "crash/obj-0.bin", &got, NULL), ==, 0);
    CHECK_INT(got, ==, 2);
    lh_archive_close(a);
}

/* ---- encryption ---- */

static const char *hexkey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

TEST(archive_crypto_keys)
{
    uint8_t k1[32], k2[32], k3[32];
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_archive_parse_key(hexkey, k1, &err), ==, 0);
    for (int i = 0; i < 32; i++)
        CHECK_INT(k1[i], ==, i);
    /* the same 32 bytes in base64, with and without padding */
    REQUIRE_INT(lh_archive_parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", k2, &err), ==, 0);
    REQUIRE_INT(lh_archive_parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", k3, &err), ==, 0);
    CHECK(memcmp(k1, k2, 32) == 0 && memcmp(k1, k3, 32) == 0);
    const char *bad[] = { "", "00", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==",
                          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(lh_archive_parse_key(bad[i], k3, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "encryption_key");
}

TEST(archive_crypto_round_trip_and_tamper)
{
    uint8_t key[32], other[32];
    REQUIRE_INT(lh_archive_parse_key(hexkey, key, NULL), ==, 0);
    memcpy(other, key, 32);
    other[31] ^= 1;
    const char *msg = "2026-05-23 08:06:14 [payment-service] ERROR tr_abc123 usr_456 - "
                      "Database transaction timeout during capture.";
    size_t n = strlen(msg);
    struct lh_buf s1 = LH_BUF_INIT, s2 = LH_BUF_INIT, p = LH_BUF_INIT;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_archive_seal(key, msg, n, &s1, &err), ==, 0);
    REQUIRE_INT(lh_archive_seal(key, msg, n, &s2, &err), ==, 0);
    CHECK_INT(s1.len, ==, n + LH_ARCHIVE_ENC_OVERHEAD);
    CHECK(memcmp(s1.data, "LHAE\x01\x01", 6) == 0);
    CHECK(memcmp(s1.data + 8, s2.data + 8, 12) != 0);                 /* fresh nonces */
    CHECK(memmem(s1.data, s1.len, "payment-service", 15) == NULL);     /* no plaintext */
    REQUIRE_INT(lh_archive_unseal(key, s1.data, s1.len, &p, &err), ==, 0);
    CHECK(p.len == n && memcmp(p.data, msg, n) == 0);

    /* any changed byte (header, nonce, ciphertext, tag) is detected */
    int undetected = 0;
    for (size_t i = 0; i < s1.len; i++) {
        s1.data[i] ^= 0x20;
        lh_buf_reset(&p);
        int rc = lh_archive_unseal(key, s1.data, s1.len, &p, &err);
        undetected += rc != LH_ECORRUPT || p.len != 0;
        s1.data[i] ^= 0x20;
    }
    CHECK_INT(undetected, ==, 0);
    lh_buf_reset(&p);
    CHECK_INT(lh_archive_unseal(other, s1.data, s1.len, &p, &err), ==, LH_ECORRUPT);
    CHECK_CONTAINS(err.msg, "authentication");
    CHECK_INT(lh_archive_unseal(key, s1.data, s1.len - 1, &p, &err), ==, LH_ECORRUPT);
    CHECK_INT(lh_archive_unseal(key, s1.data, 10, &p, &err), ==, LH_ECORRUPT);
    CHECK_INT(p.len, ==, 0);
    /* the empty plaintext too */
    lh_buf_reset(&s2);
    REQUIRE_INT(lh_archive_seal(key, "", 0, &s2, &err), ==, 0);
    REQUIRE_INT(lh_archive_unseal(key, s2.data, s2.len, &p, &err), ==, 0);
    CHECK_INT(p.len, ==, 0);
    lh_buf_free(&s1);
    lh_buf_free(&s2);
    lh_buf_free(&p);
}

TEST(archive_encrypted_objects_in_the_dir_backend)
{
    struct lh_archive *a = open_dir("arch", hexkey);
    REQUIRE(a != NULL);
    CHECK(lh_archive_encrypts(a));
    struct lh_event evs[50];
    memset(evs, 0, sizeof(evs));
    for (int i = 0; i < 50; i++) {
        evs[i].ts_ns = 1779523574000000000ll + i * 1000;
        evs[i].service = "payment-service";
        evs[i].message = "Database transaction timeout during capture.";
        evs[i].level = LH_LEVEL_ERROR;
    }
    char key[LH_ARCHIVE_KEY_MAX];
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_archive_write_events(a, "acme", evs[0].ts_ns, "eu-west-1", "web-1", evs, 50,
                                        key, &err), ==, 0);
    CHECK(strncmp(key, "acme/year=2026/month=05/day=23/hour=08/eu-west-1_web-1_", 55) == 0);
    size_t kl = strlen(key);
    CHECK(kl > 12 && strcmp(key + kl - 12, ".parquet.enc") == 0);

    /* on disk: sealed bytes, no Parquet magic, no plaintext */
    char path[5200];
    snprintf(path, sizeof(path), "%s/arch/%s", lh_test_tmpdir(), key);
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    static char disk[1 << 16];
    size_t dl = fread(disk, 1, sizeof(disk), f);
    fclose(f);
    CHECK(memcmp(disk, "LHAE", 4) == 0);
    CHECK(memmem(disk, dl, "PAR1", 4) == NULL);
    CHECK(memmem(disk, dl, "payment", 7) == NULL);

    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n;
    REQUIRE_INT(lh_archive_read_events(a, key, &arena, &got, &n, &err), ==, 0);
    REQUIRE_INT(n, ==, 50);
    CHECK_STR(got[49].message, evs[49].message);
    CHECK_INT(got[49].ts_ns, ==, evs[49].ts_ns);
    /* head and list give the plaintext size; get slices the plaintext */
    uint64_t size = 0;
    REQUIRE_INT(lh_archive_head(a, key, &size, &err), ==, 0);
    CHECK_INT(size + LH_ARCHIVE_ENC_OVERHEAD, ==, dl);
    struct lh_archive_list l = { 0 };
    REQUIRE_INT(lh_archive_list(a, "acme/", &l, &err), ==, 0);
    REQUIRE_INT(l.n, ==, 1);
    CHECK_INT(l.items[0].size, ==, size);
    lh_archive_list_free(&l);
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_archive_get(a, key, size - 4, 0, &b, &err), ==, 0);
    CHECK(b.len == 4 && memcmp(b.data, "PAR1", 4) == 0);

    /* tampering on disk is detected by the reader */
    disk[dl / 2] ^= 1;
    f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fwrite(disk, 1, dl, f);
    fclose(f);
    CHECK_INT(lh_archive_read_events(a, key, &arena, &got, &n, &err), ==, LH_ECORRUPT);
    CHECK_CONTAINS(err.msg, "authentication");

    /* a handle without the key refuses .enc objects instead of returning ciphertext */
    struct lh_archive *plain = open_dir("arch", NULL);
    lh_buf_reset(&b);
    CHECK_INT(lh_archive_get(plain, key, 0, 0, &b, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "encryption_key");
    CHECK_INT(lh_archive_put(plain, "x/y.parquet.enc", "x", 1, &err), ==, LH_EINVAL);
    lh_archive_close(plain);
    lh_buf_free(&b);
    lh_arena_free(&arena);
    lh_archive_close(a);
}

/* ---- keys, options, S3 XML ---- */

TEST(archive_object_keys)
{
    char k[LH_ARCHIVE_KEY_MAX];
    const uint8_t uuid[16] = { 0x01, 0x8f, 0x3c, 0x2a, 0xde, 0xad, 0x7b, 0xee,
                               0x80, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };
    int64_t ts = 1779523574123456789ll;   /* 2026-05-23 08:06:14 UTC */
    REQUIRE_INT(lh_archive_key(k, sizeof(k), "acme", ts, "eu-west-1", "web-1", uuid,
                               LH_ARCHIVE_PARQUET, 0), ==, 0);
    CHECK_STR(k, "acme/year=2026/month=05/day=23/hour=08/"
                 "eu-west-1_web-1_018f3c2a-dead-7bee-8000-112233445566.parquet");
    REQUIRE_INT(lh_archive_key(k, sizeof(k), "acme", ts, "eu-west-1", "web-1", uuid,
                               LH_ARCHIVE_NDJSON, 1), ==, 0);
    CHECK(strstr(k, "5566.ndjson.zst.enc") != NULL);
    /* unsafe characters cannot make a path; '_' splits only after the region */
    REQUIRE_INT(lh_archive_key(k, sizeof(k), "../evil/t", -1, "eu_west", "host/x y", uuid,
                               LH_ARCHIVE_PARQUET, 0), ==, 0);
    CHECK_STR(k, "-.-evil-t/year=1969/month=12/day=31/hour=23/"
                 "eu-west_host-x-y_018f3c2a-dead-7bee-8000-112233445566.parquet");
    CHECK(lh_archive_key_ok(k));
    REQUIRE_INT(lh_archive_key(k, sizeof(k), NULL, 0, "", NULL, NULL, LH_ARCHIVE_PARQUET, 0), ==, 0);
    CHECK(strncmp(k, "unknown/year=1970/month=01/day=01/hour=00/unknown_unknown_", 58) == 0);
    CHECK_INT(k[58 + 14], ==, '7');   /* a time-ordered version 7 UUID */
    char k2[LH_ARCHIVE_KEY_MAX];
    REQUIRE_INT(lh_archive_key(k2, sizeof(k2), NULL, 0, "", NULL, NULL, LH_ARCHIVE_PARQUET, 0), ==, 0);
    CHECK(strcmp(k, k2) != 0);
    CHECK_INT(lh_archive_key(k, 40, "acme", ts, "r", "h", uuid, LH_ARCHIVE_PARQUET, 0), ==,
              LH_EINVAL);
    REQUIRE_INT(lh_archive_hour_prefix(k, sizeof(k), "acme", ts), ==, 0);
    CHECK_STR(k, "acme/year=2026/month=05/day=23/hour=08/");
}

TEST(archive_option_table)
{
    const char *yaml = "type: s3\n"
                       "format: ndjson\n"
                       "encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                       "s3:\n"
                       "  endpoint: http://127.0.0.1:9000\n"
                       "  bucket: loghaul\n"
                       "  access_key: loghaul\n"
                       "  secret_key: loghaul-secret\n"
                       "  addressing: path\n"
                       "  sse: AES256\n"
                       "  part_size: 8MiB\n";
    struct lh_archive_config c;
    struct lh_err err = { 0 };
    memset(&c, 0, sizeof(c));
    int rc = lh_conf_load_string("archive.yaml", yaml, strlen(yaml), lh_archive_opts, &c, &err);
    if (rc < 0)
        lh_test_fail(__FILE__, __LINE__, "%s", err.msg);
    REQUIRE_INT(rc, ==, 0);
    CHECK_INT(c.type, ==, LH_ARCHIVE_S3);
    CHECK_INT(c.format, ==, LH_ARCHIVE_NDJSON);
    CHECK_INT(c.zstd_level, ==, 6);
    CHECK_INT(c.s3.addressing, ==, LH_S3_PATH);
    CHECK_INT(c.s3.sse, ==, 1);
    CHECK_INT(c.s3.part_size, ==, 8u << 20);
    CHECK_INT(c.s3.multipart_threshold, ==, 64u << 20);
    CHECK_INT(c.s3.timeout_ms, ==, 120000);
    CHECK_INT(c.s3.retries, ==, 5);
    CHECK_INT(c.s3.tls_verify, ==, 1);
    CHECK_STR(c.s3.region, "us-east-1");
    CHECK_STR(c.dir.path, "./var/archive");
    struct lh_archive *a;
    REQUIRE_INT(lh_archive_open(&a, &c, &err), ==, 0);   /* no network touched */
    CHECK_STR(lh_archive_backend(a), "s3");
    CHECK(lh_archive_encrypts(a));
    CHECK_INT(lh_archive_object_format(a), ==, LH_ARCHIVE_NDJSON);
    lh_archive_close(a);
    /* configuration errors are caught at open */
    free(c.s3.endpoint);
    c.s3.endpoint = strdup("http://host/path");
    CHECK_INT(lh_archive_open(&a, &c, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "endpoint");
    free(c.encryption_key);
    c.encryption_key = strdup("short");
    CHECK_INT(lh_archive_open(&a, &c, &err), ==, LH_EINVAL);
    lh_conf_free(lh_archive_opts, &c);

    /* the table renders as commented YAML (--help-config) */
    char *text = NULL;
    size_t tl = 0;
    FILE *hf = open_memstream(&text, &tl);
    REQUIRE(hf != NULL);
    lh_conf_print_help(hf, lh_archive_opts);
    fclose(hf);
    CHECK_CONTAINS(text, "multipart_threshold");
    CHECK_CONTAINS(text, "encryption_key");
    free(text);

    const char *bad = "type: gcs\n";
    memset(&c, 0, sizeof(c));
    CHECK(lh_conf_load_string("archive.yaml", bad, strlen(bad), lh_archive_opts, &c, &err) < 0);
    lh_conf_free(lh_archive_opts, &c);
}

TEST(archive_s3_list_xml)
{
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>loghaul</Name><Prefix>acme/</Prefix><KeyCount>2</KeyCount>"
        "<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
        "<Contents><Key>acme/a&amp;b &lt;1&gt; &#233;&#x20AC;.parquet</Key>"
        "<LastModified>2026-05-23T08:06:14.000Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag><Size>12345678901</Size><StorageClass>STANDARD</StorageClass>"
        "</Contents>"
        "<Contents><Key>acme/b</Key><Size>0</Size></Contents>"
        "<NextContinuationToken>1/ab+c==</NextContinuationToken>"
        "</ListBucketResult>";
    struct lh_archive_list l = { 0 };
    int truncated = 0;
    char *token = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_archive_s3_parse_list(xml, strlen(xml), &l, &truncated, &token, &err), ==, 0);
    REQUIRE_INT(l.n, ==, 2);
    CHECK_STR(l.items[0].key, "acme/a&b <1> \xc3\xa9\xe2\x82\xac.parquet");
    CHECK_INT(l.items[0].size, ==, 12345678901ll);
    CHECK_STR(l.items[1].key, "acme/b");
    CHECK_INT(l.items[1].size, ==, 0);
    CHECK_INT(truncated, ==, 1);
    CHECK_STR(token, "1/ab+c==");
    free(token);
    lh_archive_list_free(&l);

    const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
    REQUIRE_INT(lh_archive_s3_parse_list(last, strlen(last), &l, &truncated, &token, &err), ==, 0);
    CHECK(l.n == 0 && !truncated && token == NULL);
    const char *broken = "<ListBucketResult><Contents><Key>x</Key></Contents></ListBucketResult>";
    CHECK_INT(lh_archive_s3_parse_list(broken, strlen(broken), &l, &truncated, &token, &err), ==,
              LH_ECORRUPT);
    const char *noToken = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
    CHECK_INT(lh_archive_s3_parse_list(noToken, strlen(noToken), &l, &truncated, &token, &err),
              ==, LH_ECORRUPT);
    const char *error = "<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>";
    CHECK_INT(lh_archive_s3_parse_list(error, strlen(error), &l, &truncated, &token, &err), ==,
              LH_ECORRUPT);
    char *code = lh_archive_xml_text(error, strlen(error), "Code");
    CHECK_STR(code, "AccessDenied");
    free(code);
    CHECK(lh_archive_xml_text(error, strlen(error), "Missing") == NULL);
    lh_archive_list_free(&l);
}

/* ---- reading a time range ---- */

static void put_parquet(struct lh_archive *a, const char *key, const struct lh_event *evs,
                        size_t n, size_t rows_per_group, struct lh_buf *out)
{
    struct lh_parquet_opts o = { .row_group_rows = rows_per_group };
    lh_buf_reset(out);
    REQUIRE_INT(lh_parquet_write(evs, n, &o, out, NULL), ==, 0);
    REQUIRE_INT(lh_archive_put(a, key, out->data, out->len, NULL), ==, 0);
}

static size_t count_in(const struct lh_event *evs, size_t n, int64_t from, int64_t to)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += evs[i].ts_ns >= from && evs[i].ts_ns <= to;
    return c;
}

TEST(archive_read_events_range)
{
    struct lh_archive *a = open_dir("arch", NULL);
    REQUIRE(a != NULL);
    enum { N = 2000 };
    static struct lh_event evs[N];
    static char msgs[N][16];
    int64_t t0 = 1779523574000000000ll;
    for (int i = 0; i < N; i++) {
        memset(&evs[i], 0, sizeof(evs[i]));
        evs[i].ts_ns = t0 + (int64_t)i * 1000000;   /* 1 ms apart, in order */
        snprintf(msgs[i], sizeof(msgs[i]), "m%d", i);
        evs[i].message = msgs[i];
    }
    struct lh_buf file = LH_BUF_INIT;
    const char *key = "acme/year=2026/month=05/day=23/hour=08/r_h_x.parquet";
    put_parquet(a, key, evs, N, 250, &file);   /* 8 row groups */

    struct lh_arena arena = LH_ARENA_INIT;
    struct lh_event *got;
    size_t n;
    struct lh_err err = { 0 };
    int64_t from = t0 + 600 * 1000000ll, to = t0 + 1100 * 1000000ll;
    REQUIRE_INT(lh_archive_read_events_range(a, key, from, to, &arena, &got, &n, &err), ==, 0);
    REQUIRE_INT(n, ==, 501);
    CHECK_STR(got[0].message, "m600");
    CHECK_STR(got[500].message, "m1100");
    REQUIRE_INT(lh_archive_read_events_range(a, key, t0 - 10, t0 - 1, &arena, &got, &n, &err),
                ==, 0);
    CHECK_INT(n, ==, 0);

    /* row groups outside the range are not even read: damage the first
     * one on disk, a range in the later ones still reads, a full read not */
    struct lh_parquet_file *f;
    uint64_t off, len;
    REQUIRE_INT(lh_parquet_open(&f, file.data, file.len, NULL), ==, 0);
    REQUIRE_INT(lh_parquet_row_group_range(f, 0, &off, &len), ==, 0);
    lh_parquet_close(f);
    for (uint64_t i = off; i < off + len; i++)
        file.data[i] = (char)0xff;
    REQUIRE_INT(lh_archive_put(a, key, file.data, file.len, NULL), ==, 0);
    REQUIRE_INT(lh_archive_read_events_range(a, key, from, to, &arena, &got, &n, &err), ==, 0);
    CHECK_INT(n, ==, 501);
    CHECK(lh_archive_read_events_range(a, key, t0, to, &arena, &got, &n, &err) < 0);
    CHECK(lh_archive_read_events(a, key, &arena, &got, &n, &err) < 0);

    /* a footer larger than the first tail read (many row groups) */
    put_parquet(a, key, evs, N, 20, &file);
    REQUIRE_INT(lh_parquet_open(&f, file.data, file.len, NULL), ==, 0);
    CHECK_INT(lh_parquet_num_row_groups(f), ==, 100);
    lh_parquet_close(f);
    size_t need = 0;
    REQUIRE(file.len > 65536);
    CHECK_INT(lh_parquet_open_tail(&f, file.data + file.len - 65536, 65536, file.len, &need,
                                   NULL), ==, LH_EAGAIN);
    CHECK(need > 65536 && need < file.len);
    REQUIRE_INT(lh_archive_read_events_range(a, key, from, to, &arena, &got, &n, &err), ==, 0);
    CHECK_INT(n, ==, count_in(evs, N, from, to));

    /* NDJSON and encrypted objects: read whole, filtered all the same */
    struct lh_buf nd = LH_BUF_INIT;
    REQUIRE_INT(lh_ndjson_write(evs, N, 3, &nd, NULL), ==, 0);
    REQUIRE_INT(lh_archive_put(a, "acme/x.ndjson.zst", nd.data, nd.len, NULL), ==, 0);
    REQUIRE_INT(lh_archive_read_events_range(a, "acme/x.ndjson.zst", from, to, &arena, &got, &n,
                                             &err), ==, 0);
    CHECK_INT(n, ==, 501);
    struct lh_archive *e = open_dir("arch", hexkey);
    REQUIRE_INT(lh_archive_put(e, "acme/y.parquet.enc", file.data, file.len, NULL), ==, 0);
    REQUIRE_INT(lh_archive_read_events_range(e, "acme/y.parquet.enc", from, to, &arena, &got, &n,
                                             &err), ==, 0);
    CHECK_INT(n, ==, 501);
    lh_archive_close(e);
    lh_buf_free(&nd);
    lh_buf_free(&file);
    lh_arena_free(&arena);
    lh_archive_close(a);
}

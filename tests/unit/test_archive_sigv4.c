/* Unit tests for sigv4.c against the published AWS Signature Version 4 test
 * suite (credential AKIDEXAMPLE, 2015-08-30, us-east-1, service "service")
 * and the S3 header-signing examples of the S3 API reference
 * (AKIAIOSFODNN7EXAMPLE, examplebucket, 2013-05-24). */
#include "../lh_test.h"
#include "lh/sigv4.h"

#include <string.h>

static const struct lh_sigv4_creds suite_creds = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"
};

static const struct lh_sigv4_creds s3_creds = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"
};

#define SUITE_DATE "20150830T123600Z"
#define SUITE_PREFIX                                                                  \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

/* Signs and returns the Authorization value (static buffer). */
static const char *sign(const struct lh_sigv4_request *req, const struct lh_sigv4_creds *c,
                        const char *date)
{
    static char res[512];
    struct lh_buf out = LH_BUF_INIT;
    struct lh_err err = { 0 };
    int rc = lh_sigv4_sign(req, c, date, &out, NULL, &err);
    if (rc < 0)
        snprintf(res, sizeof(res), "error %d: %s", rc, err.msg);
    else
        snprintf(res, sizeof(res), "%s", out.data);
    lh_buf_free(&out);
    return res;
}

static const char *sign_suite(const char *method, const char *path,
                              const struct lh_sigv4_pair *q, size_t nq,
                              const struct lh_sigv4_pair *extra, size_t nextra)
{
    struct lh_sigv4_pair h[8] = { { "Host", "example.amazonaws.com" },
                                  { "X-Amz-Date", SUITE_DATE } };
    size_t nh = 2;
    for (size_t i = 0; i < nextra; i++)
        h[nh++] = extra[i];
    struct lh_sigv4_request req = { method, path, q, nq, h, nh, LH_SIGV4_EMPTY_SHA256 };
    return sign(&req, &suite_creds, SUITE_DATE);
}

TEST(archive_sigv4_get_vanilla)
{
    struct lh_sigv4_pair h[] = { { "Host", "example.amazonaws.com" },
                                 { "X-Amz-Date", SUITE_DATE } };
    struct lh_sigv4_request req = { "GET", "/", NULL, 0, h, 2, LH_SIGV4_EMPTY_SHA256 };
    struct lh_buf creq = LH_BUF_INIT, sts = LH_BUF_INIT, auth = LH_BUF_INIT;
    REQUIRE_INT(lh_sigv4_canonical_request(&creq, &req), ==, 0);
    CHECK_STR(creq.data, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                         "host;x-amz-date\n" LH_SIGV4_EMPTY_SHA256);
    REQUIRE_INT(lh_sigv4_sign(&req, &suite_creds, SUITE_DATE, &auth, &sts, NULL), ==, 0);
    CHECK_STR(sts.data, "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/"
                        "aws4_request\n"
                        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    CHECK_STR(auth.data, SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
                         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    lh_buf_free(&creq);
    lh_buf_free(&sts);
    lh_buf_free(&auth);
}

TEST(archive_sigv4_suite_queries)
{
    /* get-vanilla-query-order-key-case */
    struct lh_sigv4_pair q1[] = { { "Param2", "value2" }, { "Param1", "value1" } };
    CHECK_STR(sign_suite("GET", "/", q1, 2, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    /* get-vanilla-query-order-key: same key, sorted by value */
    struct lh_sigv4_pair q2[] = { { "Param1", "value2" }, { "Param1", "Value1" } };
    CHECK_STR(sign_suite("GET", "/", q2, 2, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1");
    /* get-vanilla-query-order-value */
    struct lh_sigv4_pair q3[] = { { "Param1", "value2" }, { "Param1", "value1" } };
    CHECK_STR(sign_suite("GET", "/", q3, 2, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
    /* get-vanilla-empty-query-key (Param1=value1) */
    struct lh_sigv4_pair q4[] = { { "Param1", "value1" } };
    CHECK_STR(sign_suite("GET", "/", q4, 1, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
    /* get-vanilla-query-unreserved */
    const char *unres = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    struct lh_sigv4_pair q5[] = { { unres, unres } };
    CHECK_STR(sign_suite("GET", "/", q5, 1, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
    /* get-vanilla-utf8-query: U+1234 as a key */
    struct lh_sigv4_pair q6[] = { { "\xe1\x88\xb4", "bar" } };
    CHECK_STR(sign_suite("GET", "/", q6, 1, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
    /* post-vanilla-query */
    CHECK_STR(sign_suite("POST", "/", q4, 1, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

TEST(archive_sigv4_suite_paths_and_headers)
{
    /* post-vanilla */
    CHECK_STR(sign_suite("POST", "/", NULL, 0, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    /* get-unreserved */
    CHECK_STR(sign_suite("GET",
                         "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                         NULL, 0, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
    /* get-utf8: /U+1234 */
    CHECK_STR(sign_suite("GET", "/\xe1\x88\xb4", NULL, 0, NULL, 0),
              SUITE_PREFIX "SignedHeaders=host;x-amz-date, Signature="
              "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
    /* get-header-key-duplicate: repeated names joined in order */
    struct lh_sigv4_pair dup[] = { { "My-Header1", "value2" }, { "My-Header1", "value2" },
                                   { "My-Header1", "value1" } };
    CHECK_STR(sign_suite("GET", "/", NULL, 0, dup, 3),
              SUITE_PREFIX "SignedHeaders=host;my-header1;x-amz-date, Signature="
              "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
    /* get-header-value-order */
    struct lh_sigv4_pair ord[] = { { "My-Header1", "value4" }, { "My-Header1", "value1" },
                                   { "My-Header1", "value3" }, { "My-Header1", "value2" } };
    CHECK_STR(sign_suite("GET", "/", NULL, 0, ord, 4),
              SUITE_PREFIX "SignedHeaders=host;my-header1;x-amz-date, Signature="
              "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
    /* get-header-value-trim */
    struct lh_sigv4_pair trim[] = { { "My-Header1", " value1" },
                                    { "My-Header2", " \"a   b   c\"" } };
    CHECK_STR(sign_suite("GET", "/", NULL, 0, trim, 2),
              SUITE_PREFIX "SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature="
              "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
    /* post-header-value-case: values keep their case, names do not */
    struct lh_sigv4_pair vcase[] = { { "MY-HEADER1", "VALUE1" } };
    CHECK_STR(sign_suite("POST", "/", NULL, 0, vcase, 1),
              SUITE_PREFIX "SignedHeaders=host;my-header1;x-amz-date, Signature="
              "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");
}

TEST(archive_sigv4_s3_examples)
{
    const char *date = "20130524T000000Z";
    const char *prefix = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                         "us-east-1/s3/aws4_request, ";
    char want[512];

    /* GET Object with Range */
    struct lh_sigv4_pair get_h[] = { { "Host", "examplebucket.s3.amazonaws.com" },
                                     { "Range", "bytes=0-9" },
                                     { "x-amz-content-sha256", LH_SIGV4_EMPTY_SHA256 },
                                     { "x-amz-date", date } };
    struct lh_sigv4_request get = { "GET", "/test.txt", NULL, 0, get_h, 4,
                                    LH_SIGV4_EMPTY_SHA256 };
    snprintf(want, sizeof(want), "%sSignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
             "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", prefix);
    CHECK_STR(sign(&get, &s3_creds, date), want);

    /* PUT Object: '$' in the key is encoded, the body's hash is signed */
    char body_sha[65];
    lh_sigv4_sha256_hex("Welcome to Amazon S3.", 21, body_sha);
    CHECK_STR(body_sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    struct lh_sigv4_pair put_h[] = { { "Host", "examplebucket.s3.amazonaws.com" },
                                     { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
                                     { "x-amz-date", date },
                                     { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
                                     { "x-amz-content-sha256", body_sha } };
    struct lh_sigv4_request put = { "PUT", "/test$file.text", NULL, 0, put_h, 5, body_sha };
    snprintf(want, sizeof(want), "%sSignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
             "x-amz-storage-class, "
             "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd", prefix);
    CHECK_STR(sign(&put, &s3_creds, date), want);

    /* GET Bucket lifecycle: a query key without value */
    struct lh_sigv4_pair lc_h[] = { { "Host", "examplebucket.s3.amazonaws.com" },
                                    { "x-amz-date", date },
                                    { "x-amz-content-sha256", LH_SIGV4_EMPTY_SHA256 } };
    struct lh_sigv4_pair lc_q[] = { { "lifecycle", NULL } };
    struct lh_sigv4_request lc = { "GET", "/", lc_q, 1, lc_h, 3, LH_SIGV4_EMPTY_SHA256 };
    snprintf(want, sizeof(want), "%sSignedHeaders=host;x-amz-content-sha256;x-amz-date, "
             "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543", prefix);
    CHECK_STR(sign(&lc, &s3_creds, date), want);

    /* GET Bucket (list objects) */
    struct lh_sigv4_pair ls_q[] = { { "prefix", "J" }, { "max-keys", "2" } };
    struct lh_sigv4_request ls = { "GET", "/", ls_q, 2, lc_h, 3, LH_SIGV4_EMPTY_SHA256 };
    snprintf(want, sizeof(want), "%sSignedHeaders=host;x-amz-content-sha256;x-amz-date, "
             "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", prefix);
    CHECK_STR(sign(&ls, &s3_creds, date), want);
}

TEST(archive_sigv4_encoding_and_errors)
{
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE_INT(lh_sigv4_uri_encode(&b, "a b/c~d$\xc3\xa9", 10, 1), ==, 0);
    CHECK_STR(b.data, "a%20b/c~d%24%C3%A9");
    lh_buf_reset(&b);
    REQUIRE_INT(lh_sigv4_uri_encode(&b, "a/b=c&d", 7, 0), ==, 0);
    CHECK_STR(b.data, "a%2Fb%3Dc%26d");
    lh_buf_reset(&b);
    struct lh_sigv4_pair q[] = { { "prefix", "acme/year=2026/" }, { "list-type", "2" },
                                 { "continuation-token", "1/a+b==" } };
    REQUIRE_INT(lh_sigv4_canonical_query(&b, q, 3), ==, 0);
    CHECK_STR(b.data, "continuation-token=1%2Fa%2Bb%3D%3D&list-type=2&"
                      "prefix=acme%2Fyear%3D2026%2F");
    lh_buf_free(&b);

    char d[LH_SIGV4_DATE_SIZE];
    lh_sigv4_amz_date(1440938160, d);
    CHECK_STR(d, "20150830T123600Z");

    struct lh_sigv4_pair h[] = { { "Host", "x" } };
    struct lh_sigv4_request req = { "GET", "/", NULL, 0, h, 1, LH_SIGV4_EMPTY_SHA256 };
    struct lh_err err = { 0 };
    struct lh_buf out = LH_BUF_INIT;
    CHECK_INT(lh_sigv4_sign(&req, &suite_creds, "2015-08-30", &out, NULL, &err), ==, LH_EINVAL);
    CHECK_CONTAINS(err.msg, "x-amz-date");
    CHECK_INT(out.len, ==, 0);
    lh_buf_free(&out);
}

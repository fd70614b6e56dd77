/* test_queryd_config.c - queryd's shipped configs load and validate (the
 * production example with its TLS files and secrets provided), and bad
 * configs are refused with the key named. */
#include "../lh_test.h"
#include "../../queryd/queryd.h"
#include "http_test_util.h"

#include <stdlib.h>
#include <unistd.h>

static const char *repo_path(const char *rel, char *buf, size_t size)
{
    snprintf(buf, size, "%s/../../%s", lh_test_build_dir(), rel);
    if (access(buf, R_OK) != 0)
        snprintf(buf, size, "%s", rel);
    return buf;
}

static int load(const char *path, struct lh_err *err)
{
    struct lh_queryd_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    int rc = lh_daemon_load_config(&lh_queryd_ops, path, &cfg, err);
    if (rc == 0)
        lh_conf_free(lh_queryd_opts, &cfg);
    return rc;
}

TEST(queryd_shipped_configs_validate)
{
    char p[4096];
    struct lh_err err = { 0 };
    unsetenv("LOGHAUL_CURSOR_KEY");
    CHECK_INT(load(repo_path("config/local/queryd.yaml", p, sizeof(p)), &err), ==, 0);
    struct lh_queryd_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    REQUIRE_INT(lh_daemon_load_config(&lh_queryd_ops, p, &cfg, &err), ==, 0);
    CHECK_STR(cfg.common.listen.listen, "127.0.0.1:7071");
    CHECK_INT(cfg.tenants.n, ==, 1);
    const struct lh_queryd_tenant *t = cfg.tenants.items;
    CHECK_STR(t[0].name, "demo");
    CHECK_STR(t[0].tokens.v[0], "dev-token");
    const struct lh_queryd_tier *tr = cfg.tiers.items;
    CHECK_INT(tr[0].type, ==, LH_TIER_STORE);
    CHECK_STR(tr[0].store.dir, "./var/store");
    CHECK_INT(tr[0].max_age_ms, ==, 7 * 86400000LL);
    REQUIRE_INT(cfg.tiers.n, ==, 2);
    CHECK_INT(tr[1].type, ==, LH_TIER_ARCHIVE);
    CHECK_STR(tr[1].archive.dir.path, "./var/archive");
    CHECK(cfg.cursor.key && strlen(cfg.cursor.key) >= 16);
    lh_conf_free(lh_queryd_opts, &cfg);
    setenv("LOGHAUL_CURSOR_KEY", "from-the-environment-0123456789", 1);
    REQUIRE_INT(lh_daemon_load_config(&lh_queryd_ops, p, &cfg, &err), ==, 0);
    CHECK_STR(cfg.cursor.key, "from-the-environment-0123456789");
    lh_conf_free(lh_queryd_opts, &cfg);
    unsetenv("LOGHAUL_CURSOR_KEY");

    CHECK_INT(load(repo_path("config/scaled/queryd.yaml", p, sizeof(p)), &err), ==, 0);
    memset(&cfg, 0, sizeof(cfg));
    REQUIRE_INT(lh_daemon_load_config(&lh_queryd_ops, p, &cfg, &err), ==, 0);
    tr = cfg.tiers.items;
    CHECK_INT(tr[0].type, ==, LH_TIER_OPENSEARCH);
    CHECK_STR(tr[0].opensearch.urls.v[0], "http://127.0.0.1:9200");
    REQUIRE_INT(cfg.tiers.n, ==, 2);
    CHECK_INT(tr[1].type, ==, LH_TIER_ARCHIVE);
    CHECK_STR(tr[1].archive.s3.bucket, "loghaul");
    lh_conf_free(lh_queryd_opts, &cfg);

    /* production: TLS files from the tests' CA, secrets from the environment */
    const char *dir = lh_test_tmpdir();
    REQUIRE(ht_make_certs(dir) == 0);
    FILE *f = fopen(repo_path("config/examples/queryd-production.yaml", p, sizeof(p)), "r");
    REQUIRE(f);
    struct lh_buf text = LH_BUF_INIT;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char *at = strstr(line, "/etc/loghaul/tls/");
        if (at) {
            *at = '\0';
            const char *name = at + 17;   /* the file name, up to the blank */
            size_t nl = strcspn(name, " \n");
            const char *file = memmem(name, nl, "key", 3) ? "server.key"
                               : memmem(name, nl, "ca", 2) ? "ca.pem" : "server.pem";
            lh_buf_printf(&text, "%s%s/%s\n", line, dir, file);
        } else {
            lh_buf_puts(&text, line);
        }
    }
    fclose(f);
    char prod[600];
    snprintf(prod, sizeof(prod), "%s/prod.yaml", dir);
    f = fopen(prod, "w");
    REQUIRE(f);
    fputs(text.data, f);
    fclose(f);
    lh_buf_free(&text);
    CHECK_INT(load(prod, &err), ==, LH_EINVAL);   /* secrets not set */
    CHECK_CONTAINS(err.msg, "LOGHAUL_TOKEN_PAYMENTS");
    setenv("LOGHAUL_TOKEN_PAYMENTS", "pay-token-0123456789", 1);
    setenv("LOGHAUL_TOKEN_PAYMENTS_GRAFANA", "pay-grafana-0123456789", 1);
    setenv("LOGHAUL_TOKEN_PLATFORM", "platform-token-0123456789", 1);
    setenv("LOGHAUL_CURSOR_KEY", "a-production-key-0123456789abcdef", 1);
    setenv("LOGHAUL_OPENSEARCH_PASSWORD", "secret", 1);
    setenv("LOGHAUL_ARCHIVE_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    int rc = load(prod, &err);
    if (rc)
        fprintf(stderr, "    %s\n", err.msg);
    CHECK_INT(rc, ==, 0);
    memset(&cfg, 0, sizeof(cfg));
    REQUIRE_INT(lh_daemon_load_config(&lh_queryd_ops, prod, &cfg, &err), ==, 0);
    CHECK(cfg.common.listen.tls.cert_file != NULL);
    CHECK_INT(cfg.tenants.n, ==, 2);
    lh_conf_free(lh_queryd_opts, &cfg);
}

TEST(queryd_bad_configs_refused)
{
    struct {
        const char *yaml, *msg;
    } cases[] = {
        { "tiers: []\n", "tenants: at least one tenant" },
        { "tenants:\n  - name: a\n", "tenants[0] (a): no tokens" },
        { "tenants:\n  - name: a\n    tokens: [short]\n", "at least 8 characters" },
        { "tenants:\n  - name: a\n    tokens: [aaaaaaaaaa]\n  - name: b\n    tokens: [aaaaaaaaaa]\n",
          "a token is given twice" },
        { "tenants:\n  - name: a\n    tokens: [aaaaaaaaaa]\ncursor:\n  key: tooshort\n",
          "cursor.key: at least 16 bytes" },
        { "tenants:\n  - name: a\n    tokens: [aaaaaaaaaa]\ntiers:\n  - type: store\n"
          "    max_age: 0\n  - type: opensearch\n", "must be the last tier" },
        { "tenants:\n  - name: a\n    tokens: [aaaaaaaaaa]\nlimits:\n  default_limit: 2000\n",
          "default_limit <= max_limit" },
        { "tenants:\n  - name: a\n    tokens: [aaaaaaaaaa]\ntiers:\n  - type: elastic\n",
          "tiers[0].type" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lh_queryd_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        struct lh_err err = { 0 };
        int rc = lh_conf_load_string("t.yaml", cases[i].yaml, strlen(cases[i].yaml),
                                     lh_queryd_opts, &cfg, &err);
        if (rc == 0) {
            rc = lh_queryd_validate(&cfg, &err);
            lh_conf_free(lh_queryd_opts, &cfg);
        }
        CHECK(rc < 0);
        CHECK_CONTAINS(err.msg, cases[i].msg);
    }
}

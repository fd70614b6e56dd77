/* Unit tests for agent/meta.c, agent/checkpoint.c and agent/ledger.c. */
#include "../lh_test.h"
#include "../../agent/checkpoint.h"
#include "../../agent/ledger.h"
#include "../../agent/meta.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char ID64[] = "3f5a0e6f4c1d2b8a9e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d";

TEST(agent_k8s_containers_path)
{
    char path[512];
    snprintf(path, sizeof(path), "/var/log/containers/payment-api-7d9f8b6c5-x2x4q_shop-prod_api-%s.log", ID64);
    struct lh_k8s_meta m;
    REQUIRE(lh_k8s_parse_path(path, &m) == 0);
    CHECK_STR(m.pod, "payment-api-7d9f8b6c5-x2x4q");
    CHECK_STR(m.namespace_, "shop-prod");
    CHECK_STR(m.container, "api");
    CHECK_STR(m.container_id, ID64);
    CHECK_STR(m.pod_uid, "");

    /* Container names with dashes: the id follows the last dash. */
    snprintf(path, sizeof(path), "x/web-0_default_istio-proxy-%s.log", ID64);
    REQUIRE(lh_k8s_parse_path(path, &m) == 0);
    CHECK_STR(m.container, "istio-proxy");
    CHECK_STR(m.pod, "web-0");

    CHECK(lh_k8s_parse_path("/var/log/syslog", &m) == LH_EINVAL);
    CHECK(lh_k8s_parse_path("/var/log/containers/a_b_c-nothex.log", &m) == LH_EINVAL);
    CHECK(lh_k8s_parse_path("/var/log/containers/a_b.log", &m) == LH_EINVAL);
    CHECK(lh_k8s_parse_path("/var/log/containers/_ns_c-abc.log", &m) == LH_EINVAL);
}

TEST(agent_k8s_pods_path_and_symlink)
{
    struct lh_k8s_meta m;
    REQUIRE(lh_k8s_parse_path("/var/log/pods/shop-prod_web-0_1b2c-77/nginx/3.log", &m) == 0);
    CHECK_STR(m.namespace_, "shop-prod");
    CHECK_STR(m.pod, "web-0");
    CHECK_STR(m.pod_uid, "1b2c-77");
    CHECK_STR(m.container, "nginx");
    CHECK_STR(m.container_id, "");
    CHECK(lh_k8s_parse_path("/var/log/pods/bad/nginx/3.log", &m) == LH_EINVAL);
    CHECK(lh_k8s_parse_path("/var/log/pods/a_b_c/nginx/x.log", &m) == LH_EINVAL);

    /* The kubelet's layout, symlink resolved: both halves are combined. */
    const char *d = lh_test_tmpdir();
    char dir[512], target[600], link[700], plain[600];
    snprintf(dir, sizeof(dir), "%s/pods/ns1_pod1_uid-9/app", d);
    char mk[600];
    snprintf(mk, sizeof(mk), "%s/pods", d);
    REQUIRE(mkdir(mk, 0755) == 0);
    snprintf(mk, sizeof(mk), "%s/pods/ns1_pod1_uid-9", d);
    REQUIRE(mkdir(mk, 0755) == 0);
    REQUIRE(mkdir(dir, 0755) == 0);
    snprintf(mk, sizeof(mk), "%s/containers", d);
    REQUIRE(mkdir(mk, 0755) == 0);
    snprintf(target, sizeof(target), "%s/0.log", dir);
    int fd = open(target, O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    snprintf(link, sizeof(link), "%s/containers/pod1_ns1_app-%s.log", d, ID64);
    REQUIRE(symlink(target, link) == 0);
    REQUIRE(lh_k8s_from_file(link, &m) == 0);
    CHECK_STR(m.pod, "pod1");
    CHECK_STR(m.namespace_, "ns1");
    CHECK_STR(m.container, "app");
    CHECK_STR(m.container_id, ID64);
    CHECK_STR(m.pod_uid, "uid-9");
    /* A symlink with an arbitrary name still gets the target's fields. */
    snprintf(plain, sizeof(plain), "%s/containers/whatever.log", d);
    REQUIRE(symlink(target, plain) == 0);
    REQUIRE(lh_k8s_from_file(plain, &m) == 0);
    CHECK_STR(m.pod, "pod1");
    CHECK_STR(m.container_id, "");
}

TEST(agent_shipper_metadata_json)
{
    struct lh_shipper_meta m = { .host_id = "i-09ab7d6f5e", .cluster_name = "prod \"east\"",
                                 .region = NULL, .agent_version = "loghaul-agent/0.1.0" };
    struct lh_buf b = LH_BUF_INIT;
    REQUIRE(lh_shipper_meta_json(&m, &b) == 0);
    CHECK_STR(b.data, "{\"host_id\":\"i-09ab7d6f5e\",\"cluster_name\":\"prod \\\"east\\\"\","
                      "\"agent_version\":\"loghaul-agent/0.1.0\"}");
    lh_buf_free(&b);
    char id[256];
    CHECK(lh_host_id_default(id, sizeof(id), NULL) == 0);
    CHECK(id[0] != '\0');
}

TEST(agent_checkpoint_roundtrip_atomic)
{
    char file[512];
    snprintf(file, sizeof(file), "%s/ckpt.json", lh_test_tmpdir());
    struct lh_ckpt_entry *v = NULL;
    size_t n = 99;
    REQUIRE(lh_ckpt_load(file, &v, &n, NULL) == 0);     /* missing: empty */
    CHECK_INT(n, ==, 0);
    free(v);

    struct lh_ckpt_entry in[2] = {
        { 2049, UINT64_MAX - 5, 0xfedcba9876543210ull, 1024, 4096, 8192, "/var/log/a.log",
          "/var/log/a.log.1" },
        { 7, 12, 1, 3, 0, 3, "/var/log/\xff\xfe.log", NULL },
    };
    REQUIRE(lh_ckpt_save(file, in, 2, NULL) == 0);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    CHECK(access(tmp, F_OK) != 0);
    REQUIRE(lh_ckpt_load(file, &v, &n, NULL) == 0);
    REQUIRE_INT(n, ==, 2);
    CHECK(v[0].dev == 2049 && v[0].ino == UINT64_MAX - 5);
    CHECK(v[0].fp == 0xfedcba9876543210ull);
    CHECK_INT(v[0].fp_len, ==, 1024);
    CHECK_INT(v[0].offset, ==, 4096);
    CHECK_INT(v[0].size, ==, 8192);
    CHECK_STR(v[0].path, "/var/log/a.log");
    CHECK_STR(v[0].real, "/var/log/a.log.1");
    CHECK_STR(v[1].path, "/var/log/\xff\xfe.log");    /* non-UTF-8 name, hex-stored */
    CHECK_STR(v[1].real, "");
    lh_ckpt_free(v, n);

    /* Garbage is reported as corrupt, not taken for an empty store. */
    FILE *f = fopen(file, "w");
    REQUIRE(f);
    fputs("{\"files\":[{\"dev\":1", f);
    fclose(f);
    struct lh_err err = { 0 };
    CHECK(lh_ckpt_load(file, &v, &n, &err) == LH_ECORRUPT);
    CHECK_CONTAINS(err.msg, "ckpt.json");

    /* A save into a missing directory fails and says why. */
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/ckpt.json", lh_test_tmpdir());
    CHECK(lh_ckpt_save(bad, in, 1, &err) == LH_EIO);
    CHECK_CONTAINS(err.msg, "No such file");
}

TEST(agent_ledger_counts_and_render)
{
    struct lh_ledger *l = lh_ledger_create();
    REQUIRE(l);
    lh_ledger_read(l, "/a.log", 10, 100);
    lh_ledger_read(l, "/b \"q\".log", 5, 50);
    lh_ledger_acked(l, "/a.log", 7);
    lh_ledger_drop(l, "/a.log", "sampled", 2, 0);
    lh_ledger_drop(l, "/a.log", LH_DROP_TRUNCATED, 0, 4000);
    lh_ledger_loss(l, "/a.log", LH_LOSS_TRUNCATED, 100, 160);
    lh_ledger_error(l, LH_TAILERR_PERMISSION);
    lh_ledger_error(l, LH_TAILERR_PERMISSION);
    lh_ledger_flag(l, LH_FLAG_INVALID_UTF8, 3);
    struct lh_ledger_file a, tot;
    REQUIRE(lh_ledger_get(l, "/a.log", &a) == 0);
    CHECK_INT(a.lines_read, ==, 10);
    CHECK_INT(a.lines_acked, ==, 7);
    CHECK_INT(a.lines_dropped, ==, 2);
    CHECK_INT(a.bytes_dropped, ==, 4000);
    CHECK_INT(a.bytes_lost, ==, 60);
    CHECK_INT(a.loss_windows, ==, 1);
    CHECK_INT(lh_ledger_dropped(l, "/a.log", "sampled"), ==, 2);
    CHECK_INT(lh_ledger_errors(l, LH_TAILERR_PERMISSION), ==, 2);
    CHECK_INT(lh_ledger_flags(l, LH_FLAG_INVALID_UTF8), ==, 3);
    struct lh_loss_window w[4];
    REQUIRE_INT(lh_ledger_loss_windows(l, w, 4), ==, 1);
    CHECK_STR(w[0].path, "/a.log");
    CHECK_INT(w[0].start, ==, 100);
    CHECK_INT(w[0].end, ==, 160);

    struct lh_buf b = LH_BUF_INIT;
    REQUIRE(lh_ledger_render(l, &b) == 0);
    CHECK_CONTAINS(b.data, "loghaul_agent_file_lines_read_total{file=\"/a.log\"} 10\n");
    CHECK_CONTAINS(b.data, "loghaul_agent_file_lines_read_total{file=\"/b \\\"q\\\".log\"} 5\n");
    CHECK_CONTAINS(b.data, "loghaul_agent_lost_bytes_total{reason=\"truncated\"} 60\n");
    CHECK_CONTAINS(b.data, "loghaul_agent_tail_errors_total{reason=\"permission_denied\"} 2\n");
    CHECK_CONTAINS(b.data, "loghaul_agent_lines_dropped_total{reason=\"sampled\"} 2\n");
    CHECK_CONTAINS(b.data, "# TYPE loghaul_agent_lines_read_total counter\n");
    lh_buf_free(&b);

    /* Retiring a row keeps the totals. */
    lh_ledger_retire(l, "/a.log");
    CHECK(lh_ledger_get(l, "/a.log", &a) == LH_ENOTFOUND);
    REQUIRE(lh_ledger_get(l, NULL, &tot) == 0);
    CHECK_INT(tot.lines_read, ==, 15);
    CHECK_INT(tot.lines_acked, ==, 7);
    CHECK_INT(tot.bytes_lost, ==, 60);
    lh_ledger_destroy(l);
}

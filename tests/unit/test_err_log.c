/* Unit tests for err.c and log.c. */
#include "../lh_test.h"
#include "lh/err.h"
#include "lh/log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

TEST(err_set_formats_and_returns_code)
{
    struct lh_err e = {0};
    CHECK_INT(lh_err_set(&e, LH_EINVAL, "bad %s", "thing"), ==, LH_EINVAL);
    CHECK_STR(e.msg, "bad thing");
    CHECK_INT(e.code, ==, LH_EINVAL);
    CHECK_INT(lh_err_wrap(&e, "loading %s", "x.yaml"), ==, LH_EINVAL);
    CHECK_STR(e.msg, "loading x.yaml: bad thing");
    CHECK_INT(lh_err_set(NULL, LH_EIO, "ignored"), ==, LH_EIO);
}

TEST(err_errno_appends_strerror)
{
    struct lh_err e = {0};
    lh_err_errno(&e, LH_EIO, ENOENT, "open(%s)", "/nope");
    CHECK_CONTAINS(e.msg, "open(/nope): No such file");
}

TEST(log_rate_limits_per_site)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/d.log", lh_test_tmpdir());
    struct lh_log_config cfg = { .component = "t", .level = LH_LOG_INFO, .file = path,
                                 .burst = 3, .window_ms = 100000 };
    REQUIRE(lh_log_configure(&cfg) == 0);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);                       /* keep the test output clean */
    for (int i = 0; i < 10; i++)
        lh_warn("line %d", i);
    lh_debug("below the level");
    dup2(saved, 2);
    lh_log_shutdown();
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    CHECK_INT(lines, ==, 3);
    CHECK_CONTAINS(buf, "WARN  t: line 0");
    CHECK(!strstr(buf, "line 3"));
    CHECK(!strstr(buf, "below the level"));
}

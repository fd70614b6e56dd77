/* runner.c - runs every registered unit test in its own child process.
 *
 * Usage: unit_tests [-l] [-j N] [SUBSTRING...]
 *   -l            list the tests
 *   SUBSTRING     run only tests whose name or file contains one of them
 * Environment: LH_TEST_TIMEOUT (seconds per test, default 120).
 * The last line is "N passed, N failed". */
#include "../lh_test.h"
#include "leak_check.h"

#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct lh_test_case *cases;
static size_t ncases;
static int failures;             /* in the child: failures of the running test */
static char tmpdir[PATH_MAX];
static char build_dir[PATH_MAX];

void lh_test_register(struct lh_test_case *tc)
{
    tc->next = cases;
    cases = tc;
    ncases++;
}

void lh_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    failures++;
}

void lh_test_end(void)
{
    /* _exit() skips LeakSanitizer's exit-time check: ask for it here, so
     * every test that returns normally is also a leak test. */
    if (lh_test_leaks()) {
        fprintf(stderr, "    LeakSanitizer found leaks (see above)\n");
        failures++;
    }
    fflush(NULL);
    _exit(failures ? 1 : 0);
}

const char *lh_test_tmpdir(void) { return tmpdir; }
const char *lh_test_build_dir(void) { return build_dir; }

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

static int selected(const struct lh_test_case *tc, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++)
        if (strstr(tc->name, argv[i]) || strstr(tc->file, argv[i]))
            return 1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int first = 1, list = 0;
    if (argc > 1 && strcmp(argv[1], "-l") == 0) {
        list = 1;
        first = 2;
    }
    /* Registration order is reverse link order; run in file order. */
    struct lh_test_case **v = calloc(ncases ? ncases : 1, sizeof(*v));
    if (!v)
        return 2;
    size_t k = ncases;
    for (struct lh_test_case *tc = cases; tc; tc = tc->next)
        v[--k] = tc;

    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        snprintf(build_dir, sizeof(build_dir), "%s", dirname(dirname(self)));
    }
    const char *tmo = getenv("LH_TEST_TIMEOUT");
    unsigned timeout = tmo ? (unsigned)atoi(tmo) : 120;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    int passed = 0, failed = 0;
    for (size_t i = 0; i < ncases; i++) {
        struct lh_test_case *tc = v[i];
        if (!selected(tc, argc, argv, first))
            continue;
        if (list) {
            printf("%s (%s)\n", tc->name, tc->file);
            continue;
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/lh-test-%s-XXXXXX", base, tc->name);
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            return 2;
        }
        fflush(NULL);
        double t0 = now_s();
        pid_t pid = fork();
        if (pid == 0) {
            /* Own process group so a test's children die with it. */
            setpgid(0, 0);
            alarm(timeout);
            failures = 0;
            tc->fn();
            lh_test_end();
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        kill(-pid, SIGKILL);
        double dt = now_s() - t0;
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            passed++;
            printf("ok   %-50s %7.3fs\n", tc->name, dt);
        } else {
            failed++;
            if (WIFSIGNALED(status))
                printf("FAIL %-50s %7.3fs (signal %d%s)\n", tc->name, dt, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? ", timeout" : "");
            else
                printf("FAIL %-50s %7.3fs\n", tc->name, dt);
        }
        fflush(stdout);
    }
    free(v);
    if (!list)
        printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

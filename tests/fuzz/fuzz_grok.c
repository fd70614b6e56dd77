/* fuzz_grok.c - libFuzzer target: grok (indexer/grok.c), both halves.
 *
 * Input byte 0 'c': the rest is a small pattern file (`NAME REGEX` lines,
 * appended to config/patterns/00-base.grok so %{WORD} and friends resolve);
 * the names it defines (up to 4) are compiled as top-level patterns and, when
 * they compile, matched against the text itself.
 * Any other byte 0: the rest is a log line, matched against the top-level
 * patterns of config/patterns in the order an indexer lists them.
 * Checked: every capture lies inside the matched line, and a failed compile
 * says why. The pattern directory is config/patterns of the checkout, found
 * from the working directory, $LH_FUZZ_PATTERNS, or the binary's path. */
#include "fuzz.h"

#include <libgen.h>

#include "../../indexer/grok.h"

static const char *const tops[] = {
    "LOGHAUL_APP", "ACCESS_LOG", "APACHE_ERROR", "SYSLOG3164", "SYSLOG5424",
    "JAVA_LOG4J", "JAVA_LOGBACK", "PYTHON_LOG", "PYTHON_BASIC", "KLOG",
};
#define NTOPS (sizeof(tops) / sizeof(tops[0]))
#define MAX_DEFS_BYTES 1024

static struct lh_grok *fixed;
static struct lh_grok_matcher *fixed_m;
static char *base_defs;   /* 00-base.grok */

static int load_dir(const char *dir)
{
    struct lh_err err = { 0 };
    if (lh_grok_create(dir, tops, NTOPS, &fixed, &err) < 0) {
        fprintf(stderr, "fuzz_grok: %s\n", err.msg);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/00-base.grok", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, n = 0;
    base_defs = malloc(cap + 1);
    if (base_defs)
        n = fread(base_defs, 1, cap, f);
    fclose(f);
    if (!base_defs)
        return -1;
    base_defs[n] = '\0';
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    const char *env = getenv("LH_FUZZ_PATTERNS");
    char rel[4096];
    char *self = strdup((*argv)[0]);
    snprintf(rel, sizeof(rel), "%s/../../config/patterns", self ? dirname(self) : ".");
    free(self);
    if (!(env && load_dir(env) == 0) && load_dir("config/patterns") < 0 && load_dir(rel) < 0) {
        fprintf(stderr, "fuzz_grok: config/patterns not found (set LH_FUZZ_PATTERNS)\n");
        abort();
    }
    FUZZ_CHECK(lh_grok_matcher_create(fixed, &fixed_m) == 0, "matcher");
    return 0;
}

static void match_and_check(struct lh_grok_matcher *m, size_t ntop, const char *line, size_t n)
{
    int idx = lh_grok_match(m, line, n);
    FUZZ_CHECK(idx >= -1 && idx < (int)ntop, "match index %d of %zu patterns", idx, ntop);
    if (idx < 0)
        return;
    size_t ncap;
    const struct lh_grok_capture *c = lh_grok_captures(m, &ncap);
    for (size_t i = 0; i < ncap; i++) {
        FUZZ_CHECK(c[i].field && c[i].field[0], "a capture without a field name");
        FUZZ_CHECK(c[i].value >= line && c[i].len <= n &&
                       (size_t)(c[i].value - line) <= n - c[i].len,
                   "capture %s outside the line", c[i].field);
        fuzz_touch(c[i].value, c[i].len);
    }
}

/* Names defined by the lines of text (up to max), as load_text reads them. */
static size_t defined_names(const char *text, char names[][64], size_t max)
{
    size_t n = 0;
    for (const char *p = text; *p && n < max;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        size_t l = 0;
        while (l < 63 && (p[l] == '_' || (p[l] >= 'A' && p[l] <= 'Z') ||
                          (p[l] >= 'a' && p[l] <= 'z') || (p[l] >= '0' && p[l] <= '9')))
            l++;
        if (l) {
            memcpy(names[n], p, l);
            names[n++][l] = '\0';
        }
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

static void compile_defs(const uint8_t *data, size_t size)
{
    if (size > MAX_DEFS_BYTES)
        return;
    char *text = fuzz_strndup(data, size);
    size_t blen = strlen(base_defs);
    char *defs = malloc(blen + size + 2);
    FUZZ_CHECK(defs != NULL, "out of memory");
    memcpy(defs, base_defs, blen);
    defs[blen] = '\n';
    memcpy(defs + blen + 1, text, size + 1);
    char names[4][64];
    const char *match[4];
    size_t nm = defined_names(text, names, 4);
    for (size_t i = 0; i < nm; i++)
        match[i] = names[i];
    struct lh_grok *g = NULL;
    struct lh_err err = { 0 };
    int rc = lh_grok_create_from_text("fuzz", defs, match, nm, &g, &err);
    if (rc == 0) {
        FUZZ_CHECK(lh_grok_pattern_count(g) == nm, "%zu patterns compiled, %zu asked",
                   lh_grok_pattern_count(g), nm);
        for (size_t i = 0; i < nm; i++)
            fuzz_touch_str(lh_grok_expansion(g, names[i]));
        struct lh_grok_matcher *m = NULL;
        FUZZ_CHECK(lh_grok_matcher_create(g, &m) == 0, "matcher");
        match_and_check(m, nm, text, size);
        lh_grok_matcher_destroy(m);
        lh_grok_destroy(g);
    } else {
        FUZZ_CHECK(rc == LH_EINVAL, "unexpected return %d (%s)", rc, err.msg);
        FUZZ_CHECK(err.msg[0], "a failure without a message");
        FUZZ_CHECK(g == NULL, "*out set on failure");
    }
    free(defs);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] == 'c')
        compile_defs(data + 1, size - 1);
    else
        match_and_check(fixed_m, NTOPS, (const char *)data + 1, size - 1);
    return 0;
}

/* fuzz_multiline.c - libFuzzer target: multiline joining (agent/multiline.c
 * rules, format.c buffering) fed a file line by line as the tail does (see
 * fuzz_lines.h for what is checked), and the rules' classifier on its own.
 *
 * Input: byte 0 picks the mode (bits 0..1: start with pattern A, start with
 * pattern B, java, python), bits 2..3 the flush timeout and the caps, bit 4
 * cuts long lines into pieces, bit 5 reads the file as CRI lines first; the
 * rest is the file. */
#include "fuzz_lines.h"

#include "../../agent/multiline.h"

/* Start patterns as users write them: a timestamp, a level word. */
static const char *const start_patterns[2] = {
    "^\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}",
    "^(?:\\[\\w+\\]|[A-Z]+ )",
};

static struct lh_fmt_spec *specs[4][4][2];

static struct lh_fmt_spec *spec_for(unsigned mode, unsigned variant, unsigned cri)
{
    if (!specs[mode][variant][cri]) {
        static const enum lh_ml_mode modes[4] = { LH_ML_START, LH_ML_START, LH_ML_JAVA,
                                                  LH_ML_PYTHON };
        struct lh_fmt_config cfg = {
            .kind = cri ? LH_FMT_CRI : LH_FMT_PLAIN,
            .multiline = modes[mode],
            .start_pattern = mode < 2 ? start_patterns[mode] : NULL,
            .flush_ms = (variant & 1) ? 3 : 0,
            .max_bytes = (variant & 2) ? 200 : 0,
            .max_lines = (variant & 2) ? 4 : 0,
        };
        struct lh_err err = { 0 };
        FUZZ_CHECK(lh_fmt_spec_create(&cfg, &specs[mode][variant][cri], &err) == 0, "spec: %s",
                   err.msg);
    }
    return specs[mode][variant][cri];
}

static struct lh_ml_rules *rules[4];

/* The classifier alone: whatever the lines, it answers 0 or 1. */
static void classify(unsigned mode, const uint8_t *data, size_t size)
{
    static const enum lh_ml_mode modes[4] = { LH_ML_START, LH_ML_START, LH_ML_JAVA,
                                              LH_ML_PYTHON };
    if (!rules[mode]) {
        struct lh_err err = { 0 };
        FUZZ_CHECK(lh_ml_rules_create(modes[mode], mode < 2 ? start_patterns[mode] : NULL,
                                      &rules[mode], &err) == 0, "rules: %s", err.msg);
    }
    struct lh_ml_state st = { 0 };
    size_t pos = 0;
    int pending = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
        int c = lh_ml_continues(rules[mode], &st, (const char *)data + pos, len, pending);
        FUZZ_CHECK(c == 0 || c == 1, "classifier answered %d", c);
        pending = 1;
        pos += len + (nl != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    unsigned mode = ctl & 3;
    fuzz_lines_run(spec_for(mode, (ctl >> 2) & 3, (ctl >> 5) & 1), (ctl >> 4) & 1, data + 1,
                   size - 1);
    classify(mode, data + 1, size - 1);
    return 0;
}

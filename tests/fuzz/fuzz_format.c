/* fuzz_format.c - libFuzzer target: the agent's Docker json-file and CRI line
 * decoders (agent/format.c), with their joining of partial lines, fed a file
 * line by line as the tail does (see fuzz_lines.h for what is checked).
 *
 * Input: byte 0 picks the format (0 docker, 1 cri, 2 plain; bits 2..3 the
 * flush timeout and the join cap, bit 4 cuts long lines into pieces), the
 * rest is the file. */
#include "fuzz_lines.h"

/* [kind][variant]: compiled once, shared by all inputs (as by all files). */
static struct lh_fmt_spec *specs[3][4];

static struct lh_fmt_spec *spec_for(unsigned kind, unsigned variant)
{
    if (!specs[kind][variant]) {
        static const enum lh_fmt_kind kinds[3] = { LH_FMT_DOCKER, LH_FMT_CRI, LH_FMT_PLAIN };
        struct lh_fmt_config cfg = {
            .kind = kinds[kind],
            .multiline = LH_ML_OFF,
            .flush_ms = (variant & 1) ? 3 : 0,
            .max_bytes = (variant & 2) ? 100 : 0,
        };
        struct lh_err err = { 0 };
        FUZZ_CHECK(lh_fmt_spec_create(&cfg, &specs[kind][variant], &err) == 0, "spec: %s",
                   err.msg);
    }
    return specs[kind][variant];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    struct lh_fmt_spec *spec = spec_for((ctl & 3) % 3, (ctl >> 2) & 3);
    fuzz_lines_run(spec, (ctl >> 4) & 1, data + 1, size - 1);

    /* The time parser on its own, on the first line. */
    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    size_t n = nl ? (size_t)(nl - (data + 1)) : size - 1;
    int64_t ns = 0;
    if (n <= 64 && lh_fmt_parse_time((const char *)data + 1, n, &ns) != 0)
        FUZZ_CHECK(ns == 0, "a failed parse set the time");
    return 0;
}

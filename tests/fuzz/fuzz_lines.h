/* fuzz_lines.h - the driver shared by fuzz_format.c and fuzz_multiline.c:
 * feeds a file's bytes to an lh_fmt line by line, the way agent/tail.c does
 * (long lines cut into LH_REC_SPLIT pieces, a last line without '\n' marked
 * LH_REC_NO_NEWLINE, a clock that advances, flushes between lines, a forced
 * flush at the end), and checks format.h's promises about the records:
 * their byte ranges tile the file in order, every pushed line is counted in
 * exactly one record, what is not emitted is pending from the end of the
 * last record (the tail's checkpoint), nothing is pending after the forced
 * flush. */
#ifndef LH_FUZZ_LINES_H
#define LH_FUZZ_LINES_H

#include "fuzz.h"

#include "../../agent/format.h"

struct fuzz_lines {
    uint64_t next_start;   /* where the next record must start */
    uint64_t nlines;       /* lines counted by records */
};

static void fuzz_lines_emit(void *arg, const struct lh_record *rec)
{
    struct fuzz_lines *st = arg;
    FUZZ_CHECK(rec->start == st->next_start, "record starts at %llu, previous ended at %llu",
               (unsigned long long)rec->start, (unsigned long long)st->next_start);
    FUZZ_CHECK(rec->end > rec->start, "empty range [%llu, %llu)",
               (unsigned long long)rec->start, (unsigned long long)rec->end);
    FUZZ_CHECK(rec->nlines >= 1, "a record of no line");
    FUZZ_CHECK(rec->len <= rec->end - rec->start, "%zu message bytes from a %llu-byte range",
               rec->len, (unsigned long long)(rec->end - rec->start));
    fuzz_touch(rec->msg, rec->len);
    fuzz_touch_str(rec->stream);
    st->next_start = rec->end;
    st->nlines += rec->nlines;
}

/* split: cut lines longer than 48 bytes into pieces, as the tail cuts lines
 * longer than max_line_bytes. The clock advances 1 ms per line. */
static void fuzz_lines_run(struct lh_fmt_spec *spec, int split, const uint8_t *data,
                           size_t size)
{
    struct fuzz_lines st = { 0 };
    struct lh_fmt *f = lh_fmt_create(spec, fuzz_lines_emit, &st);
    FUZZ_CHECK(f != NULL, "out of memory");
    const size_t piece = 48;
    const char *s = (const char *)data;
    uint64_t pushed = 0;
    int64_t now = 1000;
    size_t pos = 0;
    while (pos < size) {
        const char *nl = memchr(s + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (s + pos)) : size - pos;
        size_t end = nl ? pos + len + 1 : size;
        unsigned eol = nl ? 0 : LH_REC_NO_NEWLINE;
        if (split && len > piece) {
            uint32_t part = 1;
            for (size_t off = 0; off < len; off += piece, part++) {
                size_t n = len - off < piece ? len - off : piece;
                int last = off + n == len;
                struct lh_line ln = { s + pos + off, n, pos + off, last ? end : pos + off + n,
                                      LH_REC_SPLIT | (last ? LH_REC_SPLIT_LAST | eol : 0),
                                      part };
                FUZZ_CHECK(lh_fmt_push(f, &ln, now) == 0, "push failed");
                pushed++;
            }
        } else {
            struct lh_line ln = { s + pos, len, pos, end, eol, 0 };
            FUZZ_CHECK(lh_fmt_push(f, &ln, now) == 0, "push failed");
            pushed++;
        }
        now += 1;
        lh_fmt_flush(f, now, 0);
        /* The checkpoint rule: what is not emitted yet is pending, from the
         * end of the last record on. */
        uint64_t ps = lh_fmt_pending_start(f);
        FUZZ_CHECK(ps == UINT64_MAX ? st.next_start == end : ps == st.next_start,
                   "pending from %llu, records end at %llu, pushed up to %zu",
                   (unsigned long long)ps, (unsigned long long)st.next_start, end);
        pos = end;
    }
    FUZZ_CHECK(lh_fmt_flush(f, now, 1) == 0, "still pending after a forced flush");
    FUZZ_CHECK(lh_fmt_pending_start(f) == UINT64_MAX, "pending start after a forced flush");
    FUZZ_CHECK(lh_fmt_due(f) == INT64_MAX, "a flush due with nothing pending");
    FUZZ_CHECK(st.next_start == size, "records end at %llu of %zu bytes",
               (unsigned long long)st.next_start, size);
    FUZZ_CHECK(st.nlines == pushed, "records count %llu lines, %llu were pushed",
               (unsigned long long)st.nlines, (unsigned long long)pushed);
    lh_fmt_destroy(f);
}

#endif

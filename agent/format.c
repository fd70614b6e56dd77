/* format.c - plain, Docker json-file and CRI decoders with partial and
 * multiline joining (see format.h). */
#include "format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lh/buf.h"

struct lh_fmt_spec {
    struct lh_fmt_config cfg;
    struct lh_ml_rules *ml;      /* NULL when multiline is off */
};

/* A record being joined (docker/CRI pieces, or multiline). */
struct join {
    struct lh_buf buf;
    int active;
    uint64_t start, end;
    uint32_t nlines;
    const char *stream;
    int64_t ts_ns;
    unsigned flags;
    int64_t since_ms;            /* last time something was added */
};

struct lh_fmt {
    struct lh_fmt_spec *spec;
    lh_fmt_emit_fn emit;
    void *arg;
    struct lh_buf scratch;       /* the unescaped docker "log" value */
    struct join part;            /* docker/CRI partial pieces */
    struct join ml;              /* multiline */
    struct lh_ml_state mls;
};

/* A decoded line on its way to the multiline stage. */
struct logical {
    const char *data;
    size_t len;
    uint64_t start, end;
    const char *stream;
    int64_t ts_ns;
    unsigned flags;
    uint32_t nlines;
    uint32_t part;
};

static const char STDOUT[] = "stdout";
static const char STDERR[] = "stderr";

/* ---- byte classification ------------------------------------------------ */

/* 1 when the 8 bytes of w are all printable ASCII or tab-free text: no
 * byte >= 0x80, < 0x20 or == 0x7f (tab falls back to the byte loop). */
static int plain_ascii8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t del = w ^ (0x7f * ones);
    return !(w & high) && !((w - 0x20 * ones) & high) && !((del - ones) & ~del & high);
}

unsigned lh_fmt_classify(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned fl = 0;
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {   /* the common case: plain ASCII, 8 bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (plain_ascii8(w)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                fl |= LH_REC_BINARY;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else { fl |= LH_REC_INVALID_UTF8; i++; continue; }
        size_t k = 1;
        for (; k < len && i + k < n && (s[i + k] & 0xC0) == 0x80; k++)
            cp = (cp << 6) | (s[i + k] & 0x3F);
        if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            fl |= LH_REC_INVALID_UTF8;
            i++;
            continue;
        }
        i += len;
    }
    return fl;
}

/* ---- time ----------------------------------------------------------------- */

static int digits(const char *s, size_t n, size_t at, size_t cnt, int *out)
{
    if (at + cnt > n)
        return -1;
    int v = 0;
    for (size_t i = 0; i < cnt; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int lh_fmt_parse_time(const char *s, size_t n, int64_t *ns)
{
    int Y, M, D, h, m, sec;
    if (digits(s, n, 0, 4, &Y) || n < 19 || s[4] != '-' || digits(s, n, 5, 2, &M) ||
        s[7] != '-' || digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &m) || s[16] != ':' ||
        digits(s, n, 17, 2, &sec))
        return LH_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return LH_EINVAL;
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        int nd = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (nd < 9) {
                frac = frac * 10 + (s[i] - '0');
                nd++;
            }
            i++;
        }
        if (nd == 0)
            return LH_EINVAL;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            digits(s, n, i + 4, 2, &om))
            return LH_EINVAL;
        off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return LH_EINVAL;
    }
    if (i != n)
        return LH_EINVAL;
    int64_t secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
    /* int64 nanoseconds reach from 1677 to 2262: other years do not fit. */
    if (secs <= INT64_MIN / 1000000000 || secs >= INT64_MAX / 1000000000)
        return LH_EINVAL;
    *ns = secs * 1000000000 + frac;
    return 0;
}

/* ---- docker json-file ------------------------------------------------------ */

static void skip_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' || s[*i] == '\n'))
        (*i)++;
}

/* Index just past the closing quote of the string opening at s[*i] == '"'. */
static int skip_string(const char *s, size_t n, size_t *i)
{
    size_t k = *i + 1;
    while (k < n) {
        if (s[k] == '\\')
            k += 2;
        else if (s[k] == '"') {
            *i = k + 1;
            return 0;
        } else
            k++;
    }
    return -1;
}

static int skip_value(const char *s, size_t n, size_t *i)
{
    if (*i >= n)
        return -1;
    if (s[*i] == '"')
        return skip_string(s, n, i);
    if (s[*i] == '{' || s[*i] == '[') {
        int depth = 0;
        while (*i < n) {
            char c = s[*i];
            if (c == '"') {
                if (skip_string(s, n, i) < 0)
                    return -1;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']')
                depth--;
            (*i)++;
            if (depth == 0)
                return 0;
        }
        return -1;
    }
    size_t st = *i;
    while (*i < n && s[*i] != ',' && s[*i] != '}' && s[*i] != ']' && s[*i] != ' ')
        (*i)++;
    return *i > st ? 0 : -1;
}

static int hex4(const char *s, size_t n, size_t at, uint32_t *out)
{
    if (at + 4 > n)
        return -1;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        char c = s[at + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int put_utf8(struct lh_buf *b, uint32_t cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) { u[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
    }
    return lh_buf_append(b, u, k);
}

/* Unescapes the JSON string at s[*i] == '"' into b. -1 on malformed input,
 * LH_ENOMEM. Lone surrogates become U+FFFD. */
static int unescape_string(const char *s, size_t n, size_t *i, struct lh_buf *b)
{
    size_t k = *i + 1;
    while (k < n) {
        size_t run = k;
        while (k < n && s[k] != '"' && s[k] != '\\')
            k++;
        if (k > run && lh_buf_append(b, s + run, k - run) < 0)
            return LH_ENOMEM;
        if (k >= n)
            return -1;
        if (s[k] == '"') {
            *i = k + 1;
            return 0;
        }
        if (k + 1 >= n)
            return -1;
        char e = s[k + 1], c;
        k += 2;
        switch (e) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(s, n, k, &cp) < 0)
                return -1;
            k += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && k + 6 <= n && s[k] == '\\' && s[k + 1] == 'u' &&
                hex4(s, n, k + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            if (put_utf8(b, cp) < 0)
                return LH_ENOMEM;
            continue;
        }
        default:
            return -1;
        }
        if (lh_buf_putc(b, c) < 0)
            return LH_ENOMEM;
    }
    return -1;
}

static int key_is(const char *s, size_t ks, size_t ke, const char *name)
{
    size_t len = strlen(name);
    return ke - ks == len + 2 && memcmp(s + ks + 1, name, len) == 0;
}

/* Parses a docker json-file line: the "log" value goes into f->scratch.
 * -1 when it is not one, LH_ENOMEM. */
static int docker_parse(struct lh_fmt *f, const char *s, size_t n, const char **stream,
                        int64_t *ts)
{
    size_t i = 0;
    int have_log = 0;
    lh_buf_reset(&f->scratch);
    *stream = NULL;
    *ts = 0;
    skip_ws(s, n, &i);
    if (i >= n || s[i] != '{')
        return -1;
    i++;
    for (;;) {
        skip_ws(s, n, &i);
        if (i < n && s[i] == '}') {
            i++;
            break;
        }
        if (i >= n || s[i] != '"')
            return -1;
        size_t ks = i;
        if (skip_string(s, n, &i) < 0)
            return -1;
        size_t ke = i;
        skip_ws(s, n, &i);
        if (i >= n || s[i] != ':')
            return -1;
        i++;
        skip_ws(s, n, &i);
        if (i >= n)
            return -1;
        if (key_is(s, ks, ke, "log") && s[i] == '"') {
            int rc = unescape_string(s, n, &i, &f->scratch);
            if (rc < 0)
                return rc;
            have_log = 1;
        } else if (key_is(s, ks, ke, "stream") && s[i] == '"') {
            size_t vs = i;
            if (skip_string(s, n, &i) < 0)
                return -1;
            if (key_is(s, vs, i, "stdout"))
                *stream = STDOUT;
            else if (key_is(s, vs, i, "stderr"))
                *stream = STDERR;
        } else if (key_is(s, ks, ke, "time") && s[i] == '"') {
            size_t vs = i;
            if (skip_string(s, n, &i) < 0)
                return -1;
            if (lh_fmt_parse_time(s + vs + 1, i - vs - 2, ts) < 0)
                *ts = 0;
        } else if (skip_value(s, n, &i) < 0) {
            return -1;
        }
        skip_ws(s, n, &i);
        if (i < n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < n && s[i] == '}') {
            i++;
            break;
        }
        return -1;
    }
    skip_ws(s, n, &i);
    return have_log && i == n ? 0 : -1;
}

/* ---- CRI ------------------------------------------------------------------ */

/* "<time> <stream> <tag> <msg>": msg points into s. -1 when malformed. */
static int cri_parse(const char *s, size_t n, int64_t *ts, const char **stream, int *final,
                     const char **msg, size_t *mlen)
{
    const char *sp1 = memchr(s, ' ', n);
    if (!sp1 || lh_fmt_parse_time(s, (size_t)(sp1 - s), ts) < 0)
        return -1;
    const char *st = sp1 + 1;
    size_t rest = n - (size_t)(st - s);
    if (rest >= 7 && memcmp(st, "stdout ", 7) == 0)
        *stream = STDOUT;
    else if (rest >= 7 && memcmp(st, "stderr ", 7) == 0)
        *stream = STDERR;
    else
        return -1;
    const char *tag = st + 7;
    rest = n - (size_t)(tag - s);
    if (rest < 1 || (tag[0] != 'P' && tag[0] != 'F'))
        return -1;
    /* The tag may carry more, colon-separated ("F:x"); its end is a space or EOL. */
    const char *te = memchr(tag, ' ', rest);
    if (te && te > tag + 1 && tag[1] != ':')
        return -1;
    if (!te && rest > 1 && tag[1] != ':')
        return -1;
    *final = tag[0] == 'F';
    if (te) {
        *msg = te + 1;
        *mlen = n - (size_t)(te + 1 - s);
    } else {
        *msg = s + n;
        *mlen = 0;
    }
    return 0;
}

/* ---- emission and joining ----------------------------------------------- */

static void emit_rec(struct lh_fmt *f, const char *msg, size_t len, uint64_t start, uint64_t end,
                     const char *stream, int64_t ts, unsigned flags, uint32_t nlines,
                     uint32_t part)
{
    struct lh_record r;
    memset(&r, 0, sizeof(r));
    r.msg = msg;
    r.len = len;
    r.start = start;
    r.end = end;
    r.stream = stream;
    r.ts_ns = ts;
    r.flags = flags | lh_fmt_classify(msg, len);
    r.nlines = nlines;
    r.part = part;
    f->emit(f->arg, &r);
}

static void join_emit(struct lh_fmt *f, struct join *j, unsigned extra)
{
    if (!j->active)
        return;
    emit_rec(f, j->buf.data ? j->buf.data : "", j->buf.len, j->start, j->end, j->stream,
             j->ts_ns, j->flags | extra, j->nlines, 0);
    j->active = 0;
    j->flags = 0;
    j->nlines = 0;
    lh_buf_reset(&j->buf);
}

/* Starts j with the logical line l (copied). */
static int join_start(struct join *j, const struct logical *l, int64_t now_ms)
{
    lh_buf_reset(&j->buf);
    if (lh_buf_append(&j->buf, l->data, l->len) < 0)
        return LH_ENOMEM;
    j->active = 1;
    j->start = l->start;
    j->end = l->end;
    j->stream = l->stream;
    j->ts_ns = l->ts_ns;
    j->flags = l->flags;
    j->nlines = l->nlines;
    j->since_ms = now_ms;
    return 0;
}

static size_t max_bytes(const struct lh_fmt *f)
{
    return f->spec->cfg.max_bytes ? f->spec->cfg.max_bytes : 256 * 1024;
}

/* The multiline stage: l goes into the pending record or starts one. */
static int stage_multiline(struct lh_fmt *f, const struct logical *l, int64_t now_ms)
{
    struct join *ml = &f->ml;
    if (!f->spec->ml || (l->flags & LH_REC_SPLIT)) {
        /* Pieces of an over-long line are records of their own. */
        join_emit(f, ml, 0);
        emit_rec(f, l->data, l->len, l->start, l->end, l->stream, l->ts_ns, l->flags,
                 l->nlines, l->part);
        return 0;
    }
    if (ml->active && ml->stream != l->stream)
        join_emit(f, ml, 0);
    int cont = lh_ml_continues(f->spec->ml, &f->mls, l->data, l->len, ml->active);
    if (!cont) {
        join_emit(f, ml, 0);
        return join_start(ml, l, now_ms);
    }
    uint32_t maxl = f->spec->cfg.max_lines ? f->spec->cfg.max_lines : 1000;
    if (ml->buf.len + 1 + l->len > max_bytes(f) || ml->nlines + l->nlines > maxl) {
        join_emit(f, ml, LH_REC_INCOMPLETE);
        int rc = join_start(ml, l, now_ms);
        ml->flags |= LH_REC_INCOMPLETE;
        return rc;
    }
    if (lh_buf_putc(&ml->buf, '\n') < 0 || lh_buf_append(&ml->buf, l->data, l->len) < 0)
        return LH_ENOMEM;
    ml->end = l->end;
    ml->nlines += l->nlines;
    ml->flags |= LH_REC_MULTILINE | (l->flags & ~(LH_REC_SPLIT | LH_REC_SPLIT_LAST));
    ml->since_ms = now_ms;
    return 0;
}

/* Emits the pending partial join into the multiline stage. */
static int part_finish(struct lh_fmt *f, unsigned extra, int64_t now_ms)
{
    struct join *p = &f->part;
    if (!p->active)
        return 0;
    struct logical l = { p->buf.data ? p->buf.data : "", p->buf.len, p->start, p->end,
                         p->stream, p->ts_ns, p->flags | extra, p->nlines, 0 };
    p->active = 0;
    int rc = stage_multiline(f, &l, now_ms);
    p->flags = 0;
    p->nlines = 0;
    lh_buf_reset(&p->buf);
    return rc;
}

/* A docker/CRI piece: final or partial. */
static int piece(struct lh_fmt *f, const struct lh_line *ln, const char *msg, size_t len,
                 const char *stream, int64_t ts, int final, int64_t now_ms)
{
    struct join *p = &f->part;
    int rc = 0;
    if (p->active && p->stream != stream)
        rc = part_finish(f, LH_REC_INCOMPLETE, now_ms);
    if (rc < 0)
        return rc;
    if (!p->active && final) {
        struct logical l = { msg, len, ln->start, ln->end, stream, ts, ln->flags, 1, 0 };
        return stage_multiline(f, &l, now_ms);
    }
    if (p->active && p->buf.len + len > max_bytes(f)) {
        if ((rc = part_finish(f, LH_REC_INCOMPLETE, now_ms)) < 0)
            return rc;
    }
    if (!p->active) {
        struct logical l = { msg, len, ln->start, ln->end, stream, ts, ln->flags, 1, 0 };
        if ((rc = join_start(p, &l, now_ms)) < 0)
            return rc;
    } else {
        if (lh_buf_append(&p->buf, msg, len) < 0)
            return LH_ENOMEM;
        p->end = ln->end;
        p->nlines++;
        p->flags |= LH_REC_PARTIAL | ln->flags;
        p->since_ms = now_ms;
    }
    if (final)
        return part_finish(f, 0, now_ms);
    return 0;
}

int lh_fmt_push(struct lh_fmt *f, const struct lh_line *ln, int64_t now_ms)
{
    enum lh_fmt_kind kind = f->spec->cfg.kind;
    const char *data = ln->data;
    size_t len = ln->len;
    int rc;

    if (kind == LH_FMT_PLAIN || (ln->flags & (LH_REC_SPLIT | LH_REC_TRUNCATED))) {
        unsigned fl = ln->flags;
        if (kind != LH_FMT_PLAIN) {
            /* A cut docker/CRI line cannot be parsed: ship the raw piece. */
            if ((rc = part_finish(f, LH_REC_INCOMPLETE, now_ms)) < 0)
                return rc;
            fl |= LH_REC_PARSE_ERROR;
        } else if (len > 0 && data[len - 1] == '\r' && !(fl & LH_REC_SPLIT)) {
            len--;
        }
        struct logical l = { data, len, ln->start, ln->end, NULL, 0, fl, 1, ln->part };
        return stage_multiline(f, &l, now_ms);
    }
    const char *stream = NULL, *msg = NULL;
    size_t mlen = 0;
    int64_t ts = 0;
    int final = 1;
    if (kind == LH_FMT_DOCKER) {
        rc = docker_parse(f, data, len, &stream, &ts);
        if (rc == LH_ENOMEM)
            return rc;
        if (rc == 0) {
            msg = f->scratch.data ? f->scratch.data : "";
            mlen = f->scratch.len;
            final = mlen > 0 && msg[mlen - 1] == '\n';
            if (final)
                mlen--;
        }
    } else {
        rc = cri_parse(data, len, &ts, &stream, &final, &msg, &mlen);
    }
    if (rc < 0) {
        if ((rc = part_finish(f, LH_REC_INCOMPLETE, now_ms)) < 0)
            return rc;
        struct logical l = { data, len, ln->start, ln->end, NULL, 0,
                             ln->flags | LH_REC_PARSE_ERROR, 1, 0 };
        return stage_multiline(f, &l, now_ms);
    }
    return piece(f, ln, msg, mlen, stream, ts, final, now_ms);
}

static int64_t flush_ms(const struct lh_fmt *f)
{
    return f->spec->cfg.flush_ms > 0 ? f->spec->cfg.flush_ms : 1000;
}

int lh_fmt_flush(struct lh_fmt *f, int64_t now_ms, int force)
{
    int64_t wait = flush_ms(f);
    if (f->part.active && (force || now_ms - f->part.since_ms >= wait))
        part_finish(f, LH_REC_INCOMPLETE, now_ms);
    if (f->ml.active && (force || now_ms - f->ml.since_ms >= wait))
        join_emit(f, &f->ml, 0);
    if (force)
        memset(&f->mls, 0, sizeof(f->mls));
    return f->part.active || f->ml.active;
}

int64_t lh_fmt_due(const struct lh_fmt *f)
{
    int64_t due = INT64_MAX, wait = flush_ms(f);
    if (f->part.active && f->part.since_ms + wait < due)
        due = f->part.since_ms + wait;
    if (f->ml.active && f->ml.since_ms + wait < due)
        due = f->ml.since_ms + wait;
    return due;
}

uint64_t lh_fmt_pending_start(const struct lh_fmt *f)
{
    uint64_t s = UINT64_MAX;
    if (f->ml.active)
        s = f->ml.start;
    if (f->part.active && f->part.start < s)
        s = f->part.start;
    return s;
}

/* ---- lifecycle ------------------------------------------------------------ */

int lh_fmt_spec_create(const struct lh_fmt_config *cfg, struct lh_fmt_spec **out,
                       struct lh_err *err)
{
    struct lh_fmt_spec *s = calloc(1, sizeof(*s));
    if (!s)
        return lh_err_set(err, LH_ENOMEM, "format: out of memory");
    s->cfg = *cfg;
    s->cfg.start_pattern = NULL;     /* not kept: compiled below */
    if (cfg->kind != LH_FMT_PLAIN && cfg->kind != LH_FMT_DOCKER && cfg->kind != LH_FMT_CRI) {
        free(s);
        return lh_err_set(err, LH_EINVAL, "format: unknown kind %d", (int)cfg->kind);
    }
    if (cfg->multiline != LH_ML_OFF) {
        int rc = lh_ml_rules_create(cfg->multiline, cfg->start_pattern, &s->ml, err);
        if (rc < 0) {
            free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void lh_fmt_spec_destroy(struct lh_fmt_spec *s)
{
    if (!s)
        return;
    lh_ml_rules_destroy(s->ml);
    free(s);
}

struct lh_fmt *lh_fmt_create(struct lh_fmt_spec *spec, lh_fmt_emit_fn emit, void *arg)
{
    struct lh_fmt *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->spec = spec;
    f->emit = emit;
    f->arg = arg;
    return f;
}

void lh_fmt_destroy(struct lh_fmt *f)
{
    if (!f)
        return;
    lh_buf_free(&f->scratch);
    lh_buf_free(&f->part.buf);
    lh_buf_free(&f->ml.buf);
    free(f);
}

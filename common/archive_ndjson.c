/* archive_ndjson.c - NDJSON+zstd archive objects (see lh/archive_format.h).
 *
 * Writer: each event becomes one compact JSON line, streamed through one
 * zstd frame (the uncompressed text is never held whole). Reader: the frame
 * is decompressed, each line parsed with jansson (a cold path: queryd reads
 * old objects), strings copied into the caller's arena. */
#include "lh/archive_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zstd.h>

#include "archive_impl.h"

/* ---- timestamps: "2026-05-23T08:06:14.123456789Z" ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void format_ts(int64_t ns, char *out, size_t size)
{
    int64_t secs = floor_div(ns, 1000000000);
    int64_t frac = ns - secs * 1000000000;
    int64_t days = floor_div(secs, 86400), sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%09lldZ", (long long)y, m, d,
             (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60),
             (long long)frac);
}

static int digits(const char *s, int n, int64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* Parses the form format_ts writes (0..9 fraction digits). */
static int parse_ts(const char *s, size_t n, int64_t *out)
{
    int64_t y, mo, d, h, mi, se, frac = 0;
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[n - 1] != 'Z' || digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    size_t fl = 0;
    if (n > 20) {
        if (s[19] != '.' || n - 21 > 9 || n - 21 == 0)
            return -1;
        fl = n - 21;
        if (digits(s + 20, (int)fl, &frac))
            return -1;
        for (size_t i = fl; i < 9; i++)
            frac *= 10;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + se) * 1000000000) + frac;
    return 0;
}

/* ---- writer ---- */

struct jfield {
    const char *name;
    size_t off;
};

#define EVF(f) offsetof(struct lh_event, f)

static const struct jfield str_fields[] = {
    { "id", EVF(id) },
    { "tenant", EVF(tenant) },
    { "service", EVF(service) },
    { "host", EVF(host) },
    { "trace_id", EVF(trace_id) },
    { "span_id", EVF(span_id) },
    { "user_id", EVF(user_id) },
    { "message", EVF(message) },
    { "raw", EVF(raw) },
    { "stream", EVF(stream) },
    { "container_id", EVF(container_id) },
    { "k8s_namespace", EVF(k8s_namespace) },
    { "k8s_pod", EVF(k8s_pod) },
    { "k8s_container", EVF(k8s_container) },
    { "region", EVF(region) },
    { "file", EVF(file) },
};
#define NSTR (sizeof(str_fields) / sizeof(str_fields[0]))

static const char *field_of(const struct lh_event *ev, size_t i)
{
    return *(const char *const *)((const char *)ev + str_fields[i].off);
}

int lh_ndjson_encode_event(const struct lh_event *ev, struct lh_buf *out)
{
    char ts[48];
    format_ts(ev->ts_ns, ts, sizeof(ts));
    if (lh_buf_printf(out, "{\"timestamp\":\"%s\",\"level\":\"%s\"", ts,
                      lh_level_name(ev->level)) < 0)
        return LH_ENOMEM;
    for (size_t i = 0; i < NSTR; i++) {
        const char *s = field_of(ev, i);
        if (!s)
            continue;
        if (lh_buf_printf(out, ",\"%s\":", str_fields[i].name) < 0 ||
            lh_buf_json_str(out, s, strlen(s)) < 0)
            return LH_ENOMEM;
    }
    if (ev->nmeta && ev->meta) {
        if (lh_buf_puts(out, ",\"custom_metadata\":{") < 0)
            return LH_ENOMEM;
        for (size_t j = 0; j < ev->nmeta; j++) {
            const char *k = ev->meta[j].key ? ev->meta[j].key : "";
            const char *v = ev->meta[j].value;
            if ((j && lh_buf_putc(out, ',') < 0) || lh_buf_json_str(out, k, strlen(k)) < 0 ||
                lh_buf_putc(out, ':') < 0 ||
                (v ? lh_buf_json_str(out, v, strlen(v)) : lh_buf_puts(out, "null")) < 0)
                return LH_ENOMEM;
        }
        if (lh_buf_putc(out, '}') < 0)
            return LH_ENOMEM;
    }
    return lh_buf_putc(out, '}');
}

/* Feeds in[0..len) to the compressor, appending output to out. */
static int z_feed(ZSTD_CCtx *z, const void *in, size_t len, ZSTD_EndDirective mode,
                  struct lh_buf *out, struct lh_err *err)
{
    ZSTD_inBuffer ib = { in, len, 0 };
    for (;;) {
        size_t room = ZSTD_CStreamOutSize();
        if (lh_buf_reserve(out, room) < 0)
            return lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
        ZSTD_outBuffer ob = { out->data + out->len, room, 0 };
        size_t left = ZSTD_compressStream2(z, &ob, &ib, mode);
        if (ZSTD_isError(left))
            return lh_err_set(err, LH_ERR, "ndjson: zstd: %s", ZSTD_getErrorName(left));
        out->len += ob.pos;
        out->data[out->len] = '\0';
        if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size)
            return 0;
    }
}

int lh_ndjson_write(const struct lh_event *evs, size_t n, int level, struct lh_buf *out,
                    struct lh_err *err)
{
    struct lh_buf line = LH_BUF_INIT;
    size_t orig = out->len;
    int rc = 0;
    ZSTD_CCtx *z = ZSTD_createCCtx();
    if (!z)
        return lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
    if (level)
        ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, level);
    for (size_t i = 0; i < n && rc == 0; i++) {
        lh_buf_reset(&line);
        if (lh_ndjson_encode_event(&evs[i], &line) < 0 || lh_buf_putc(&line, '\n') < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
            break;
        }
        /* batch lines a little: fewer calls into zstd */
        rc = z_feed(z, line.data, line.len, ZSTD_e_continue, out, err);
    }
    if (rc == 0)
        rc = z_feed(z, NULL, 0, ZSTD_e_end, out, err);
    if (rc < 0) {
        out->len = orig;
        if (out->data)
            out->data[orig] = '\0';
    }
    lh_buf_free(&line);
    ZSTD_freeCCtx(z);
    return rc;
}

/* ---- reader ---- */

static int decompress(const void *data, size_t len, struct lh_buf *text, struct lh_err *err)
{
    ZSTD_inBuffer ib = { data, len, 0 };
    int rc = 0;
    if (len == 0)
        return lh_err_set(err, LH_ECORRUPT, "ndjson: empty object");
    ZSTD_DCtx *z = ZSTD_createDCtx();
    if (!z)
        return lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
    for (;;) {
        size_t room = ZSTD_DStreamOutSize();
        if (lh_buf_reserve(text, room) < 0) {
            rc = lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
            break;
        }
        ZSTD_outBuffer ob = { text->data + text->len, room, 0 };
        size_t hint = ZSTD_decompressStream(z, &ob, &ib);
        if (ZSTD_isError(hint)) {
            rc = lh_err_set(err, LH_ECORRUPT, "ndjson: zstd: %s", ZSTD_getErrorName(hint));
            break;
        }
        text->len += ob.pos;
        text->data[text->len] = '\0';
        if (ib.pos == ib.size && ob.pos < room) {
            /* all input used and the output not full: done, or cut short */
            if (hint != 0)
                rc = lh_err_set(err, LH_ECORRUPT, "ndjson: truncated zstd frame");
            break;
        }
    }
    ZSTD_freeDCtx(z);
    return rc;
}

static const char *dup_str(struct lh_arena *a, json_t *v)
{
    return lh_arena_strndup(a, json_string_value(v), json_string_length(v));
}

static int parse_line(const char *s, size_t n, size_t lineno, struct lh_arena *arena,
                      struct lh_event *ev, struct lh_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(s, n, 0, &je);
    const char *key;
    json_t *v;
    int rc = 0;
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return lh_err_set(err, LH_ECORRUPT, "ndjson: line %zu: %s", lineno,
                          o ? "not an object" : je.text);
    }
    memset(ev, 0, sizeof(*ev));
    json_object_foreach(o, key, v) {
        if (strcmp(key, "timestamp") == 0) {
            if (!json_is_string(v) ||
                parse_ts(json_string_value(v), json_string_length(v), &ev->ts_ns) < 0) {
                rc = lh_err_set(err, LH_ECORRUPT, "ndjson: line %zu: bad timestamp", lineno);
                break;
            }
        } else if (strcmp(key, "level") == 0) {
            if (json_is_string(v))
                ev->level = lh_level_parse(json_string_value(v), json_string_length(v));
        } else if (strcmp(key, "custom_metadata") == 0 && json_is_object(v) &&
                   json_object_size(v)) {
            size_t m = json_object_size(v), j = 0;
            const char *mk;
            json_t *mv;
            ev->meta = lh_arena_alloc(arena, m * sizeof(*ev->meta));
            if (!ev->meta)
                goto nomem;
            json_object_foreach(v, mk, mv) {
                ev->meta[j].key = lh_arena_strdup(arena, mk);
                ev->meta[j].value = json_is_string(mv) ? dup_str(arena, mv) : NULL;
                if (!ev->meta[j].key || (json_is_string(mv) && !ev->meta[j].value))
                    goto nomem;
                j++;
            }
            ev->nmeta = j;
        } else if (json_is_string(v)) {
            for (size_t i = 0; i < NSTR; i++) {
                if (strcmp(key, str_fields[i].name) != 0)
                    continue;
                const char *c = dup_str(arena, v);
                if (!c)
                    goto nomem;
                *(const char **)((char *)ev + str_fields[i].off) = c;
                break;
            }
        }
    }
    json_decref(o);
    return rc;
nomem:
    json_decref(o);
    return lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
}

int lh_ndjson_read(const void *data, size_t len, struct lh_arena *arena, struct lh_event **evs,
                   size_t *n, struct lh_err *err)
{
    struct lh_buf text = LH_BUF_INIT;
    int rc = decompress(data, len, &text, err);
    if (rc < 0) {
        lh_buf_free(&text);
        return rc;
    }
    size_t lines = 0;
    for (size_t i = 0; i < text.len; i++)
        lines += text.data[i] == '\n';
    lines++;
    struct lh_event *out = lh_arena_alloc(arena, lines * sizeof(*out));
    size_t got = 0, lineno = 0;
    if (!out) {
        lh_buf_free(&text);
        return lh_err_set(err, LH_ENOMEM, "ndjson: out of memory");
    }
    const char *p = text.data ? text.data : "", *end = p + text.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lineno++;
        const char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < e && (rc = parse_line(p, (size_t)(e - p), lineno, arena, &out[got], err)) < 0)
            break;
        if (q < e)
            got++;
        p = nl ? nl + 1 : end;
    }
    lh_buf_free(&text);
    if (rc < 0)
        return rc;
    *evs = out;
    *n = got;
    return 0;
}

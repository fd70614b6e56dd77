/* thrift.c - Thrift Compact Protocol writer and reader (see lh/thrift.h).
 *
 * Integers are ULEB128 varints of their zigzag form; a field header is one
 * byte (id delta << 4 | type) when the id grows by 1..15 from the previous
 * field of the same struct, else the type byte and the id as a zigzag
 * varint; binary is a varint length and the bytes; a list header is one
 * byte (count << 4 | elem type) for counts below 15, else 0xF0 | type and a
 * varint count; a struct ends with a 0 byte. */
#include "lh/thrift.h"

#include <string.h>

#include "lh/err.h"

/* ---- writer ---- */

void lh_thrift_writer_init(struct lh_thrift_writer *w, struct lh_buf *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

int lh_thrift_writer_error(const struct lh_thrift_writer *w) { return w->err; }

static void put_byte(struct lh_thrift_writer *w, uint8_t b)
{
    if (!w->err && lh_buf_putc(w->out, (char)b) < 0)
        w->err = LH_ENOMEM;
}

static void put_varint(struct lh_thrift_writer *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        tmp[n++] = b | (v ? 0x80 : 0);
    } while (v);
    if (!w->err && lh_buf_append(w->out, tmp, n) < 0)
        w->err = LH_ENOMEM;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static void field_header(struct lh_thrift_writer *w, int16_t id, uint8_t type)
{
    if (w->err)
        return;
    if (w->depth <= 0) {
        w->err = LH_EINVAL;   /* a field outside any struct */
        return;
    }
    int16_t *last = &w->last[w->depth - 1];
    int delta = id - *last;
    if (delta > 0 && delta <= 15) {
        put_byte(w, (uint8_t)(delta << 4 | type));
    } else {
        put_byte(w, type);
        put_varint(w, zigzag(id));
    }
    *last = id;
}

void lh_thrift_write_struct_begin(struct lh_thrift_writer *w)
{
    if (w->err)
        return;
    if (w->depth >= LH_THRIFT_MAX_DEPTH) {
        w->err = LH_EINVAL;
        return;
    }
    w->last[w->depth++] = 0;
}

void lh_thrift_write_struct_end(struct lh_thrift_writer *w)
{
    if (w->err)
        return;
    if (w->depth <= 0) {
        w->err = LH_EINVAL;
        return;
    }
    put_byte(w, LH_THRIFT_STOP);
    w->depth--;
}

void lh_thrift_write_field_bool(struct lh_thrift_writer *w, int16_t id, int v)
{
    field_header(w, id, v ? LH_THRIFT_TRUE : LH_THRIFT_FALSE);
}

void lh_thrift_write_field_i16(struct lh_thrift_writer *w, int16_t id, int16_t v)
{
    field_header(w, id, LH_THRIFT_I16);
    put_varint(w, zigzag(v));
}

void lh_thrift_write_field_i32(struct lh_thrift_writer *w, int16_t id, int32_t v)
{
    field_header(w, id, LH_THRIFT_I32);
    put_varint(w, zigzag(v));
}

void lh_thrift_write_field_i64(struct lh_thrift_writer *w, int16_t id, int64_t v)
{
    field_header(w, id, LH_THRIFT_I64);
    put_varint(w, zigzag(v));
}

void lh_thrift_write_field_double(struct lh_thrift_writer *w, int16_t id, double v)
{
    uint64_t bits;
    uint8_t le[8];
    memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(bits >> (8 * i));
    field_header(w, id, LH_THRIFT_DOUBLE);
    if (!w->err && lh_buf_append(w->out, le, 8) < 0)
        w->err = LH_ENOMEM;
}

void lh_thrift_write_binary(struct lh_thrift_writer *w, const void *p, size_t n)
{
    put_varint(w, n);
    if (!w->err && lh_buf_append(w->out, p, n) < 0)
        w->err = LH_ENOMEM;
}

void lh_thrift_write_string(struct lh_thrift_writer *w, const char *s)
{
    lh_thrift_write_binary(w, s, strlen(s));
}

void lh_thrift_write_field_binary(struct lh_thrift_writer *w, int16_t id, const void *p,
                                  size_t n)
{
    field_header(w, id, LH_THRIFT_BINARY);
    lh_thrift_write_binary(w, p, n);
}

void lh_thrift_write_field_string(struct lh_thrift_writer *w, int16_t id, const char *s)
{
    lh_thrift_write_field_binary(w, id, s, strlen(s));
}

void lh_thrift_write_field_struct(struct lh_thrift_writer *w, int16_t id)
{
    field_header(w, id, LH_THRIFT_STRUCT);
    lh_thrift_write_struct_begin(w);
}

void lh_thrift_write_field_list(struct lh_thrift_writer *w, int16_t id,
                                enum lh_thrift_type elem, uint32_t n)
{
    field_header(w, id, LH_THRIFT_LIST);
    if (n < 15) {
        put_byte(w, (uint8_t)(n << 4 | elem));
    } else {
        put_byte(w, (uint8_t)(0xf0 | elem));
        put_varint(w, n);
    }
}

void lh_thrift_write_i32(struct lh_thrift_writer *w, int32_t v) { put_varint(w, zigzag(v)); }

void lh_thrift_write_i64(struct lh_thrift_writer *w, int64_t v) { put_varint(w, zigzag(v)); }

/* ---- reader ---- */

void lh_thrift_reader_init(struct lh_thrift_reader *r, const void *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->p = data;
    r->end = r->p + len;
}

int lh_thrift_reader_error(const struct lh_thrift_reader *r) { return r->err; }

size_t lh_thrift_reader_pos(const struct lh_thrift_reader *r, const void *data)
{
    return (size_t)(r->p - (const uint8_t *)data);
}

static void corrupt(struct lh_thrift_reader *r)
{
    if (!r->err)
        r->err = LH_ECORRUPT;
    r->p = r->end;
}

static uint8_t get_byte(struct lh_thrift_reader *r)
{
    if (r->err || r->p >= r->end) {
        corrupt(r);
        return 0;
    }
    return *r->p++;
}

static uint64_t get_varint(struct lh_thrift_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t b = get_byte(r);
        if (r->err)
            return 0;
        if (shift == 63 && b > 1) {
            corrupt(r);
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    corrupt(r);
    return 0;
}

static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

void lh_thrift_read_struct_begin(struct lh_thrift_reader *r)
{
    if (r->err)
        return;
    if (r->depth >= LH_THRIFT_MAX_DEPTH) {
        corrupt(r);
        return;
    }
    r->last[r->depth++] = 0;
}

int lh_thrift_read_field(struct lh_thrift_reader *r, int16_t *id, int *type)
{
    if (r->err)
        return 0;
    if (r->depth <= 0) {
        corrupt(r);
        return 0;
    }
    uint8_t b = get_byte(r);
    if (r->err)
        return 0;
    if (b == LH_THRIFT_STOP) {
        r->depth--;
        return 0;
    }
    int t = b & 0x0f, delta = b >> 4;
    if (t > LH_THRIFT_STRUCT) {
        corrupt(r);
        return 0;
    }
    int64_t fid;
    if (delta) {
        fid = r->last[r->depth - 1] + delta;
    } else {
        fid = unzigzag(get_varint(r));
        if (r->err)
            return 0;
    }
    if (fid < INT16_MIN || fid > INT16_MAX) {
        corrupt(r);
        return 0;
    }
    r->last[r->depth - 1] = (int16_t)fid;
    *id = (int16_t)fid;
    *type = t;
    return 1;
}

int32_t lh_thrift_read_i32(struct lh_thrift_reader *r)
{
    int64_t v = unzigzag(get_varint(r));
    if (v < INT32_MIN || v > INT32_MAX) {
        corrupt(r);
        return 0;
    }
    return (int32_t)v;
}

int64_t lh_thrift_read_i64(struct lh_thrift_reader *r) { return unzigzag(get_varint(r)); }

double lh_thrift_read_double(struct lh_thrift_reader *r)
{
    uint64_t bits = 0;
    double d;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)get_byte(r) << (8 * i);
    memcpy(&d, &bits, 8);
    return r->err ? 0 : d;
}

const uint8_t *lh_thrift_read_binary(struct lh_thrift_reader *r, size_t *n)
{
    uint64_t len = get_varint(r);
    *n = 0;
    if (r->err)
        return NULL;
    if (len > (uint64_t)(r->end - r->p)) {
        corrupt(r);
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += len;
    *n = (size_t)len;
    return p;
}

uint32_t lh_thrift_read_list(struct lh_thrift_reader *r, int *elem)
{
    uint8_t b = get_byte(r);
    uint64_t n = b >> 4;
    *elem = b & 0x0f;
    if (n == 15)
        n = get_varint(r);
    if (r->err)
        return 0;
    /* every element takes at least one byte, except empty structs... which
     * also take one (their stop byte) */
    if (n > (uint64_t)(r->end - r->p) || *elem == LH_THRIFT_STOP || *elem > LH_THRIFT_STRUCT) {
        corrupt(r);
        return 0;
    }
    return (uint32_t)n;
}

int lh_thrift_read_bool_elem(struct lh_thrift_reader *r) { return get_byte(r) == LH_THRIFT_TRUE; }

static void skip_value(struct lh_thrift_reader *r, int type, int in_list, int nest)
{
    size_t n;
    int elem;
    if (r->err)
        return;
    if (nest > LH_THRIFT_MAX_DEPTH) {
        corrupt(r);
        return;
    }
    switch (type) {
    case LH_THRIFT_TRUE:
    case LH_THRIFT_FALSE:
        if (in_list)
            get_byte(r);
        break;
    case LH_THRIFT_BYTE:
        get_byte(r);
        break;
    case LH_THRIFT_I16:
    case LH_THRIFT_I32:
    case LH_THRIFT_I64:
        get_varint(r);
        break;
    case LH_THRIFT_DOUBLE:
        for (int i = 0; i < 8; i++)
            get_byte(r);
        break;
    case LH_THRIFT_BINARY:
        lh_thrift_read_binary(r, &n);
        break;
    case LH_THRIFT_LIST:
    case LH_THRIFT_SET: {
        uint32_t cnt = lh_thrift_read_list(r, &elem);
        for (uint32_t i = 0; i < cnt && !r->err; i++)
            skip_value(r, elem, 1, nest + 1);
        break;
    }
    case LH_THRIFT_MAP: {
        uint64_t cnt = get_varint(r);
        if (cnt == 0 || r->err)
            break;
        uint8_t kv = get_byte(r);
        if (cnt > (uint64_t)(r->end - r->p)) {
            corrupt(r);
            break;
        }
        for (uint64_t i = 0; i < cnt && !r->err; i++) {
            skip_value(r, kv >> 4, 1, nest + 1);
            skip_value(r, kv & 0x0f, 1, nest + 1);
        }
        break;
    }
    case LH_THRIFT_STRUCT: {
        int16_t id;
        int t;
        lh_thrift_read_struct_begin(r);
        while (lh_thrift_read_field(r, &id, &t))
            skip_value(r, t, 0, nest + 1);
        break;
    }
    default:
        corrupt(r);
    }
}

void lh_thrift_skip(struct lh_thrift_reader *r, int type) { skip_value(r, type, 0, 0); }

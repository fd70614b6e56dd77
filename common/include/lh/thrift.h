/* thrift.h - the Thrift Compact Protocol, as Parquet uses it for its footer
 * and page headers: a writer appending to an lh_buf and a pull reader over
 * a byte range. No code generation: callers write and read struct fields
 * by id, the reader skips what it does not know (forward compatibility).
 *
 * Both sides keep a sticky error: after the first failure (out of memory,
 * truncated or malformed input, nesting deeper than LH_THRIFT_MAX_DEPTH)
 * every call is a no-op and lh_thrift_*_error() returns the code, so a
 * caller checks once at the end. Not thread-safe per object; no globals. */
#ifndef LH_THRIFT_H
#define LH_THRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"

/* Compact protocol type ids. */
enum lh_thrift_type {
    LH_THRIFT_STOP = 0,
    LH_THRIFT_TRUE = 1,      /* a bool field's value is in its type */
    LH_THRIFT_FALSE = 2,
    LH_THRIFT_BYTE = 3,
    LH_THRIFT_I16 = 4,
    LH_THRIFT_I32 = 5,
    LH_THRIFT_I64 = 6,
    LH_THRIFT_DOUBLE = 7,
    LH_THRIFT_BINARY = 8,
    LH_THRIFT_LIST = 9,
    LH_THRIFT_SET = 10,
    LH_THRIFT_MAP = 11,
    LH_THRIFT_STRUCT = 12,
};

#define LH_THRIFT_MAX_DEPTH 32

struct lh_thrift_writer {
    struct lh_buf *out;
    int16_t last[LH_THRIFT_MAX_DEPTH];   /* last field id per open struct */
    int depth;
    int err;                              /* first error, 0 if none */
};

void lh_thrift_writer_init(struct lh_thrift_writer *w, struct lh_buf *out);
int lh_thrift_writer_error(const struct lh_thrift_writer *w);

/* A top-level struct (or a struct element of a list): begin, fields, end
 * (end writes the stop byte). */
void lh_thrift_write_struct_begin(struct lh_thrift_writer *w);
void lh_thrift_write_struct_end(struct lh_thrift_writer *w);

/* Fields of the innermost open struct, in any id order. */
void lh_thrift_write_field_bool(struct lh_thrift_writer *w, int16_t id, int v);
void lh_thrift_write_field_i16(struct lh_thrift_writer *w, int16_t id, int16_t v);
void lh_thrift_write_field_i32(struct lh_thrift_writer *w, int16_t id, int32_t v);
void lh_thrift_write_field_i64(struct lh_thrift_writer *w, int16_t id, int64_t v);
void lh_thrift_write_field_double(struct lh_thrift_writer *w, int16_t id, double v);
void lh_thrift_write_field_binary(struct lh_thrift_writer *w, int16_t id, const void *p,
                                  size_t n);
void lh_thrift_write_field_string(struct lh_thrift_writer *w, int16_t id, const char *s);
/* A struct-valued field: follow with its fields and lh_thrift_write_struct_end. */
void lh_thrift_write_field_struct(struct lh_thrift_writer *w, int16_t id);
/* A list-valued field of n elements of type elem: follow with n element
 * writes (lh_thrift_write_i32/i64/binary/string, or struct begin..end). */
void lh_thrift_write_field_list(struct lh_thrift_writer *w, int16_t id,
                                enum lh_thrift_type elem, uint32_t n);

/* List elements. */
void lh_thrift_write_i32(struct lh_thrift_writer *w, int32_t v);
void lh_thrift_write_i64(struct lh_thrift_writer *w, int64_t v);
void lh_thrift_write_binary(struct lh_thrift_writer *w, const void *p, size_t n);
void lh_thrift_write_string(struct lh_thrift_writer *w, const char *s);

struct lh_thrift_reader {
    const uint8_t *p, *end;
    int16_t last[LH_THRIFT_MAX_DEPTH];
    int depth;
    int err;                              /* first error, 0 if none */
};

void lh_thrift_reader_init(struct lh_thrift_reader *r, const void *data, size_t len);
int lh_thrift_reader_error(const struct lh_thrift_reader *r);
/* Bytes consumed since init. */
size_t lh_thrift_reader_pos(const struct lh_thrift_reader *r, const void *data);

/* Enters a struct (top level or list element). */
void lh_thrift_read_struct_begin(struct lh_thrift_reader *r);
/* The next field of the innermost struct: 1 with *id and *type set, or 0 at
 * its end (the struct is then left) or on error. A bool field's value is
 * its type (LH_THRIFT_TRUE / LH_THRIFT_FALSE): nothing more to read. A
 * struct field is entered by lh_thrift_read_struct_begin. */
int lh_thrift_read_field(struct lh_thrift_reader *r, int16_t *id, int *type);

int32_t lh_thrift_read_i32(struct lh_thrift_reader *r);
int64_t lh_thrift_read_i64(struct lh_thrift_reader *r);
double lh_thrift_read_double(struct lh_thrift_reader *r);
/* A pointer into the input and its length (not NUL-terminated). */
const uint8_t *lh_thrift_read_binary(struct lh_thrift_reader *r, size_t *n);
/* A list or set header: the element type and the count (bounded by the
 * bytes left, so a hostile count cannot make callers allocate wildly). */
uint32_t lh_thrift_read_list(struct lh_thrift_reader *r, int *elem);
/* A bool list element. */
int lh_thrift_read_bool_elem(struct lh_thrift_reader *r);
/* Skips one value of the given type (nested values included). */
void lh_thrift_skip(struct lh_thrift_reader *r, int type);

#endif

/* store_int.h - internals shared by the store's source files (store*.c):
 * on-disk formats, the segment catalog, block encoding and the query engine.
 * Not a public header: everything here may change with the format version.
 *
 * Segment file (<seq as 16 hex>.seg), little-endian:
 *   file header: "LHSTSEG1", u32 version, u32 kind (0 append, 1 merge),
 *     u32 nsuper, u32 header length, u64 seq, u64 supersedes[nsuper], u32 crc
 *     (CRC32C of everything before it), zero padding to 8 bytes.
 *   blocks, each 8-byte aligned: a 64-byte header (below), meta_len bytes of
 *     meta (column directory, dictionaries, level counts, metadata keys, bloom
 *     filter, id summary; never compressed), body_len bytes of zstd-compressed
 *     columns, zero padding to 8.
 * A merged segment lists the segments it replaces; a reader that sees both
 * ignores the replaced ones, so a merge switches atomically with one rename.
 * A block with the SEAL flag and no rows ends a segment nobody appends to. */
#ifndef LH_STORE_INT_H
#define LH_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "lh/buf.h"
#include "lh/store.h"

#define LHS_SEG_MAGIC "LHSTSEG1"
#define LHS_SEG_VERSION 1
#define LHS_BLK_MAGIC 0x314b4c48u      /* "HLK1" */
#define LHS_BLK_VERSION 1
#define LHS_BLK_HDR 64
#define LHS_BLK_SEAL 1u
#define LHS_SEG_KIND_APPEND 0
#define LHS_SEG_KIND_MERGE 1
#define LHS_SEG_MAP_MAX (1ull << 30)   /* hard cap on a segment; readers map this much */
#define LHS_BLOCK_MAX (256u << 20)     /* a block's meta + body */

/* Columns of a block. */
enum lhs_col {
    LHS_C_TS = 0, LHS_C_RECV, LHS_C_ID, LHS_C_SERVICE, LHS_C_LEVEL, LHS_C_HOST, LHS_C_TRACE,
    LHS_C_SPAN, LHS_C_USER, LHS_C_MESSAGE, LHS_C_STREAM, LHS_C_CONTAINER, LHS_C_K8S_NS,
    LHS_C_K8S_POD, LHS_C_K8S_CONT, LHS_C_REGION, LHS_C_FILE, LHS_C_RAW, LHS_C_META,
    LHS_NCOLS
};

/* Column encodings. */
enum lhs_enc {
    LHS_ENC_NULL = 0,     /* every row NULL; nothing in the body */
    LHS_ENC_PLAIN = 1,    /* varint (len+1, 0 = NULL) per row, then the bytes, each + NUL */
    LHS_ENC_DICT = 2,     /* dictionary in meta; u8 or u16 codes per row (0 = NULL) */
    LHS_ENC_TS = 3,       /* i64 first, varint divisor, varint deltas / divisor (sorted rows) */
    LHS_ENC_ZIGZAG = 4,   /* varint divisor, zigzag varint of (value - ts) / divisor per row */
    LHS_ENC_U8 = 5,       /* one byte per row */
    LHS_ENC_META = 6,     /* per row: varint n, n x (varint key code, varint len, bytes, NUL) */
    /* meta version 2 on: */
    LHS_ENC_RDELTA = 7,   /* varint divisor, zigzag varint of (value - previous row's value)
                             / divisor per row, the first against ts (constant receive
                             times, replayed batches) */
    LHS_ENC_EVID = 8,     /* ids all shaped <32 hex>-<decimal> (lh_event_id): varint count
                             of batch uuids, their 16 bytes each, then per row varint uuid
                             number and zigzag varint of index - previous row's index */
};
#define LHS_META_VERSION 2   /* written; 1 (no RDELTA, EVID) is read too */

/* ---- utilities (store_util.c) ----------------------------------------- */

uint32_t lhs_crc(const void *p, size_t n);
uint64_t lhs_hash(const void *p, size_t n);
uint64_t lhs_hash_seed(const void *p, size_t n, uint64_t seed);
static inline uint64_t lhs_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

extern const unsigned char lhs_lower[256];
extern const unsigned char lhs_tokch[256];   /* 1 for token bytes */

static inline void lhs_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void lhs_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t lhs_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t lhs_get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int lhs_buf_varint(struct lh_buf *b, uint64_t v);
int lhs_buf_u32(struct lh_buf *b, uint32_t v);
int lhs_buf_u64(struct lh_buf *b, uint64_t v);
/* Reads a varint from [*p, end); 0 on success, -1 on truncation. */
static inline int lhs_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    const uint8_t *q = *p;
    while (q < end && shift < 64) {
        uint8_t c = *q++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *p = q;
            *out = v;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

/* Days since the epoch of a timestamp (floor), and their YYYY-MM-DD. */
int64_t lhs_day_of(int64_t ts_ns);
void lhs_day_str(int64_t day, char out[11]);
int lhs_day_parse(const char *s, int64_t *day);
/* Tenant name <-> directory name (bytes outside [A-Za-z0-9_-] as %XX). */
void lhs_tenant_enc(const char *tenant, char *out, size_t outsz);
int lhs_tenant_dec(const char *name, char *out, size_t outsz);

const char *lhs_level_name(int level);
int lhs_level_parse(const char *s);   /* -1 if not a level name */

/* Id shape <32 lowercase hex>-<decimal u32 without leading zeros>. */
int lhs_id_parse(const char *id, uint8_t uuid[16], uint32_t *index);

/* Calls fn for every lower-cased token of s[0..n); tok is in a scratch
 * buffer. Returns what fn returned if non-zero. */
typedef int (*lhs_tok_fn)(void *ctx, const char *tok, size_t len);
int lhs_tokenize(const char *s, size_t n, lhs_tok_fn fn, void *ctx);
/* First position in h[0..n) where the lower-case tok[0..len) occurs,
 * ignoring ASCII case in h; NULL if none. */
const char *lhs_ci_find(const char *h, size_t n, const char *tok, size_t len);
struct lhs_hset;
/* Adds lhs_tok_hash of every lower-cased token of s[0..n) to set (the
 * hashes lhs_tokenize + lhs_tok_hash give, without the copies). */
int lhs_tokenize_hash(const char *s, size_t n, struct lhs_hset *set);
/* Hash of a lower-cased token. */
static inline uint64_t lhs_tok_hash(const char *tok, size_t len) { return lhs_hash(tok, len); }

int lhs_fsync_dir(const char *path);
int lhs_mkdirs(const char *path, struct lh_err *err);

/* ---- bloom and id index (store_index.c) -------------------------------- */

/* A set of 64-bit hashes (token hashes of one block). */
struct lhs_hset {
    uint64_t *v;
    size_t cap, n;
    int has_zero;
};
int lhs_hset_add(struct lhs_hset *s, uint64_t h);
void lhs_hset_free(struct lhs_hset *s);
/* Adds n hashes (the table grown once for all of them). */
int lhs_hset_add_many(struct lhs_hset *s, const uint64_t *hs, size_t n);
/* Empties the set, keeping its table for the next block. */
void lhs_hset_clear(struct lhs_hset *s);

/* Blocked bloom filter: nwords 64-bit words in 512-bit groups. */
size_t lhs_bloom_words(size_t nkeys);
void lhs_bloom_add(uint64_t *words, size_t nwords, uint64_t h);
int lhs_bloom_test(const uint8_t *words, size_t nwords, uint64_t h);

/* Per-partition index of stored ids (writer). */
struct lhs_idx;
struct lhs_idx *lhs_idx_new(void);
void lhs_idx_free(struct lhs_idx *x);
/* 1 if present. */
int lhs_idx_has(const struct lhs_idx *x, const char *id);
/* 1 if id was added, 0 if it was there already, LH_ENOMEM. */
int lhs_idx_add(struct lhs_idx *x, const char *id);
/* Adds everything a block's id summary lists. */
int lhs_idx_add_summary(struct lhs_idx *x, const uint8_t *p, size_t len);
/* Writes the id summary of ids[0..n) (any order) into b. */
int lhs_idx_summary(const char *const *ids, size_t n, struct lh_buf *b);

/* ---- blocks (store_block.c) -------------------------------------------- */

/* Parsed meta of a block (pointers into the meta bytes). */
struct lhs_coldir {
    uint8_t enc;
    uint8_t width;          /* DICT: bytes per code */
    uint32_t off, clen, ulen;
    uint32_t dict_n;
    const char **dict;      /* dict_n + 1 entries, [0] = NULL */
};

struct lhs_meta {
    struct lhs_coldir col[LHS_NCOLS];
    uint32_t level_counts[LH_LEVEL_COUNT];
    uint32_t nkeys;
    const char **keys;      /* metadata keys of the block */
    const uint8_t *bloom;
    uint32_t bloom_words;
    const uint8_t *ids;     /* id summary */
    uint32_t ids_len;
};

struct lhs_block {
    uint64_t off;           /* file offset of the header */
    uint32_t len;           /* header + meta + body + padding */
    uint32_t nrows;
    uint32_t flags;
    int64_t min_ts, max_ts;
    uint64_t raw_bytes;
    const uint8_t *meta;    /* into the segment's mapping */
    uint32_t meta_len;
    const uint8_t *body;
    uint32_t body_len;
    uint32_t body_crc;
    int body_state;         /* atomic: 0 unchecked, 1 checksum ok, 2 damaged */
    struct lhs_meta m;      /* dictionaries allocated (freed with the segment) */
};

/* Encoder state reused across blocks (one per writer / merge). */
struct lhs_enc_ctx;
struct lhs_enc_ctx *lhs_enc_new(int zstd_level);
void lhs_enc_free(struct lhs_enc_ctx *e);
/* Byte lengths of an event's string fields (len[c] for the string columns,
 * 0 when absent) and its lhs_event_raw_bytes, measured once per event. */
struct lhs_ev_lens {
    size_t len[LHS_NCOLS];
    uint64_t raw_bytes;
};
/* Fills l and returns l->raw_bytes. */
uint64_t lhs_event_lens(const struct lh_event *ev, struct lhs_ev_lens *l);
/* Encodes events (sorted by ts, id; distinct ids) as one block appended to
 * out (8-byte aligned length). lens: lhs_event_lens of each event, or NULL
 * to compute them. */
int lhs_block_encode(struct lhs_enc_ctx *e, const struct lh_event *const *evs,
                     const struct lhs_ev_lens *lens, size_t n, struct lh_buf *out,
                     struct lh_err *err);
int lhs_block_seal(struct lh_buf *out);
/* Approximate bytes of an event before encoding (its fields). */
uint64_t lhs_event_raw_bytes(const struct lh_event *ev);

/* Checks a block header at p (avail bytes readable). Returns 1 with the
 * header fields in b, 0 if the header is invalid, -1 if it is valid but the
 * block extends past avail (incomplete). */
int lhs_block_header(const uint8_t *p, uint64_t avail, struct lhs_block *b);
/* Verifies the meta checksum and parses it into b->m. */
int lhs_block_parse_meta(struct lhs_block *b, struct lh_err *err);
int lhs_block_check_body(const struct lhs_block *b);
/* The same, remembered in the block: checksums each body once. */
int lhs_block_body_ok(struct lhs_block *b);
void lhs_block_free_meta(struct lhs_block *b);

/* A decoded block: columns decompressed on demand. */
struct lhs_bdec {
    const struct lhs_block *b;
    uint32_t n;
    uint32_t loaded;        /* bitmask of columns */
    int corrupt;
    int64_t *ts, *recv;
    uint8_t *level;
    const char **str[LHS_NCOLS];   /* per string column: n row pointers (NULL = absent) */
    uint16_t *codes[LHS_NCOLS];    /* DICT columns: codes */
    const uint8_t **meta_row;      /* per row: start of its metadata list */
    const uint8_t *meta_end;
    char **raw;                    /* rebuilt raw lines per row (lhs_bdec_raw) */
    void *bufs[LHS_NCOLS + 2];     /* owned decompressed buffers */
    struct lh_arena arena;
    void *dctx;                    /* ZSTD_DCtx, owned */
};
void lhs_bdec_init(struct lhs_bdec *d, const struct lhs_block *b);
/* Loads column c. 0 or LH_ECORRUPT. For LHS_C_RAW, str[] holds the raw
 * templates; lhs_bdec_raw rebuilds the raw lines into raw[]. */
int lhs_bdec_load(struct lhs_bdec *d, int c);
int lhs_bdec_raw(struct lhs_bdec *d);
void lhs_bdec_free(struct lhs_bdec *d);
/* Copies row i into ev, strings allocated from arena. */
int lhs_bdec_event(struct lhs_bdec *d, uint32_t i, const char *tenant, struct lh_arena *arena,
                   struct lh_event *ev);
/* Value of metadata key in row i, or NULL. */
const char *lhs_bdec_meta_get(const struct lhs_bdec *d, uint32_t i, const char *key);

/* ---- segments and catalog (store_seg.c) -------------------------------- */

struct lhs_seg {
    int refs;                 /* atomic */
    uint64_t seq;
    int kind;
    uint32_t nsuper;
    uint64_t *supersedes;
    char *path;
    int fd;
    uint8_t *map;
    size_t map_len;
    uint64_t hdr_len;
    uint64_t size;            /* file size seen last */
    uint64_t end;             /* end of the last block parsed */
    int sealed;
    uint64_t corrupt;         /* blocks skipped while parsing */
    pthread_mutex_t lock;     /* guards blocks growth */
    struct lhs_block **blocks;  /* each allocated alone: pointers stay valid */
    size_t nblocks, cap;
};

/* Opens a segment file and maps it; parses its header. */
int lhs_seg_open(const char *path, struct lhs_seg **out, struct lh_err *err);
/* Parses blocks appended since the last call (headers and metas). With
 * check_bodies, bodies are checksummed too (recovery). */
typedef void (*lhs_problem_fn)(void *ctx, const struct lhs_seg *s, uint64_t off, const char *msg);
int lhs_seg_scan(struct lhs_seg *s, int check_bodies, lhs_problem_fn problem, void *ctx,
                 struct lh_err *err);
void lhs_seg_ref(struct lhs_seg *s);
void lhs_seg_unref(struct lhs_seg *s);
/* Builds a segment file header. */
int lhs_seg_header(struct lh_buf *b, uint64_t seq, int kind, const uint64_t *sup, uint32_t nsup);
/* Parses "<16 hex>.seg"; 0 on success. */
int lhs_seg_name_parse(const char *name, uint64_t *seq);

struct lhs_part {
    int64_t day;
    char *path;
    struct lhs_seg **segs;
    size_t nsegs;
};

struct lhs_tenant {
    char *name;
    char *path;
    struct lhs_part **parts;
    size_t nparts;
};

/* A consistent set of blocks of one tenant, with segment references. */
struct lhs_snap {
    struct lhs_seg **segs;
    size_t nsegs;
    const struct lhs_block **blocks;
    size_t nblocks;
    struct lhs_part_ref {
        int64_t day;
        size_t first_seg, nsegs;
    } *parts;
    size_t nparts;
};

/* Refreshes the catalog for tenant and days [day0, day1] and takes a
 * snapshot of the blocks whose time range meets [start, end). */
int lhs_catalog_snapshot(struct lh_store *s, const char *tenant, int64_t start, int64_t end,
                         struct lhs_snap *snap, struct lh_err *err);
void lhs_snap_free(struct lhs_snap *snap);
void lhs_catalog_free(struct lh_store *s);
/* Names of tenants present in DIR (malloc'd array of malloc'd names). */
int lhs_list_tenants(const char *dir, char ***out, size_t *n);
/* Days present under a tenant directory (sorted). */
int lhs_list_days(const char *tdir, int64_t **out, size_t *n);
/* Segment files of a partition directory sorted by seq; superseded ones
 * are marked dead. */
struct lhs_segname {
    uint64_t seq;
    char name[32];
    int kind;
    int dead;               /* superseded by a merged segment */
    int bad;                /* header unreadable */
};
int lhs_list_segs(const char *pdir, struct lhs_segname **out, size_t *n);

/* ---- the store handle (store.c) --------------------------------------- */

struct lhs_wpart;

struct lh_store {
    struct lh_store_config cfg;
    enum lh_store_mode mode;
    int lock_fd;

    /* reader catalog */
    pthread_mutex_t cat_lock;
    struct lhs_tenant **tenants;
    size_t ntenants;

    /* writer */
    pthread_mutex_t wlock;          /* writer state: partitions, appends, switches */
    pthread_mutex_t maint_lock;     /* one merge / retention at a time */
    struct lhs_wpart **wparts;
    size_t nwparts;
    struct lhs_enc_ctx *enc;
    struct lh_buf wbuf;
    pthread_t bg;
    int bg_running;
    int bg_stop;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
};

/* Writer partition state (store.c), used by merge and retention. */
struct lhs_wpart {
    char *tenant;
    int64_t day;
    char *path;
    uint64_t next_seq;
    int fd;                 /* active segment, -1 if none */
    uint64_t active_seq;
    uint64_t active_size;
    struct lhs_idx *idx;    /* loaded on first append */
    int64_t last_append_ms; /* monotonic */
    uint32_t active_blocks;
};
/* Writer: seals active segments idle for idle_ms or holding many small
 * blocks, so that merge can take them. */
void lhs_seal_idle(struct lh_store *s, int64_t idle_ms);
int lhs_wpart_get(struct lh_store *s, const char *tenant, int64_t day, int create,
                  struct lhs_wpart **out, struct lh_err *err);
void lhs_wpart_drop(struct lh_store *s, struct lhs_wpart *w);
int lhs_recover_partition(struct lh_store *s, const char *pdir, struct lh_err *err);
int lhs_rm_tree(const char *path);


#endif

/* cursor.h - the search API's opaque pagination cursors.
 *
 * A cursor carries the position after the last hit of a page (timestamp
 * and id, lh_store_pos), the resolved time range of the walk (so that a
 * default "last 24 h" stays the same window on every page), the query's
 * fingerprint, a tag of the tenant and the time it was issued, signed with
 * HMAC-SHA256 under a server key and written as base64url (no padding):
 *
 *   version 1 | tenant tag 8 | fingerprint 16 | issued s 8 | start 8 | end 8
 *   | position (lh_store_pos_encode) | mac 16
 *
 * Verification refuses, in this order: text that is not such a cursor or
 * whose MAC no configured key confirms (forged or altered, LH_CURSOR_BAD),
 * a cursor of another tenant (LH_CURSOR_TENANT), of another query
 * (LH_CURSOR_QUERY), and one older than the TTL (LH_CURSOR_EXPIRED).
 * Several keys may verify (rotation): the first one signs.
 * Pure functions; any thread. */
#ifndef LH_QUERYD_CURSOR_H
#define LH_QUERYD_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "lh/store.h"
#include "query.h"

struct lh_cursor {
    uint8_t fingerprint[LH_QUERY_FP_BYTES];
    int64_t issued_s;           /* unix seconds */
    int64_t start_ns, end_ns;   /* the walk's time range (end 0: open) */
    struct lh_store_pos pos;    /* the last hit returned */
};

/* Longest cursor text plus its NUL. */
#define LH_CURSOR_TEXT_MAX 400

struct lh_cursor_key {
    const uint8_t *key;
    size_t len;
};

/* Writes the cursor for tenant, signed with key, into out (NUL-terminated).
 * Returns its length, or LH_ETOOBIG when size is too small. */
int lh_cursor_encode(const struct lh_cursor *c, const char *tenant,
                     const struct lh_cursor_key *key, char *out, size_t size);

enum lh_cursor_verdict {
    LH_CURSOR_OK = 0,
    LH_CURSOR_BAD,       /* malformed, forged or signed by an unknown key: 400 */
    LH_CURSOR_TENANT,    /* another tenant's: 403 */
    LH_CURSOR_QUERY,     /* another query's: 400 */
    LH_CURSOR_EXPIRED,   /* issued more than ttl_s ago: 400 */
};

/* Checks text for tenant and the query with fingerprint fp, against keys
 * [0..nkeys); now_s and ttl_s (0: no expiry) judge its age. Fills *out on
 * LH_CURSOR_OK. */
enum lh_cursor_verdict lh_cursor_decode(const char *text, const char *tenant,
                                        const struct lh_cursor_key *keys, size_t nkeys,
                                        const uint8_t fp[LH_QUERY_FP_BYTES], int64_t now_s,
                                        int64_t ttl_s, struct lh_cursor *out);

/* What a verdict means, for the 400/403 message. */
const char *lh_cursor_verdict_text(enum lh_cursor_verdict v);

/* base64url without padding; out needs 4 * ceil(n / 3) + 1 bytes. Returns
 * the length. Decode returns the byte count, or -1 on a bad character or
 * length (or when it would exceed size). */
size_t lh_base64url_encode(const uint8_t *in, size_t n, char *out);
long lh_base64url_decode(const char *in, size_t n, uint8_t *out, size_t size);

#endif

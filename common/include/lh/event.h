/* event.h - the one event model used from the collector to the sinks.
 *
 * An event's strings are NUL-terminated and owned by whoever built it,
 * usually an lh_arena of the batch; the struct itself owns nothing. A NULL
 * string field means "absent". On the bus an event travels as one compact
 * JSON object (lh_event_encode / lh_event_decode); field names there are
 * the ones below (k8s fields nested as {"k8s":{"namespace",...}}). */
#ifndef LH_EVENT_H
#define LH_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/buf.h"
#include "lh/err.h"

enum lh_level {
    LH_LEVEL_UNKNOWN = 0,
    LH_LEVEL_TRACE,
    LH_LEVEL_DEBUG,
    LH_LEVEL_INFO,
    LH_LEVEL_WARN,
    LH_LEVEL_ERROR,
    LH_LEVEL_FATAL,
};
#define LH_LEVEL_COUNT 7

struct lh_kv {
    const char *key;
    const char *value;
};

struct lh_event {
    int64_t ts_ns;              /* event time, ns since the epoch (UTC) */
    int64_t received_ns;        /* when the collector accepted it */
    const char *id;             /* deterministic, see lh_event_id() */
    const char *tenant;
    const char *service;
    enum lh_level level;
    const char *host;
    const char *trace_id;
    const char *span_id;
    const char *user_id;
    const char *message;
    const char *stream;         /* stdout / stderr */
    const char *container_id;
    const char *k8s_namespace;
    const char *k8s_pod;
    const char *k8s_container;
    const char *region;
    const char *file;           /* source file on the host (for the ledger) */
    const char *raw;            /* the original line */
    struct lh_kv *meta;         /* custom_metadata: a flat string map */
    size_t nmeta;
};

/* "TRACE".."FATAL", "UNKNOWN". */
const char *lh_level_name(enum lh_level l);
/* Case-insensitive, with common aliases (warning, err, crit, panic, dbg,
 * information, notice, emerg, alert, severe, fine...). UNKNOWN when not
 * recognised. n is the length of s. */
enum lh_level lh_level_parse(const char *s, size_t n);

/* Writes the event id for record `index` of the batch with UUID `batch`
 * (16 bytes) into out (at least LH_EVENT_ID_MAX bytes): 32 hex digits of
 * the UUID, '-', the index in decimal. A retried batch keeps its UUID, so
 * the same record always has the same id. */
#define LH_EVENT_ID_MAX 48
void lh_event_id(char *out, const uint8_t batch[16], uint32_t index);

/* Appends the event as one compact JSON object (no newline). */
int lh_event_encode(const struct lh_event *ev, struct lh_buf *out);

/* Parses one encoded event from json[0..len); strings are allocated from
 * arena. Unknown keys are ignored (forward compatibility). */
int lh_event_decode(const char *json, size_t len, struct lh_arena *arena, struct lh_event *ev,
                    struct lh_err *err);

/* Looks a metadata key up; NULL when absent. */
const char *lh_event_meta(const struct lh_event *ev, const char *key);

/* Appends the n metadata pairs as one JSON object ({"key":"value",...});
 * pairs with a NULL key or value are left out, and with skip_repeated a key
 * that came earlier is too (some servers refuse duplicate keys). Returns 0
 * or LH_ENOMEM (out may then hold part of the object). */
int lh_event_meta_json(const struct lh_kv *kv, size_t n, int skip_repeated, struct lh_buf *out);

#endif

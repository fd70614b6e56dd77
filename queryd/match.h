/* match.h - a search API query evaluated on one event in memory, with the
 * embedded store's semantics (lh/store.h): for backends that read events
 * back whole (the archive) rather than ask an engine.
 *
 *   full text  every word and phrase occurs as a sequence of tokens (runs of
 *              ASCII letters, digits and bytes >= 0x80, compared ASCII
 *              case-insensitively, separated only by other bytes) in one of
 *              message, raw, trace_id, user_id, host or a metadata value
 *   filters    exact bytes (levels by name), NOT_EQUALS also matches an
 *              absent field, timestamps as ns, metadata ranges numerically
 *              (a value that is not a number does not match)
 * Pure functions; any thread. */
#ifndef LH_QUERYD_MATCH_H
#define LH_QUERYD_MATCH_H

#include <stdint.h>

#include "lh/event.h"
#include "query.h"

/* 1 when ev matches q's full text and filters (not its time range). */
int lh_qmatch(const struct lh_query *q, const struct lh_event *ev);

/* The value of an API field of ev (level and timestamp as text in buf,
 * which needs 24 bytes); NULL when absent. */
const char *lh_qmatch_field(const struct lh_event *ev, const char *field, char *buf);

#endif

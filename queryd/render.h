/* render.h - events as the search API shows them (one "hit"):
 *
 *   {"id":"...","timestamp":"2026-05-23T08:06:14.123Z","level":"ERROR",
 *    "service":"payment-service","trace_id":"tr_abc123","user_id":"usr_456",
 *    "message":"...","metadata":{"host":"i-09ab7d6f5e","container_id":"c_pay_88f9",
 *    <custom metadata keys>}, ["span_id","stream","region","k8s":{...},"file"]}
 *
 * service, trace_id, user_id and message are null when absent; host and
 * container_id are left out of metadata when absent, as are the optional
 * members. A custom key named like host or container_id, or repeated, is
 * shown once (the first). Timestamps carry 3, 6 or 9 fractional digits,
 * the fewest that are exact. Pure functions; any thread. */
#ifndef LH_QUERYD_RENDER_H
#define LH_QUERYD_RENDER_H

#include <stdint.h>

#include "lh/buf.h"
#include "lh/event.h"

/* Appends the hit; 0 or LH_ENOMEM. */
int lh_render_hit(struct lh_buf *out, const struct lh_event *ev);

/* Writes ts as RFC 3339 UTC with 3, 6 or 9 fractional digits into buf
 * (LH_TIME_RFC3339_SIZE bytes). */
void lh_render_time(int64_t ts_ns, char *buf);

#endif

/* dlq.h - reading and replaying the dead-letter queue (`loghaul dlq`).
 *
 * A dead letter (written by the pipeline, see pipeline.h) is a bus message
 * whose value is the original message exactly as the indexer consumed it,
 * with headers `reason`, `sink` (empty: the message did not decode),
 * `tenant`, `origin` (topic/partition/offset) and `failed_at`.
 *
 * Reading uses a consumer group of its own (default "loghaul-dlq"), so the
 * indexers' positions are never touched: list and show read from that
 * group's position without committing; replay commits it after the events
 * were produced again, so a second replay does not repeat the first. A
 * replayed event keeps its id and names the sink that refused it
 * (header replay_sink): the pipeline delivers it to that sink only, so the
 * others (the archive above all) do not get it twice.
 *
 * Threads: one caller at a time per consumer, like lh_bus. */
#ifndef LH_INDEXER_DLQ_H
#define LH_INDEXER_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lh/bus.h"
#include "lh/err.h"

#define LH_DLQ_GROUP "loghaul-dlq"

/* One dead letter, pointing into a bus batch. Absent headers are "". */
struct lh_dlq_entry {
    const struct lh_bus_msg *msg;
    const char *reason;
    const char *sink;
    const char *tenant;
    const char *origin;
    const char *failed_at;
};

void lh_dlq_entry_of(const struct lh_bus_msg *msg, struct lh_dlq_entry *out);

/* Which entries a command acts on; NULL / 0 fields match everything. */
struct lh_dlq_filter {
    const char *tenant;          /* exact */
    const char *sink;            /* exact; "-" selects undecodable messages */
    const char *reason;          /* substring of the reason */
};

int lh_dlq_match(const struct lh_dlq_filter *f, const struct lh_dlq_entry *e);

struct lh_dlq_scan {
    const char *group;           /* NULL: LH_DLQ_GROUP */
    const char *topic;           /* the DLQ topic */
    int first_wait_ms;           /* wait for the first message (Kafka joins the group) */
    int idle_wait_ms;            /* then stop once a poll waited this long for nothing */
    size_t max;                  /* stop after this many entries visited (0: no limit) */
};

/* Visits every entry from the group's position to the end of the topic as
 * it was when the scan began (entries added meanwhile, e.g. by replays that
 * failed again, are left for the next scan), in order, without committing. visit returns 0 to
 * go on, 1 to stop, or a negative code (returned). Returns the number of
 * entries visited. */
int lh_dlq_each(struct lh_bus *bus, const struct lh_dlq_scan *scan,
                int (*visit)(void *arg, const struct lh_dlq_entry *e), void *arg,
                struct lh_err *err);

struct lh_dlq_replay_stats {
    uint64_t seen;               /* entries read */
    uint64_t replayed;           /* produced again */
    uint64_t skipped;            /* not matching the filter, or undecodable (see below) */
};

/* Produces the entries that match f (all, with f NULL), up to the end of the
 * DLQ as it was when the replay began, to `target` (a topic
 * name; "{tenant}" expands with the entry's tenant), key and value as they
 * were, headers `tenant` and `replay_of` (the dead letter's origin), then
 * commits the group past everything read, batch by batch. Undecodable
 * entries (empty sink) are skipped unless include_undecodable: they would
 * only come back. dry_run: counts without producing or committing. */
int lh_dlq_replay(struct lh_bus *bus, const struct lh_dlq_scan *scan, const char *target,
                  const struct lh_dlq_filter *f, int include_undecodable, int dry_run,
                  struct lh_dlq_replay_stats *st, struct lh_err *err);

/* Printing. A line: "<partition>:<offset> <failed_at> tenant=<t> sink=<s>
 * <reason> | <value cut to width>"; JSON: one object per line with the
 * headers, partition, offset and the value as "event" (as JSON when it
 * parses, else as a string). show prints everything, the event indented. */
void lh_dlq_print_line(FILE *f, const struct lh_dlq_entry *e, size_t width);
void lh_dlq_print_json(FILE *f, const struct lh_dlq_entry *e);
void lh_dlq_print_full(FILE *f, const struct lh_dlq_entry *e);

#endif

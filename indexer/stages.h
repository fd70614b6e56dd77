/* stages.h - what the indexer does to each event between the bus and the
 * sinks: decode, then the configured stages in order (by default parse,
 * enrich, mask), then route and sample.
 *
 *   decode  lh_event_decode of the bus message; the tenant falls back to the
 *           message's `tenant` header, then "default". A message that does
 *           not decode goes to the dead-letter queue (the caller's job).
 *   parse   indexer/parse.h (JSON lines, grok, logfmt).
 *   enrich  static tags from config: `region` fills event.region when the
 *           event has none, other tags (dc, env...) go to custom_metadata
 *           (an event's own key wins unless tags_override); service falls
 *           back to the first present of service_from (k8s.container,
 *           k8s.pod, container_id, stream, file, host or metadata.<key>);
 *           optionally ingest_delay_ms = received - timestamp.
 *   mask    lh/mask.h over message, raw and every custom_metadata value.
 *   route   rules in order; an event goes to the union of the sinks of
 *           every rule that matches it (a matching rule with `final` stops
 *           the walk). A rule matches on level (min_level and/or a list of
 *           levels), service, tenant (exact names, or a prefix ending in
 *           '*'); a rule without conditions matches everything. No rules at
 *           all: every event goes to every sink.
 *   sample  the first sample rule that matches (same conditions as routes)
 *           keeps a fraction `rate` of the events, chosen by a hash of the
 *           event id, so a retried or replayed event is kept or dropped the
 *           same way every time. A rule may name the sinks it thins (the
 *           others still get the event); by default all of them.
 *
 * An lh_stages is immutable after creation and shared by the pipeline's
 * threads; each thread owns an lh_stage_worker (parse state, mask buffer,
 * its own counters). A SIGHUP builds a new lh_stages and the pipeline
 * swaps it in between batches. */
#ifndef LH_INDEXER_STAGES_H
#define LH_INDEXER_STAGES_H

#include <stddef.h>
#include <stdint.h>

#include "lh/arena.h"
#include "lh/bus.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/event.h"
#include "lh/mask.h"
#include "parse.h"

#define LH_STAGES_MAX_SINKS 32

struct lh_enrich_config {
    struct lh_strmap tags;           /* region fills event.region; the rest custom_metadata */
    int tags_override;               /* tags replace the event's own metadata keys */
    struct lh_strlist service_from;  /* fallbacks for an event without service */
    int ingest_delay;                /* add custom_metadata ingest_delay_ms */
};

/* One routing rule. */
struct lh_route_config {
    char *name;                      /* for logs; defaults to "route<N>" */
    struct lh_strlist sinks;         /* sink names (required) */
    char *min_level;                 /* e.g. "WARN": WARN, ERROR, FATAL */
    struct lh_strlist levels;        /* exact levels (UNKNOWN allowed) */
    struct lh_strlist services;      /* names, or prefixes ending in '*' */
    struct lh_strlist tenants;
    int final;                       /* when it matches, later rules are not tried */
};

/* One sampling rule. */
struct lh_sample_config {
    char *name;                      /* the reason label of the sampled counter (required) */
    double rate;                     /* fraction kept, 0..1 */
    char *max_level;                 /* levels at or below this, e.g. "INFO" */
    struct lh_strlist levels;
    struct lh_strlist services;
    struct lh_strlist tenants;
    struct lh_strlist sinks;         /* sinks it thins; empty: all */
};

struct lh_stages_config {
    struct lh_strlist order;         /* of "parse", "enrich", "mask" */
    struct lh_parse_config parse;
    struct lh_enrich_config enrich;
    struct lh_mask_config mask;
    struct lh_conf_list routes;      /* of struct lh_route_config */
    struct lh_conf_list sample;      /* of struct lh_sample_config */
};

/* Entries for the daemon's root table: stages, parse, enrich, mask, routes,
 * sample, bound into a struct lh_stages_config at `offset`. Use as
 *   LH_STAGES_OPTS(struct indexer_config, stages) */
extern const struct lh_opt lh_stages_parse_opts[];
extern const struct lh_opt lh_enrich_opts[];
extern const struct lh_opt lh_route_opts[];
extern const struct lh_opt lh_sample_opts[];
#define LH_STAGES_OPTS(cfg_type, member)                                                     \
    { .type = LH_OPT_STRLIST, .key = "stages", .def = "[parse, enrich, mask]",              \
      .offset = offsetof(cfg_type, member.order),                                            \
      .help = "the processing stages in order (any of parse, enrich, mask; each at most "   \
              "once); routing and sampling always come last" },                              \
    { .type = LH_OPT_SECTION, .key = "parse", .offset = offsetof(cfg_type, member.parse),   \
      .help = "the parse stage", .sub = lh_parse_opts },                                     \
    { .type = LH_OPT_SECTION, .key = "enrich", .offset = offsetof(cfg_type, member.enrich), \
      .help = "static tags and derived fields", .sub = lh_enrich_opts },                     \
    { .type = LH_OPT_SECTION, .key = "mask", .offset = offsetof(cfg_type, member.mask),     \
      .help = "PII masking of message, raw, user_id and metadata values (on by default; "  \
              "turn off with emails: false, cards: false and no patterns)", .sub = lh_mask_opts },    \
    { .type = LH_OPT_LIST, .key = "routes", .offset = offsetof(cfg_type, member.routes),    \
      .help = "which events go to which sinks (none: every event to every sink)",           \
      .sub = lh_route_opts, .item_size = sizeof(struct lh_route_config) },                   \
    { .type = LH_OPT_LIST, .key = "sample", .offset = offsetof(cfg_type, member.sample),    \
      .help = "sampling rules; the first that matches an event applies",                    \
      .sub = lh_sample_opts, .item_size = sizeof(struct lh_sample_config) }

/* Checks names and values (stage names, levels, rates, route sinks among
 * sink_names). No side effects. */
int lh_stages_validate(const struct lh_stages_config *cfg, const char *const *sink_names,
                       size_t nsinks, struct lh_err *err);

struct lh_stages;
struct lh_stage_worker;

/* Compiles cfg (copied: it may be freed afterwards): grok patterns, mask
 * rules, routes resolved against sink_names (at most LH_STAGES_MAX_SINKS). */
int lh_stages_create(const struct lh_stages_config *cfg, const char *const *sink_names,
                     size_t nsinks, struct lh_stages **out, struct lh_err *err);
void lh_stages_destroy(struct lh_stages *s);

size_t lh_stages_sink_count(const struct lh_stages *s);
/* Names for metric labels. */
size_t lh_stages_grok_count(const struct lh_stages *s);
const char *lh_stages_grok_name(const struct lh_stages *s, size_t i);
size_t lh_stages_mask_rule_count(const struct lh_stages *s);
const char *lh_stages_mask_rule_name(const struct lh_stages *s, size_t i);
size_t lh_stages_sample_count(const struct lh_stages *s);
const char *lh_stages_sample_name(const struct lh_stages *s, size_t i);

/* What a worker counted since the last lh_stage_worker_take_counts. The
 * arrays have lh_stages_grok_count / mask_rule_count / sample_count /
 * sink_count entries. */
struct lh_stage_counts {
    uint64_t decoded, undecodable;
    uint64_t kind[5];                /* by enum lh_parse_kind */
    uint64_t *grok;                  /* LH_PARSE_GROK, by pattern */
    uint64_t *masked;                /* replacements, by mask rule */
    uint64_t masked_events;          /* events with at least one replacement */
    uint64_t *sampled;               /* events dropped from some sink, by sample rule */
    uint64_t *routed;                /* events routed, by sink (after sampling) */
    uint64_t unrouted;               /* events that go to no sink */
};

int lh_stage_worker_create(const struct lh_stages *s, struct lh_stage_worker **out);
void lh_stage_worker_destroy(struct lh_stage_worker *w);
/* The counters (valid until the next call on w), then zeroes them. */
const struct lh_stage_counts *lh_stage_worker_counts(struct lh_stage_worker *w);
void lh_stage_worker_reset_counts(struct lh_stage_worker *w);

/* Decodes msg into ev (strings from arena). LH_EINVAL with err set when
 * the message is not an event. */
int lh_stages_decode(struct lh_stage_worker *w, const struct lh_bus_msg *msg,
                     struct lh_event *ev, struct lh_arena *arena, struct lh_err *err);

/* Runs the configured stages on ev, then routing and sampling. Returns the
 * set of sinks the event goes to (bit i = sink i; 0: none), or a negative
 * LH_E* code (LH_ENOMEM). */
int64_t lh_stages_process(struct lh_stage_worker *w, struct lh_event *ev,
                          struct lh_arena *arena);

/* Masks text that leaves the pipeline outside an event's fields (the value
 * of a dead letter: an event's JSON or whatever was on the bus) with the
 * mask rules, when the mask stage is configured. Returns the number of
 * replacements (0: out untouched, keep text) or a negative LH_E* code; on a
 * positive return out holds the masked text. Thread-safe (out is the
 * caller's). */
int lh_stages_mask_text(const struct lh_stages *s, const char *text, size_t n,
                        struct lh_buf *out);

/* The pieces of lh_stages_process, for tests and the benchmark. */
int lh_stages_parse(struct lh_stage_worker *w, struct lh_event *ev, struct lh_arena *arena);
int lh_stages_enrich(struct lh_stage_worker *w, struct lh_event *ev, struct lh_arena *arena);
int lh_stages_mask(struct lh_stage_worker *w, struct lh_event *ev, struct lh_arena *arena);
uint32_t lh_stages_route(struct lh_stage_worker *w, const struct lh_event *ev);

/* The sampling hash of an event: a 64-bit mix of its id (of its raw line,
 * then its message, when it has no id). The event is kept by a rule of
 * rate r when (hash >> 11) * 2^-53 < r. */
uint64_t lh_stages_sample_hash(const struct lh_event *ev);

#endif

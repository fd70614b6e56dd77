/* parse.h - the indexer's parse stage: turns an event's raw line into
 * fields. In order: a JSON object line (known keys become event fields,
 * everything else custom_metadata with nested objects flattened to dotted
 * keys), the grok patterns in configured order, then logfmt key=value
 * lines. Fields the record already carried are kept; parsed fields fill
 * the gaps. A line nothing understands is kept whole as the message with
 * level UNKNOWN and custom_metadata parse_failed=true: never dropped.
 *
 * An lh_parser is immutable and shared; each thread owns an
 * lh_parse_worker (grok match state and scratch buffers). */
#ifndef LH_INDEXER_PARSE_H
#define LH_INDEXER_PARSE_H

#include <stddef.h>

#include "lh/arena.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/event.h"

struct lh_parse_config {
    int json;                 /* parse JSON object lines */
    int logfmt;               /* parse key=value lines */
    char *patterns_dir;       /* directory of *.grok files */
    struct lh_strlist grok;   /* top-level patterns, tried in order */
    int64_t max_meta_keys;    /* metadata keys kept per event; the rest counted */
    int64_t max_depth;        /* JSON nesting limit */
};

extern const struct lh_opt lh_parse_opts[];

enum lh_parse_kind {
    LH_PARSE_NONE = 0,        /* nothing to parse (no raw line) */
    LH_PARSE_JSON,
    LH_PARSE_GROK,
    LH_PARSE_LOGFMT,
    LH_PARSE_FAILED,          /* kept raw, parse_failed=true */
};

struct lh_parser;
struct lh_parse_worker;

int lh_parser_create(const struct lh_parse_config *cfg, struct lh_parser **out,
                     struct lh_err *err);
void lh_parser_destroy(struct lh_parser *p);
/* Names of the grok patterns in order (for metrics). */
size_t lh_parser_grok_count(const struct lh_parser *p);
const char *lh_parser_grok_name(const struct lh_parser *p, size_t i);

int lh_parse_worker_create(const struct lh_parser *p, struct lh_parse_worker **out);
void lh_parse_worker_destroy(struct lh_parse_worker *w);

/* Parses ev->raw (or ev->message when there is no raw line) and fills ev;
 * new strings come from arena. Returns an lh_parse_kind, or LH_ENOMEM.
 * For LH_PARSE_GROK, lh_parse_last_grok() tells which pattern matched. */
int lh_parse_event(struct lh_parse_worker *w, struct lh_event *ev, struct lh_arena *arena);
int lh_parse_last_grok(const struct lh_parse_worker *w);

#endif

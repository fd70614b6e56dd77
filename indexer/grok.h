/* grok.h - grok patterns: named regular expressions that build on each
 * other (`%{NAME}`, `%{NAME:field}`), compiled with PCRE2 JIT.
 *
 * A library is loaded from pattern files (lines `NAME REGEX`, `#` comments,
 * the format of Logstash's pattern files). The indexer tries an ordered list
 * of top-level patterns against a line; the first that matches wins and its
 * captures become event fields (see parse.c). A compiled lh_grok is
 * immutable and shared by threads; each thread owns an lh_grok_matcher. */
#ifndef LH_GROK_H
#define LH_GROK_H

#include <stddef.h>

#include "lh/err.h"

struct lh_grok;
struct lh_grok_matcher;

struct lh_grok_capture {
    const char *field;   /* the capture's field name, owned by the lh_grok */
    const char *value;   /* points into the matched line (not NUL-terminated) */
    size_t len;
};

/* Loads every `*.grok` file in dir (sorted by name), then compiles the
 * top-level patterns named in `match` (in that order). Errors name the
 * file:line of a bad definition, an unknown %{NAME}, a reference cycle, an
 * expansion over 64 KiB, or PCRE2's message for a pattern that does not
 * compile. */
int lh_grok_create(const char *dir, const char *const *match, size_t nmatch,
                   struct lh_grok **out, struct lh_err *err);

/* The same with definitions given as text (tests, embedded defaults). */
int lh_grok_create_from_text(const char *name, const char *defs, const char *const *match,
                             size_t nmatch, struct lh_grok **out, struct lh_err *err);

void lh_grok_destroy(struct lh_grok *g);

size_t lh_grok_pattern_count(const struct lh_grok *g);
const char *lh_grok_pattern_name(const struct lh_grok *g, size_t i);

/* The regular expression a definition expands to (for tests and
 * `loghaul grok explain`); NULL for an unknown name. Owned by g. */
const char *lh_grok_expansion(const struct lh_grok *g, const char *name);

int lh_grok_matcher_create(const struct lh_grok *g, struct lh_grok_matcher **out);
void lh_grok_matcher_destroy(struct lh_grok_matcher *m);

/* Tries the top-level patterns in order. Returns the index of the first
 * that matches (captures available through lh_grok_captures until the next
 * call), -1 when none matches. Unset optional groups are not reported. */
int lh_grok_match(struct lh_grok_matcher *m, const char *line, size_t n);

/* The captures of the last successful match. */
const struct lh_grok_capture *lh_grok_captures(const struct lh_grok_matcher *m, size_t *n);

#endif

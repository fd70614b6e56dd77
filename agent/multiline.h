/* multiline.h - loghaul-agent's rules for joining lines into one record
 * (stack traces). They only classify a line as "starts a record" or
 * "continues the pending one"; the buffering is format.c's.
 *
 * Modes:
 *   start   a line matching start_pattern (PCRE2, JIT-compiled) starts a
 *           record; any other line continues the pending one. The usual
 *           pattern is the application's timestamp, e.g. ^\d{4}-\d{2}-\d{2}.
 *   java    continuation lines are stack frames ("\tat ...", "\t... 5 more",
 *           "... common frames omitted"), "Caused by: ...", "Suppressed: ...",
 *           and an exception header ("java.lang.IllegalStateException: boom",
 *           "com.x.FooError") following a pending record (logback's layout).
 *   python  "Traceback (most recent call last):" continues the pending record
 *           (logger.exception prints the message line first); inside a
 *           traceback every indented line continues, and the first
 *           non-indented line (the exception, "ValueError: bad") ends it.
 *           Chained exceptions (a blank line, "During handling of the above
 *           exception..." / "The above exception was the direct cause...",
 *           a blank line, a new "Traceback") stay in the same record. A blank
 *           line right after an exception line is appended to it.
 *
 * A rules object is immutable after creation apart from its PCRE2 match
 * data: use one per thread (the agent uses it from its loop thread only). */
#ifndef LH_AGENT_MULTILINE_H
#define LH_AGENT_MULTILINE_H

#include <stddef.h>

#include "lh/err.h"

enum lh_ml_mode { LH_ML_OFF = 0, LH_ML_START = 1, LH_ML_JAVA = 2, LH_ML_PYTHON = 3 };

/* "off|start|java|python", in enum order (for the config's ENUM option). */
#define LH_ML_CHOICES "off|start|java|python"

struct lh_ml_rules;

/* Per-file classification state; zero it to start. */
struct lh_ml_state {
    int py;   /* python: 0 none, 1 in traceback, 2 after exception line, 3 in chain text */
};

/* start_pattern is required for LH_ML_START and ignored otherwise. LH_EINVAL
 * with the PCRE2 message and offset when it does not compile. */
int lh_ml_rules_create(enum lh_ml_mode mode, const char *start_pattern,
                       struct lh_ml_rules **out, struct lh_err *err);
void lh_ml_rules_destroy(struct lh_ml_rules *r);   /* NULL-safe */

/* 1 when line continues the pending record, 0 when it starts a new one.
 * have_pending: whether a record is pending (nothing to continue if not;
 * the state still advances). */
int lh_ml_continues(struct lh_ml_rules *r, struct lh_ml_state *st, const char *line, size_t len,
                    int have_pending);

#endif

/* level.h - a cheap guess at a log line's severity, for sampling under
 * pressure (a full disk buffer). The agent does not parse lines; this only
 * looks at the first LH_LEVEL_SNIFF_BYTES bytes:
 *
 *   klog / glog   "I0523 08:06:14.123456 ..." (I, W, E, F + MMDD + space)
 *   JSON numbers  "level":30 (pino/bunyan: 10 trace .. 60 fatal)
 *   words         whole words, any case: TRACE, DEBUG, INFO, NOTICE, WARN,
 *                 WARNING, ERROR, ERR, FATAL, CRIT, CRITICAL, PANIC, SEVERE,
 *                 EMERG, ALERT; so "[INFO]", "level=info", "INFO:" and JSON
 *                 "level":"info" are all found. The most severe word wins.
 *   suspicious    words that may mean a failure (exception, traceback, fail,
 *                 failed, failure, errors) make a line that otherwise looks
 *                 INFO or below UNKNOWN.
 * UNKNOWN is never sampled: a line is only sampleable when the guess is
 * TRACE, DEBUG or INFO and nothing in it hints at an error. Pure functions,
 * any thread. */
#ifndef LH_AGENT_LEVEL_H
#define LH_AGENT_LEVEL_H

#include <stddef.h>

#include "lh/event.h"

#define LH_LEVEL_SNIFF_BYTES 512

enum lh_level lh_level_sniff(const char *s, size_t n);

/* 1 for TRACE, DEBUG and INFO: the levels sampled first. */
int lh_level_sampleable(enum lh_level l);

#endif

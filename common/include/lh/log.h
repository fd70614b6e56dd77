/* log.h - the daemons' own diagnostics: levelled, rate-limited lines to stderr
 * and optionally to a size-rotated local file. Never into the pipeline itself
 * (a logging system that logs its own failures into itself loops forever).
 * Thread-safe: any thread may call lh_log. */
#ifndef LH_LOG_H
#define LH_LOG_H

#include <stdint.h>

enum lh_log_level { LH_LOG_DEBUG, LH_LOG_INFO, LH_LOG_WARN, LH_LOG_ERROR, LH_LOG_OFF };

struct lh_log_config {
    const char *component;   /* "collector": prefixed to every line */
    enum lh_log_level level; /* lines below it are skipped */
    const char *file;        /* NULL: stderr only */
    uint64_t file_max_bytes; /* rotate file to file.1 past this (0: 50 MiB) */
    unsigned burst;          /* per call site: lines allowed per window (0: 20) */
    unsigned window_ms;      /* rate-limit window (0: 10 s) */
    int json;                /* one JSON object per line instead of text */
};

/* Per-call-site rate limiter state; lh_log() declares one statically. */
struct lh_log_site {
    uint64_t window_start_ms;
    unsigned count;
    unsigned suppressed;
};

/* Applies a configuration (copies what it needs). Returns 0 or -1 when the
 * file cannot be opened (then stderr stays in use). */
int lh_log_configure(const struct lh_log_config *cfg);
void lh_log_set_level(enum lh_log_level level);
enum lh_log_level lh_log_get_level(void);
/* "debug", "info", "warn", "error", "off" -> level; -1 when unknown. */
int lh_log_level_parse(const char *s);
void lh_log_shutdown(void);

void lh_log_emit(struct lh_log_site *site, enum lh_log_level level, const char *file,
                 int line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define lh_log(level, ...)                                                    \
    do {                                                                      \
        static struct lh_log_site lh_log_site_;                               \
        if ((level) >= lh_log_get_level())                                    \
            lh_log_emit(&lh_log_site_, (level), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define lh_debug(...) lh_log(LH_LOG_DEBUG, __VA_ARGS__)
#define lh_info(...)  lh_log(LH_LOG_INFO, __VA_ARGS__)
#define lh_warn(...)  lh_log(LH_LOG_WARN, __VA_ARGS__)
#define lh_error(...) lh_log(LH_LOG_ERROR, __VA_ARGS__)

#endif

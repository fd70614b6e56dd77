/* log.c - levelled, rate-limited diagnostics for the daemons (see lh/log.h). */
#include "lh/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static enum lh_log_level log_level = LH_LOG_INFO;
static char log_component[32] = "loghaul";
static char *log_path;
static FILE *log_file;
static uint64_t log_file_bytes;
static uint64_t log_file_max = 50u << 20;
static unsigned log_burst = 20;
static unsigned log_window_ms = 10000;
static int log_json;

static const char *level_names[] = { "DEBUG", "INFO", "WARN", "ERROR", "OFF" };

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int lh_log_configure(const struct lh_log_config *cfg)
{
    int rc = 0;
    pthread_mutex_lock(&log_mu);
    if (cfg->component)
        snprintf(log_component, sizeof(log_component), "%s", cfg->component);
    log_level = cfg->level;
    log_file_max = cfg->file_max_bytes ? cfg->file_max_bytes : 50u << 20;
    log_burst = cfg->burst ? cfg->burst : 20;
    log_window_ms = cfg->window_ms ? cfg->window_ms : 10000;
    log_json = cfg->json;
    if (log_file) {
        fclose(log_file);
        log_file = NULL;
    }
    free(log_path);
    log_path = NULL;
    if (cfg->file && cfg->file[0]) {
        log_path = strdup(cfg->file);
        log_file = log_path ? fopen(log_path, "a") : NULL;
        if (!log_file) {
            rc = -1;
        } else {
            struct stat st;
            log_file_bytes = fstat(fileno(log_file), &st) == 0 ? (uint64_t)st.st_size : 0;
        }
    }
    pthread_mutex_unlock(&log_mu);
    return rc;
}

void lh_log_set_level(enum lh_log_level level) { log_level = level; }
enum lh_log_level lh_log_get_level(void) { return log_level; }

int lh_log_level_parse(const char *s)
{
    static const char *names[] = { "debug", "info", "warn", "error", "off" };
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LH_LOG_WARN;
    return -1;
}

void lh_log_shutdown(void)
{
    pthread_mutex_lock(&log_mu);
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    free(log_path);
    log_path = NULL;
    pthread_mutex_unlock(&log_mu);
}

/* Keeps one previous generation (file.1): bounded disk use, no surprises. */
static void rotate_locked(void)
{
    char old[4096];
    fclose(log_file);
    snprintf(old, sizeof(old), "%s.1", log_path);
    rename(log_path, old);
    log_file = fopen(log_path, "a");
    log_file_bytes = 0;
}

/* Writes s as a JSON string body (without quotes). */
static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static void write_line(FILE *f, const char *ts, enum lh_log_level level, const char *msg,
                       const char *file, int line)
{
    if (log_json) {
        fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"src\":\"%s:%d\",\"msg\":\"",
                ts, level_names[level], log_component, file, line);
        json_escape(f, msg);
        fputs("\"}\n", f);
    } else {
        fprintf(f, "%s %-5s %s: %s\n", ts, level_names[level], log_component, msg);
    }
}

void lh_log_emit(struct lh_log_site *site, enum lh_log_level level, const char *file,
                 int line, const char *fmt, ...)
{
    char msg[2048];
    unsigned suppressed = 0;
    uint64_t now = mono_ms();

    pthread_mutex_lock(&log_mu);
    if (now - site->window_start_ms >= log_window_ms) {
        suppressed = site->suppressed;
        site->window_start_ms = now;
        site->count = 0;
        site->suppressed = 0;
    }
    if (site->count >= log_burst) {
        site->suppressed++;
        pthread_mutex_unlock(&log_mu);
        return;
    }
    site->count++;

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= 0 && suppressed && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, " (%u similar lines suppressed)", suppressed);

    struct timespec ts;
    struct tm tm;
    char tsbuf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(tsbuf, sizeof(tsbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tsbuf + k, sizeof(tsbuf) - k, ".%03ldZ", ts.tv_nsec / 1000000);

    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int saved = errno;
    write_line(stderr, tsbuf, level, msg, base, line);
    if (log_file) {
        long before = ftell(log_file);
        write_line(log_file, tsbuf, level, msg, base, line);
        fflush(log_file);
        long after = ftell(log_file);
        if (before >= 0 && after >= before)
            log_file_bytes += (uint64_t)(after - before);
        if (log_file_bytes > log_file_max)
            rotate_locked();
    }
    errno = saved;
    pthread_mutex_unlock(&log_mu);
}

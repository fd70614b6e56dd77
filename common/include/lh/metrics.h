/* metrics.h - a registry of counters, gauges and histograms rendered in the
 * Prometheus text exposition format (version 0.0.4) at /metrics.
 *
 * A metric is identified by name plus a label set written as Prometheus
 * label text without braces: `tenant="acme",reason="too_big"` (NULL or ""
 * for none). Label values are escaped by lh_metrics_label(). The *_get
 * functions create the series on first use and return the same pointer
 * afterwards; pointers stay valid until lh_metrics_destroy. Lookups take a
 * mutex: call them at set-up or cache the pointer; updates are lock-free
 * atomics, safe from any thread. */
#ifndef LH_METRICS_H
#define LH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lh/buf.h"

struct lh_metrics;
struct lh_counter;
struct lh_gauge;
struct lh_histogram;

struct lh_metrics *lh_metrics_create(void);
void lh_metrics_destroy(struct lh_metrics *m);

/* NULL only when out of memory, or when the name was registered before with
 * another type (a programming error, logged). */
struct lh_counter *lh_counter_get(struct lh_metrics *m, const char *name, const char *help,
                                  const char *labels);
void lh_counter_add(struct lh_counter *c, uint64_t n);   /* NULL-safe */
uint64_t lh_counter_value(const struct lh_counter *c);

struct lh_gauge *lh_gauge_get(struct lh_metrics *m, const char *name, const char *help,
                              const char *labels);
void lh_gauge_set(struct lh_gauge *g, double v);         /* NULL-safe */
void lh_gauge_add(struct lh_gauge *g, double delta);     /* NULL-safe */
double lh_gauge_value(const struct lh_gauge *g);

/* A gauge computed when /metrics is rendered (queue depth, disk use). fn is
 * called with arg from the rendering thread. */
int lh_gauge_fn(struct lh_metrics *m, const char *name, const char *help, const char *labels,
                double (*fn)(void *arg), void *arg);

/* bounds: ascending upper bounds of the buckets (+Inf is implicit); copied. */
struct lh_histogram *lh_histogram_get(struct lh_metrics *m, const char *name, const char *help,
                                      const char *labels, const double *bounds, size_t nbounds);
void lh_histogram_observe(struct lh_histogram *h, double v);  /* NULL-safe */

/* Default latency buckets in seconds (1 ms .. 30 s). */
extern const double lh_latency_buckets[];
extern const size_t lh_latency_nbuckets;

/* Appends the whole registry in text format, series grouped by name with
 * one # HELP / # TYPE each. */
int lh_metrics_render(struct lh_metrics *m, struct lh_buf *out);

/* Formats `key="value"` with the value escaped (\\, \", \n) into buf of
 * size n; returns buf. Several pairs are joined by the caller with ','. */
char *lh_metrics_label(char *buf, size_t n, const char *key, const char *value);

#endif

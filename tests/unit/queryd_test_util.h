/* queryd_test_util.h - helpers of queryd's API tests: a queryd running in
 * this process on its own loop thread (config from YAML text), blocking
 * HTTP calls to it, a store writer with hand-made events, and JSON access
 * through jansson. */
#ifndef LH_QUERYD_TEST_UTIL_H
#define LH_QUERYD_TEST_UTIL_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "http_test_util.h"
#include "lh/metrics.h"
#include "lh/store.h"
#include "../../queryd/queryd.h"

struct qt {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct lh_http_server *srv;
    struct lh_metrics *metrics;
    struct lh_queryd_config cfg;
    struct lh_queryd *qd;
    int port;
    int started;
};

/* Starts queryd with the YAML config (listen address forced to
 * 127.0.0.1:0). The text may use %s once for the store directory. 0 or -1
 * (message on stderr). */
int qt_start(struct qt *t, const char *yaml_fmt, const char *dir);
/* Shuts queryd down, stops the loop, frees everything; 0 when clean. */
int qt_stop(struct qt *t);

/* POST body to path with the bearer token (NULL: none); returns the status
 * and the body in r (free with ht_resp_free). */
int qt_post(struct qt *t, const char *path, const char *token, const char *body,
            struct ht_resp *r);
/* The same, answer parsed (NULL when not JSON); *status set. */
json_t *qt_post_json(struct qt *t, const char *path, const char *token, const char *body,
                     int *status);

/* A writer on dir (merges off). */
struct lh_store *qt_store_writer(const char *dir);

/* One event (strings copied into a). meta: "k=v,k2=v2" or NULL. */
struct lh_event qt_event(struct lh_arena *a, const char *tenant, const char *id, int64_t ts,
                         enum lh_level level, const char *service, const char *host,
                         const char *message, const char *meta);

/* The error's "field" of an error answer, or NULL. */
const char *qt_err_field(json_t *j);
const char *qt_err_code(json_t *j);

#endif

/* test_queryd_util.c - helpers of queryd's API tests (see queryd_test_util.h). */
#include "queryd_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* openssl/lhash.h (via http_test_util.h) defines an lh_error of its own */
#undef lh_error
#include "lh/log.h"

static void *loop_main(void *arg)
{
    struct qt *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    struct qt *t = a->data;
    lh_queryd_shutdown(t->qd);
    lh_http_server_shutdown(t->srv, 2000, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

int qt_start(struct qt *t, const char *yaml_fmt, const char *dir)
{
    memset(t, 0, sizeof(*t));
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_buf y = LH_BUF_INIT;
    lh_buf_printf(&y, yaml_fmt, dir ? dir : "");
    struct lh_err err = { 0 };
    int rc = lh_conf_load_string("test.yaml", y.data, y.len, lh_queryd_opts, &t->cfg, &err);
    lh_buf_free(&y);
    if (rc == 0)
        rc = lh_queryd_validate(&t->cfg, &err);
    if (rc < 0) {
        fprintf(stderr, "    qt_start: config: %s\n", err.msg);
        lh_conf_free(lh_queryd_opts, &t->cfg);
        return -1;
    }
    free(t->cfg.common.listen.listen);
    t->cfg.common.listen.listen = strdup("127.0.0.1:0");
    uv_loop_init(&t->loop);
    t->metrics = lh_metrics_create();
    if ((rc = lh_http_server_create(&t->loop, &t->cfg.common.listen, &t->srv, &err)) == 0 &&
        (rc = lh_queryd_create(&t->cfg, t->srv, t->metrics, &t->qd, &err)) == 0) {
        t->port = lh_http_server_port(t->srv);
        uv_async_init(&t->loop, &t->stop, on_stop);
        t->stop.data = t;
        if (pthread_create(&t->thread, NULL, loop_main, t) == 0) {
            t->started = 1;
            return 0;
        }
    }
    fprintf(stderr, "    qt_start: %s\n", err.msg);
    lh_http_server_destroy(t->srv);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    lh_conf_free(lh_queryd_opts, &t->cfg);
    lh_metrics_destroy(t->metrics);
    return -1;
}

int qt_stop(struct qt *t)
{
    if (!t->started)
        return -1;
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    lh_http_server_destroy(t->srv);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&t->loop);
    lh_queryd_destroy(t->qd);
    lh_conf_free(lh_queryd_opts, &t->cfg);
    lh_metrics_destroy(t->metrics);
    t->started = 0;
    return rc;
}

int qt_post(struct qt *t, const char *path, const char *token, const char *body,
            struct ht_resp *r)
{
    struct lh_buf req = LH_BUF_INIT;
    lh_buf_printf(&req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n", path, strlen(body));
    if (token)
        lh_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    lh_buf_puts(&req, "Connection: close\r\n\r\n");
    lh_buf_puts(&req, body);
    int st = ht_request(t->port, req.data, r);
    lh_buf_free(&req);
    return st;
}

json_t *qt_post_json(struct qt *t, const char *path, const char *token, const char *body,
                     int *status)
{
    struct ht_resp r;
    *status = qt_post(t, path, token, body, &r);
    json_t *j = r.body.data ? json_loadb(r.body.data, r.body.len, 0, NULL) : NULL;
    ht_resp_free(&r);
    return j;
}

struct lh_store *qt_store_writer(const char *dir)
{
    struct lh_store_config cfg = { .dir = (char *)dir, .block_events = 500 };
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &cfg, LH_STORE_WRITE, &err) < 0)
        fprintf(stderr, "    store: %s\n", err.msg);
    return s;
}

struct lh_event qt_event(struct lh_arena *a, const char *tenant, const char *id, int64_t ts,
                         enum lh_level level, const char *service, const char *host,
                         const char *message, const char *meta)
{
    struct lh_event ev = { .ts_ns = ts, .level = level };
    ev.tenant = lh_arena_strdup(a, tenant);
    ev.id = lh_arena_strdup(a, id);
    ev.service = service ? lh_arena_strdup(a, service) : NULL;
    ev.host = host ? lh_arena_strdup(a, host) : NULL;
    ev.message = message ? lh_arena_strdup(a, message) : NULL;
    if (meta && *meta) {
        char *m = lh_arena_strdup(a, meta);
        size_t n = 1;
        for (const char *p = m; *p; p++)
            n += *p == ',';
        ev.meta = lh_arena_alloc(a, n * sizeof(*ev.meta));
        for (char *tok = strtok(m, ","); tok; tok = strtok(NULL, ",")) {
            char *eq = strchr(tok, '=');
            if (!eq)
                continue;
            *eq = '\0';
            ev.meta[ev.nmeta].key = tok;
            ev.meta[ev.nmeta].value = eq + 1;
            ev.nmeta++;
        }
    }
    return ev;
}

const char *qt_err_field(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "field"));
}

const char *qt_err_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* null_collector.c - a stand-in for loghaul-collector that accepts every
 * ingest request without looking at it (200 {"accepted":0}), for measuring
 * the agent alone (bench/agent_bench.sh NULL_COLLECTOR=1). Counts requests
 * and body bytes, printed at SIGTERM/SIGINT; /readyz answers.
 *
 * usage: null_collector --listen 127.0.0.1:PORT [--delay-ms 0] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lh/http.h"
#include "lh/log.h"

static unsigned long long requests, bytes;
static int delay_ms;
static uv_loop_t loop;
static struct lh_http_server *srv;

struct later {
    uv_timer_t t;
    struct lh_http_req *req;
};

static void answer(struct lh_http_req *req)
{
    static const char body[] = "{\"accepted\":0}";
    lh_http_respond_json(req, 200, NULL, body, sizeof(body) - 1);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_timer(uv_timer_t *t)
{
    struct later *l = t->data;
    answer(l->req);
    uv_close((uv_handle_t *)t, on_closed);
}

static void on_ingest(struct lh_http_req *req, void *arg)
{
    (void)arg;
    size_t len;
    lh_http_req_body(req, &len);
    requests++;
    bytes += len;
    if (!delay_ms) {
        answer(req);
        return;
    }
    struct later *l = calloc(1, sizeof(*l));
    if (!l) {
        answer(req);
        return;
    }
    l->req = req;
    uv_timer_init(&loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, on_timer, (uint64_t)delay_ms, 0);
}

static uv_signal_t sterm, sint;

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    fprintf(stderr, "null_collector: %llu requests, %llu body bytes\n", requests, bytes);
    uv_close((uv_handle_t *)&sterm, NULL);
    uv_close((uv_handle_t *)&sint, NULL);
    lh_http_server_destroy(srv);
}

int main(int argc, char **argv)
{
    char *listen = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen"))
            listen = argv[i + 1];
        else if (!strcmp(argv[i], "--delay-ms"))
            delay_ms = atoi(argv[i + 1]);
    }
    if (!listen) {
        fprintf(stderr, "usage: null_collector --listen HOST:PORT [--delay-ms N]\n");
        return 2;
    }
    lh_log_set_level(LH_LOG_ERROR);
    struct lh_http_server_config cfg = { .listen = listen, .max_body = 64u << 20 };
    struct lh_err err = { 0 };
    uv_loop_init(&loop);
    if (lh_http_server_create(&loop, &cfg, &srv, &err) < 0 ||
        lh_http_server_route(srv, "POST", "/v1/logs/ingest", on_ingest, NULL, &err) < 0 ||
        lh_http_server_add_admin_routes(srv, &(struct lh_http_admin){ 0 }, &err) < 0) {
        fprintf(stderr, "null_collector: %s\n", err.msg);
        return 1;
    }
    uv_signal_init(&loop, &sterm);
    uv_signal_init(&loop, &sint);
    uv_signal_start(&sterm, on_signal, SIGTERM);
    uv_signal_start(&sint, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

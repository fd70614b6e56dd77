/* cmd_tail.c - `loghaul tail`: follows new matching events through queryd's
 * server-sent events (GET /v1/logs/tail), reconnecting where it left off
 * (Last-Event-ID) when the connection drops. */
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_query.h"
#include "lh/http_client.h"

static void tail_usage(FILE *f)
{
    fprintf(f, "usage: loghaul tail [options] [WORDS...]\n"
               "\n"
               "Prints new events that match as they arrive (within about a second), until\n"
               "interrupted. Same words and filters as `loghaul search`; -o json prints one\n"
               "JSON hit per line.\n"
               "\n"
               "options:\n"
               "      --no-reconnect      end when the connection drops\n"
               "%s",
            lh_cliq_help);
}

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

struct sse {
    struct lh_cliq *c;
    struct lh_buf buf;          /* bytes not yet split into events */
    char last_id[256];
    long status;
    int error_event;            /* the server said the tail ended with an error */
};

/* One complete event (its lines, without the blank line). */
static void sse_event(struct sse *s, char *ev)
{
    const char *event = NULL;
    struct lh_buf data = LH_BUF_INIT;
    for (char *line = strtok(ev, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == ':')
            continue;   /* comment: heartbeat */
        if (strncmp(line, "id: ", 4) == 0)
            snprintf(s->last_id, sizeof(s->last_id), "%s", line + 4);
        else if (strncmp(line, "event: ", 7) == 0)
            event = line + 7;
        else if (strncmp(line, "data: ", 6) == 0)
            lh_buf_puts(&data, line + 6);
    }
    if (data.len) {
        json_t *j = json_loadb(data.data, data.len, 0, NULL);
        if (event && strcmp(event, "error") == 0) {
            const char *msg = json_string_value(
                json_object_get(json_object_get(j, "error"), "message"));
            fprintf(stderr, "loghaul tail: %s\n", msg ? msg : data.data);
            s->error_event = 1;
        } else if (j) {
            lh_cliq_print_hit(s->c, j, stdout);
            fflush(stdout);
        }
        json_decref(j);
    }
    lh_buf_free(&data);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct sse *s = arg;
    size_t len = size * n;
    if (s->status != 200) {   /* an error body: keep it for the message */
        lh_buf_append(&s->buf, p, len);
        return len;
    }
    lh_buf_append(&s->buf, p, len);
    for (;;) {
        char *end = s->buf.data ? strstr(s->buf.data, "\n\n") : NULL;
        if (!end)
            break;
        *end = '\0';
        size_t used = (size_t)(end - s->buf.data) + 2;
        sse_event(s, s->buf.data);
        memmove(s->buf.data, s->buf.data + used, s->buf.len - used + 1);
        s->buf.len -= used;
    }
    return g_stop ? 0 : len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return g_stop ? 1 : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sse *s = arg;
    if (size * n > 9 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = strchr(p, ' ');
        s->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        lh_buf_reset(&s->buf);
    }
    return size * n;
}

static int tail_run(int argc, char **argv)
{
    static const struct option lo[] = {
        LH_CLIQ_LONG,
        { "no-reconnect", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    struct lh_cliq c;
    lh_cliq_init(&c, "tail");
    int reconnect = 1, ch, code = 2;
    optind = 1;
    while ((ch = getopt_long(argc, argv, LH_CLIQ_SHORT "h", lo, NULL)) != -1) {
        int r = lh_cliq_option(&c, ch, optarg);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        switch (ch) {
        case 'R': reconnect = 0; break;
        case 'h': tail_usage(stdout); code = 0; goto out;
        default: tail_usage(stderr); goto out;
        }
    }
    if (lh_cliq_finish(&c, argc - optind, argv + optind) < 0)
        goto out;
    struct lh_buf query = LH_BUF_INIT;
    struct lh_err err = { 0 };
    if (lh_cliq_query_object(&c, &query, &err) < 0 || lh_http_client_global_init(&err) < 0) {
        fprintf(stderr, "loghaul tail: %s\n", err.msg);
        lh_buf_free(&query);
        goto out;
    }
    CURL *h = curl_easy_init();
    char *enc = h ? curl_easy_escape(h, query.data, (int)query.len) : NULL;
    lh_buf_free(&query);
    if (!enc) {
        fprintf(stderr, "loghaul tail: out of memory\n");
        if (h)
            curl_easy_cleanup(h);
        code = 1;
        goto out;
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sse s = { .c = &c };
    char url[8192], auth[700], lei[300];
    size_t sl = strlen(c.server);
    while (sl > 0 && c.server[sl - 1] == '/')
        sl--;
    snprintf(url, sizeof(url), "%.*s/v1/logs/tail?query=%s", (int)sl, c.server, enc);
    curl_free(enc);
    code = 0;
    while (!g_stop) {
        struct curl_slist *hdrs = NULL;
        hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
        if (s.last_id[0]) {
            snprintf(lei, sizeof(lei), "Last-Event-ID: %s", s.last_id);
            hdrs = curl_slist_append(hdrs, lei);
        }
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c.token);
        hdrs = curl_slist_append(hdrs, auth);
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        /* no data (not even a heartbeat) for a minute: the server is gone */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (c.ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, c.ca_file);
        s.status = 0;
        s.error_event = 0;
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        if (g_stop)
            break;
        if (s.status != 200 && s.status != 0) {
            json_t *j = json_loadb(s.buf.data ? s.buf.data : "", s.buf.len, 0, NULL);
            const char *msg = json_string_value(
                json_object_get(json_object_get(j, "error"), "message"));
            fprintf(stderr, "loghaul tail: %ld: %s\n", s.status,
                    msg ? msg : (s.buf.data ? s.buf.data : ""));
            json_decref(j);
            code = s.status >= 400 && s.status < 500 ? 2 : 1;
            if (s.status != 503)
                break;
        } else if (rc != CURLE_OK) {
            fprintf(stderr, "loghaul tail: %s\n", curl_easy_strerror(rc));
            code = 1;
        }
        if (!reconnect || (s.error_event && s.status == 200 && rc == CURLE_OK))
            break;
        for (int i = 0; i < 20 && !g_stop; i++)   /* 2 s, then again */
            usleep(100000);
        code = 0;
    }
    curl_easy_cleanup(h);
    lh_buf_free(&s.buf);
out:
    lh_cliq_free(&c);
    return code;
}

const struct lh_cli_command lh_cli_tail = {
    .name = "tail",
    .summary = "follow new matching events live (server-sent events from queryd)",
    .run = tail_run,
    .usage = tail_usage,
};

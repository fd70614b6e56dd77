/* cli_query.c - shared parts of the query commands (see cli_query.h). */
#include "cli_query.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lh/conf.h"
#include "lh/http_client.h"
#include "lh/time.h"

const char lh_cliq_help[] =
    "  -s, --server URL        queryd (default $LOGHAUL_SERVER, else http://127.0.0.1:7071)\n"
    "  -t, --token TOKEN       bearer token (default $LOGHAUL_TOKEN, else dev-token)\n"
    "  -f, --filter EXPR       a filter, repeatable: FIELD=V  FIELD!=V  FIELD=[A,B]  FIELD^=V\n"
    "                          (prefix)  FIELD~=V (contains)  FIELD?  !FIELD?  FIELD>V  >=  <  <=\n"
    "                          e.g. -f service=payment-service -f 'level>=WARN'\n"
    "  -q, --query JSON        a whole query object {\"full_text\",\"filters\",\"time_range\"}\n"
    "      --since DURATION    only the last DURATION (15m, 2h, 7d)\n"
    "      --from TIME         start (RFC 3339 or epoch); --to TIME: end\n"
    "  -o, --output FORMAT     text (default) or json\n"
    "      --color WHEN        auto (on a terminal, unless $NO_COLOR), always or never\n"
    "      --cacert FILE       CA certificate for an https server\n";

void lh_cliq_init(struct lh_cliq *c, const char *cmd)
{
    memset(c, 0, sizeof(*c));
    c->cmd = cmd;
    const char *s = getenv("LOGHAUL_SERVER"), *t = getenv("LOGHAUL_TOKEN");
    c->server = s && *s ? s : "http://127.0.0.1:7071";
    c->token = t && *t ? t : "dev-token";
    c->color_opt = "auto";
}

void lh_cliq_free(struct lh_cliq *c)
{
    lh_buf_free(&c->text);
    lh_buf_free(&c->filters);
}

/* ---- filter expressions ------------------------------------------------- */

static int put_value(struct lh_buf *out, const char *v)
{
    return lh_buf_json_str(out, v, strlen(v));
}

int lh_cliq_filter_expr(const char *expr, struct lh_buf *out, struct lh_err *err)
{
    size_t n = strlen(expr);
    int rc = 0;
    /* FIELD? and !FIELD? */
    if (n >= 2 && expr[n - 1] == '?') {
        int neg = expr[0] == '!';
        const char *f = expr + neg;
        size_t fl = n - 1 - (size_t)neg;
        const char *opch = strpbrk(f, "=<>~^!");
        if (fl == 0 || (opch && opch < f + fl))
            return lh_err_set(err, LH_EINVAL, "bad filter '%s'", expr);
        rc |= lh_buf_puts(out, "{\"field\":");
        rc |= lh_buf_json_str(out, f, fl);
        rc |= lh_buf_printf(out, ",\"operator\":\"EXISTS\",\"value\":%s}",
                            neg ? "false" : "true");
        return rc ? LH_ENOMEM : 0;
    }
    /* the first operator character ends the field */
    size_t fl = strcspn(expr, "=<>~^!");
    if (fl == 0 || fl == n)
        return lh_err_set(err, LH_EINVAL, "bad filter '%s' (want FIELD=VALUE, FIELD>=VALUE, "
                          "FIELD?...)", expr);
    static const struct {
        const char *sym, *op;
    } ops[] = { { "!=", "NOT_EQUALS" }, { ">=", "GTE" }, { "<=", "LTE" }, { "^=", "PREFIX" },
                { "~=", "CONTAINS" }, { "=", "EQUALS" }, { ">", "GT" }, { "<", "LT" } };
    const char *rest = expr + fl, *op = NULL;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t sl = strlen(ops[i].sym);
        if (strncmp(rest, ops[i].sym, sl) == 0) {
            op = ops[i].op;
            rest += sl;
            break;
        }
    }
    if (!op)
        return lh_err_set(err, LH_EINVAL, "bad filter '%s': unknown operator", expr);
    rc |= lh_buf_puts(out, "{\"field\":");
    rc |= lh_buf_json_str(out, expr, fl);
    size_t rl = strlen(rest);
    if (strcmp(op, "EQUALS") == 0 && rl >= 2 && rest[0] == '[' && rest[rl - 1] == ']') {
        rc |= lh_buf_puts(out, ",\"operator\":\"IN\",\"value\":[");
        const char *p = rest + 1, *end = rest + rl - 1;
        int first = 1;
        while (p <= end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            if (!first)
                rc |= lh_buf_putc(out, ',');
            first = 0;
            rc |= lh_buf_json_str(out, p, (size_t)(e - p));
            p = e + 1;
        }
        rc |= lh_buf_puts(out, "]}");
        return rc ? LH_ENOMEM : 0;
    }
    rc |= lh_buf_printf(out, ",\"operator\":\"%s\",\"value\":", op);
    rc |= put_value(out, rest);
    rc |= lh_buf_putc(out, '}');
    return rc ? LH_ENOMEM : 0;
}

/* ---- options ------------------------------------------------------------ */

int lh_cliq_option(struct lh_cliq *c, int opt, const char *arg)
{
    struct lh_err err = { 0 };
    switch (opt) {
    case 's': c->server = arg; return 1;
    case 't': c->token = arg; return 1;
    case 'q': c->query_json = arg; return 1;
    case 'f':
        if (c->filters.len)
            lh_buf_putc(&c->filters, ',');
        if (lh_cliq_filter_expr(arg, &c->filters, &err) < 0) {
            fprintf(stderr, "loghaul %s: -f: %s\n", c->cmd, err.msg);
            return -1;
        }
        return 1;
    case 'o':
        if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0) {
            fprintf(stderr, "loghaul %s: -o: text or json, not '%s'\n", c->cmd, arg);
            return -1;
        }
        c->json = strcmp(arg, "json") == 0;
        return 1;
    case LH_CLIQ_SINCE: {
        int64_t ms;
        if (lh_conf_parse_duration_ms(arg, &ms) < 0 || ms <= 0) {
            fprintf(stderr, "loghaul %s: --since: not a duration: %s\n", c->cmd, arg);
            return -1;
        }
        c->since = arg;
        return 1;
    }
    case LH_CLIQ_FROM: c->from = arg; return 1;
    case LH_CLIQ_TO: c->to = arg; return 1;
    case LH_CLIQ_COLOR:
        if (strcmp(arg, "auto") && strcmp(arg, "always") && strcmp(arg, "never")) {
            fprintf(stderr, "loghaul %s: --color: auto, always or never\n", c->cmd);
            return -1;
        }
        c->color_opt = arg;
        return 1;
    case LH_CLIQ_CACERT: c->ca_file = arg; return 1;
    default: return 0;
    }
}

int lh_cliq_finish(struct lh_cliq *c, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (c->text.len)
            lh_buf_putc(&c->text, ' ');
        lh_buf_puts(&c->text, argv[i]);
    }
    if (c->query_json && (c->text.len || c->filters.len)) {
        fprintf(stderr, "loghaul %s: -q replaces words and -f filters: give one or the other\n",
                c->cmd);
        return -1;
    }
    const char *nc = getenv("NO_COLOR");
    if (strcmp(c->color_opt, "always") == 0)
        c->color = 1;
    else if (strcmp(c->color_opt, "auto") == 0)
        c->color = !c->json && isatty(STDOUT_FILENO) && !(nc && *nc);
    return 0;
}

int lh_cliq_query_object(const struct lh_cliq *c, struct lh_buf *out, struct lh_err *err)
{
    if (c->query_json)
        return lh_buf_puts(out, c->query_json);
    int rc = lh_buf_putc(out, '{');
    int first = 1;
    if (c->text.len) {
        rc |= lh_buf_puts(out, "\"full_text\":");
        rc |= lh_buf_json_str(out, c->text.data, c->text.len);
        first = 0;
    }
    if (c->filters.len) {
        rc |= lh_buf_printf(out, "%s\"filters\":[", first ? "" : ",");
        rc |= lh_buf_append(out, c->filters.data, c->filters.len);
        rc |= lh_buf_putc(out, ']');
        first = 0;
    }
    if (c->since || c->from || c->to) {
        rc |= lh_buf_printf(out, "%s\"time_range\":{", first ? "" : ",");
        int f2 = 1;
        if (c->since) {
            int64_t ms;
            lh_conf_parse_duration_ms(c->since, &ms);
            char ts[LH_TIME_RFC3339_SIZE];
            lh_time_format_rfc3339(lh_time_now_ns() - ms * LH_NS_PER_MS, 3, ts, sizeof(ts));
            rc |= lh_buf_printf(out, "\"start\":\"%s\"", ts);
            f2 = 0;
        } else if (c->from) {
            rc |= lh_buf_puts(out, "\"start\":");
            rc |= put_value(out, c->from);
            f2 = 0;
        }
        if (c->to) {
            rc |= lh_buf_printf(out, "%s\"end\":", f2 ? "" : ",");
            rc |= put_value(out, c->to);
        }
        rc |= lh_buf_putc(out, '}');
    }
    rc |= lh_buf_putc(out, '}');
    return rc ? lh_err_set(err, LH_ENOMEM, "out of memory") : 0;
}

const char *lh_cliq_auth(const struct lh_cliq *c, char *buf, size_t size)
{
    snprintf(buf, size, "Bearer %s", c->token);
    return buf;
}

/* ---- requests ----------------------------------------------------------- */

json_t *lh_cliq_post(struct lh_cliq *c, const char *path, const char *body, int *exit_code)
{
    return lh_cliq_call(c, "POST", path, body, exit_code);
}

json_t *lh_cliq_call(struct lh_cliq *c, const char *method, const char *path, const char *body,
                     int *exit_code)
{
    struct lh_http_client_config cc = { .timeout_ms = 120000, .accept_gzip = 1,
                                        .ca_file = (char *)c->ca_file };
    struct lh_http_client *hc = NULL;
    struct lh_err err = { 0 };
    *exit_code = 1;
    if (lh_http_client_create(&cc, &hc, &err) < 0) {
        fprintf(stderr, "loghaul %s: %s\n", c->cmd, err.msg);
        return NULL;
    }
    char auth[600], url[2048];
    size_t sl = strlen(c->server);
    while (sl > 0 && c->server[sl - 1] == '/')
        sl--;
    snprintf(url, sizeof(url), "%.*s%s", (int)sl, c->server, path);
    struct lh_http_header h[] = { { "Authorization", lh_cliq_auth(c, auth, sizeof(auth)) },
                                  { "Content-Type", "application/json" }, { NULL, NULL } };
    struct lh_http_request req = { .method = method, .url = url, .headers = h, .body = body,
                                   .body_len = body ? strlen(body) : 0 };
    struct lh_http_response resp = { 0 };
    json_t *j = NULL;
    if (lh_http_client_do(hc, &req, &resp, &err) < 0) {
        fprintf(stderr, "loghaul %s: %s\n", c->cmd, err.msg);
    } else {
        json_error_t je;
        j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
        if (resp.status != 200 && resp.status != 202) {
            json_t *e = json_object_get(j, "error");
            const char *msg = json_string_value(json_object_get(e, "message"));
            fprintf(stderr, "loghaul %s: %ld %s: %s\n", c->cmd, resp.status,
                    json_string_value(json_object_get(e, "code")) ? json_string_value(
                        json_object_get(e, "code")) : "error",
                    msg ? msg : (resp.body.data ? resp.body.data : ""));
            json_decref(j);
            j = NULL;
            *exit_code = resp.status >= 400 && resp.status < 500 ? 2 : 1;
        } else if (!j) {
            fprintf(stderr, "loghaul %s: the answer is not JSON: %s\n", c->cmd, je.text);
        } else {
            *exit_code = 0;
        }
    }
    lh_http_response_free(&resp);
    lh_http_client_destroy(hc);
    return j;
}

/* ---- printing ----------------------------------------------------------- */

static const char *level_color(const char *l)
{
    if (!l)
        return "";
    if (!strcmp(l, "FATAL") || !strcmp(l, "ERROR"))
        return "\033[1;31m";
    if (!strcmp(l, "WARN"))
        return "\033[33m";
    if (!strcmp(l, "INFO"))
        return "\033[32m";
    if (!strcmp(l, "DEBUG"))
        return "\033[36m";
    if (!strcmp(l, "TRACE"))
        return "\033[2m";
    return "";
}

static const char *sv(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *or_dash(const char *s) { return s ? s : "-"; }

void lh_cliq_print_hit(const struct lh_cliq *c, json_t *hit, FILE *out)
{
    if (c->json) {
        char *s = json_dumps(hit, JSON_COMPACT);
        if (s) {
            fprintf(out, "%s\n", s);
            free(s);
        }
        return;
    }
    const char *lvl = sv(hit, "level");
    json_t *md = json_object_get(hit, "metadata");
    const char *dim = c->color ? "\033[2m" : "", *reset = c->color ? "\033[0m" : "";
    fprintf(out, "%s%s%s %s%-5s%s %s", dim, or_dash(sv(hit, "timestamp")), reset,
            c->color ? level_color(lvl) : "", lvl ? lvl : "-", reset,
            or_dash(sv(hit, "service")));
    if (sv(md, "host"))
        fprintf(out, " %s%s%s", dim, sv(md, "host"), reset);
    const char *msg = sv(hit, "message");
    fputs(": ", out);
    for (const char *p = msg ? msg : ""; *p; p++)   /* one line per hit */
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, out);
    const char *extra[] = { "trace_id", "user_id" };
    for (size_t i = 0; i < 2; i++)
        if (sv(hit, extra[i]))
            fprintf(out, " %s%s=%s%s", dim, extra[i], sv(hit, extra[i]), reset);
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v) {
        if (strcmp(k, "host") == 0 || !json_is_string(v))
            continue;
        fprintf(out, " %s%s=%s%s", dim, k, json_string_value(v), reset);
    }
    fputc('\n', out);
}

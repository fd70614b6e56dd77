/* render.c - events as search hits (see render.h). */
#include "render.h"

#include <string.h>

#include "lh/time.h"

void lh_render_time(int64_t ts_ns, char *buf)
{
    int64_t frac = ts_ns % LH_NS_PER_SEC;
    if (frac < 0)
        frac += LH_NS_PER_SEC;
    int digits = frac % 1000000 == 0 ? 3 : frac % 1000 == 0 ? 6 : 9;
    if (lh_time_format_rfc3339(ts_ns, digits, buf, LH_TIME_RFC3339_SIZE) < 0)
        strcpy(buf, "1970-01-01T00:00:00.000Z");
}

static int put_str(struct lh_buf *b, const char *name, const char *v, int null_ok)
{
    if (!v && !null_ok)
        return 0;
    int rc = lh_buf_printf(b, ",\"%s\":", name);
    if (rc == 0)
        rc = v ? lh_buf_json_str(b, v, strlen(v)) : lh_buf_puts(b, "null");
    return rc;
}

static int meta_seen(const struct lh_event *ev, size_t i)
{
    const char *k = ev->meta[i].key;
    if ((ev->host && strcmp(k, "host") == 0) ||
        (ev->container_id && strcmp(k, "container_id") == 0))
        return 1;
    for (size_t j = 0; j < i; j++)
        if (ev->meta[j].key && ev->meta[j].value && strcmp(ev->meta[j].key, k) == 0)
            return 1;
    return 0;
}

int lh_render_hit(struct lh_buf *b, const struct lh_event *ev)
{
    size_t start = b->len;
    char ts[LH_TIME_RFC3339_SIZE];
    lh_render_time(ev->ts_ns, ts);
    int rc = lh_buf_puts(b, "{\"id\":");
    rc |= lh_buf_json_str(b, ev->id ? ev->id : "", ev->id ? strlen(ev->id) : 0);
    rc |= lh_buf_printf(b, ",\"timestamp\":\"%s\",\"level\":\"%s\"", ts, lh_level_name(ev->level));
    rc |= put_str(b, "service", ev->service, 1);
    rc |= put_str(b, "trace_id", ev->trace_id, 1);
    rc |= put_str(b, "user_id", ev->user_id, 1);
    rc |= put_str(b, "message", ev->message, 1);
    rc |= lh_buf_puts(b, ",\"metadata\":{");
    int first = 1;
    if (ev->host) {
        rc |= lh_buf_puts(b, "\"host\":");
        rc |= lh_buf_json_str(b, ev->host, strlen(ev->host));
        first = 0;
    }
    if (ev->container_id) {
        rc |= lh_buf_puts(b, first ? "\"container_id\":" : ",\"container_id\":");
        rc |= lh_buf_json_str(b, ev->container_id, strlen(ev->container_id));
        first = 0;
    }
    for (size_t i = 0; i < ev->nmeta; i++) {
        const struct lh_kv *kv = &ev->meta[i];
        if (!kv->key || !kv->value || meta_seen(ev, i))
            continue;
        if (!first)
            rc |= lh_buf_putc(b, ',');
        first = 0;
        rc |= lh_buf_json_str(b, kv->key, strlen(kv->key));
        rc |= lh_buf_putc(b, ':');
        rc |= lh_buf_json_str(b, kv->value, strlen(kv->value));
    }
    rc |= lh_buf_putc(b, '}');
    rc |= put_str(b, "span_id", ev->span_id, 0);
    rc |= put_str(b, "stream", ev->stream, 0);
    rc |= put_str(b, "region", ev->region, 0);
    if (ev->k8s_namespace || ev->k8s_pod || ev->k8s_container) {
        rc |= lh_buf_puts(b, ",\"k8s\":{");
        int f2 = 1;
        const char *names[3] = { "namespace", "pod", "container" };
        const char *vals[3] = { ev->k8s_namespace, ev->k8s_pod, ev->k8s_container };
        for (int i = 0; i < 3; i++) {
            if (!vals[i])
                continue;
            rc |= lh_buf_printf(b, "%s\"%s\":", f2 ? "" : ",", names[i]);
            rc |= lh_buf_json_str(b, vals[i], strlen(vals[i]));
            f2 = 0;
        }
        rc |= lh_buf_putc(b, '}');
    }
    rc |= put_str(b, "file", ev->file, 0);
    rc |= lh_buf_putc(b, '}');
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
        return LH_ENOMEM;
    }
    return 0;
}

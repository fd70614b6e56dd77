/* meta.c - Kubernetes path metadata and shipper_metadata (see meta.h). */
#include "meta.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies s[0..n) into dst (size cap); fails on empty or too long. */
static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return n > 0;
}

/* <pod>_<namespace>_<container>-<id>.log */
static int parse_containers_name(const char *base, struct lh_k8s_meta *out)
{
    size_t len = strlen(base);
    if (len < 5 || strcmp(base + len - 4, ".log") != 0)
        return -1;
    len -= 4;
    const char *u1 = memchr(base, '_', len);
    if (!u1)
        return -1;
    const char *rest = u1 + 1;
    const char *u2 = memchr(rest, '_', len - (size_t)(rest - base));
    if (!u2)
        return -1;
    const char *cont = u2 + 1;
    size_t clen = len - (size_t)(cont - base);
    /* The id follows the last '-' and is hex (64 digits from Docker/containerd). */
    const char *dash = NULL;
    for (size_t i = clen; i > 0; i--)
        if (cont[i - 1] == '-') {
            dash = cont + i - 1;
            break;
        }
    if (!dash || memchr(cont, '_', clen))
        return -1;
    const char *id = dash + 1;
    size_t idlen = clen - (size_t)(id - cont);
    if (!is_hex(id, idlen))
        return -1;
    struct lh_k8s_meta m;
    memset(&m, 0, sizeof(m));
    if (copy_part(m.pod, sizeof(m.pod), base, (size_t)(u1 - base)) < 0 ||
        copy_part(m.namespace_, sizeof(m.namespace_), rest, (size_t)(u2 - rest)) < 0 ||
        copy_part(m.container, sizeof(m.container), cont, (size_t)(dash - cont)) < 0 ||
        copy_part(m.container_id, sizeof(m.container_id), id, idlen) < 0)
        return -1;
    *out = m;
    return 0;
}

/* .../<namespace>_<pod>_<uid>/<container>/<restart>.log */
static int parse_pods_path(const char *path, struct lh_k8s_meta *out)
{
    const char *s3 = strrchr(path, '/');
    if (!s3 || s3 == path)
        return -1;
    const char *s2 = s3 - 1;
    while (s2 > path && *s2 != '/')
        s2--;
    if (*s2 != '/' || s2 == path)
        return -1;
    const char *s1 = s2 - 1;
    while (s1 > path && *s1 != '/')
        s1--;
    if (*s1 != '/')
        return -1;
    /* file: digits ".log" */
    const char *f = s3 + 1;
    size_t flen = strlen(f);
    if (flen < 5 || strcmp(f + flen - 4, ".log") != 0)
        return -1;
    for (size_t i = 0; i < flen - 4; i++)
        if (f[i] < '0' || f[i] > '9')
            return -1;
    const char *d = s1 + 1;
    size_t dlen = (size_t)(s2 - d);
    const char *u1 = memchr(d, '_', dlen);
    if (!u1)
        return -1;
    const char *pod = u1 + 1;
    const char *u2 = memchr(pod, '_', dlen - (size_t)(pod - d));
    if (!u2)
        return -1;
    const char *uid = u2 + 1;
    size_t uidlen = dlen - (size_t)(uid - d);
    if (memchr(uid, '_', uidlen))
        return -1;
    struct lh_k8s_meta m;
    memset(&m, 0, sizeof(m));
    if (copy_part(m.namespace_, sizeof(m.namespace_), d, (size_t)(u1 - d)) < 0 ||
        copy_part(m.pod, sizeof(m.pod), pod, (size_t)(u2 - pod)) < 0 ||
        copy_part(m.pod_uid, sizeof(m.pod_uid), uid, uidlen) < 0 ||
        copy_part(m.container, sizeof(m.container), s2 + 1, (size_t)(s3 - s2 - 1)) < 0)
        return -1;
    *out = m;
    return 0;
}

int lh_k8s_parse_path(const char *path, struct lh_k8s_meta *out)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (parse_containers_name(base, out) == 0)
        return 0;
    if (parse_pods_path(path, out) == 0)
        return 0;
    return LH_EINVAL;
}

int lh_k8s_from_file(const char *path, struct lh_k8s_meta *out)
{
    struct lh_k8s_meta a;
    int have = lh_k8s_parse_path(path, &a) == 0;
    char *real = realpath(path, NULL);
    if (real && strcmp(real, path) != 0) {
        struct lh_k8s_meta b;
        if (lh_k8s_parse_path(real, &b) == 0) {
            if (have) {
                /* The symlink name is authoritative; the target adds the pod uid. */
                if (!a.pod_uid[0])
                    memcpy(a.pod_uid, b.pod_uid, sizeof(a.pod_uid));
            } else {
                a = b;
                have = 1;
            }
        }
    }
    free(real);
    if (!have)
        return LH_EINVAL;
    *out = a;
    return 0;
}

int lh_shipper_meta_json(const struct lh_shipper_meta *m, struct lh_buf *out)
{
    const struct {
        const char *k, *v;
    } f[] = {
        { "host_id", m->host_id },
        { "cluster_name", m->cluster_name },
        { "region", m->region },
        { "agent_version", m->agent_version },
    };
    int rc = lh_buf_putc(out, '{');
    int first = 1;
    for (size_t i = 0; rc == 0 && i < sizeof(f) / sizeof(f[0]); i++) {
        if (!f[i].v)
            continue;
        if (!first)
            rc = lh_buf_putc(out, ',');
        first = 0;
        if (rc == 0)
            rc = lh_buf_json_str(out, f[i].k, strlen(f[i].k));
        if (rc == 0)
            rc = lh_buf_putc(out, ':');
        if (rc == 0)
            rc = lh_buf_json_str(out, f[i].v, strlen(f[i].v));
    }
    return rc ? rc : lh_buf_putc(out, '}');
}

int lh_host_id_default(char *buf, size_t n, struct lh_err *err)
{
    FILE *f = fopen("/etc/machine-id", "r");
    if (f) {
        char line[128];
        if (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0]) {
                fclose(f);
                snprintf(buf, n, "%s", line);
                return 0;
            }
        }
        fclose(f);
    }
    char host[HOST_NAME_MAX + 1];
    if (gethostname(host, sizeof(host)) < 0)
        return lh_err_errno(err, LH_EIO, errno, "gethostname");
    host[HOST_NAME_MAX] = '\0';
    snprintf(buf, n, "%s", host);
    return 0;
}

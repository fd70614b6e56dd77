/* meta.h - metadata loghaul-agent attaches to what it ships: Kubernetes
 * fields parsed from container log paths, and the static host metadata sent
 * once per batch as "shipper_metadata". Pure functions, any thread. */
#ifndef LH_AGENT_META_H
#define LH_AGENT_META_H

#include <stddef.h>

#include "lh/buf.h"
#include "lh/err.h"

/* Fields of a container log path. Strings are NUL-terminated, bounded by
 * Kubernetes' own limits (names 253, ids 64 hex digits). */
struct lh_k8s_meta {
    char pod[254];
    char namespace_[254];
    char container[254];
    char container_id[129];
    char pod_uid[64];         /* only from the /var/log/pods layout */
};

/* Parses a kubelet container log path, either
 *   .../containers/<pod>_<namespace>_<container>-<id>.log     (the symlinks), or
 *   .../pods/<namespace>_<pod>_<uid>/<container>/<restart>.log (their targets;
 *   no container id there).
 * Returns 0 with *out filled, or LH_EINVAL when path has neither shape. */
int lh_k8s_parse_path(const char *path, struct lh_k8s_meta *out);

/* Parses path, and if that fails and path is a symlink (chain), the resolved
 * target. A container id from the symlink name wins over the target's
 * lack of one. 0 or LH_EINVAL. */
int lh_k8s_from_file(const char *path, struct lh_k8s_meta *out);

/* Static host metadata, sent with every batch. Strings are not owned. */
struct lh_shipper_meta {
    const char *host_id;       /* NULL: /etc/machine-id, else the hostname */
    const char *cluster_name;  /* NULL: omitted */
    const char *region;        /* NULL: omitted */
    const char *agent_version; /* e.g. "loghaul-agent/0.1.0" */
};

/* Appends {"host_id":...,"cluster_name":...,"region":...,"agent_version":...}
 * (absent fields omitted) as one JSON object. */
int lh_shipper_meta_json(const struct lh_shipper_meta *m, struct lh_buf *out);

/* The default host id into buf: /etc/machine-id's content, else the
 * hostname. 0 or LH_EIO. */
int lh_host_id_default(char *buf, size_t n, struct lh_err *err);

#endif

/* sink_archive.h - the indexer's sink into the archive (lh/archive.h: a
 * local directory laid out like the bucket, or S3).
 *
 * Archive objects should be large (one per tenant and hour every minute or
 * so, not one per batch), yet the pipeline commits its bus position only
 * once a sink made the batch durable. The sink reconciles the two with a
 * local staging area, as Fluent Bit's S3 output does:
 *
 *   write   appends each event (bus JSON, one per line) to the staging file
 *           of its tenant and UTC hour (<staging_dir>/<uuid>.stage, whose
 *           first line names the tenant, hour and region) and fdatasyncs the
 *           files it touched: then the batch is durable and write returns 0.
 *           A failed append is cut off again (ftruncate) and LH_EUNAVAIL
 *           returned; when the staged bytes would pass max_staging (uploads
 *           are behind), LH_EFULL: the pipeline pauses.
 *   seal    a staging file is closed once it is `rollover` old or holds
 *           object_size bytes, and queued for upload.
 *   upload  a thread of the sink reads a sealed file, sorts its events by
 *           time, encodes them (Parquet or NDJSON+zstd, the backend's
 *           format), puts the object under
 *             <tenant>/year=/month=/day=/hour=/<region>_<host>_<uuid>.<ext>
 *           (uuid: the staging file's, so a repeated upload replaces the same
 *           object) and deletes the file. Failures are retried with backoff.
 *   start   staging files left by an earlier run are queued for upload, and
 *           the ids of their events remembered for `replay_window`: after a
 *           crash the bus delivers again what was not committed, and those
 *           events, staged already, are not staged twice (the archive holds
 *           each event once).
 *   destroy seals everything and keeps uploading for up to shutdown_upload;
 *           what is left stays staged for the next start.
 *
 * Threads: write, flush and destroy from the pipeline thread; ready from
 * any; the uploader is the sink's own. */
#ifndef LH_INDEXER_SINK_ARCHIVE_H
#define LH_INDEXER_SINK_ARCHIVE_H

#include <stdint.h>

#include "lh/archive.h"
#include "lh/conf.h"
#include "lh/err.h"
#include "lh/metrics.h"
#include "sink.h"

struct lh_sink_archive_config {
    struct lh_archive_config backend;    /* where objects go (dir or s3) and their format */
    char *staging_dir;
    int64_t rollover_ms;                 /* seal a staging file this long after it opened */
    uint64_t object_bytes;               /* ...or once it holds this many bytes */
    uint64_t max_staging_bytes;          /* staged and not yet uploaded, at most */
    char *region;                        /* region in object keys ("": the events') */
    char *host;                          /* host in object keys ("": this machine's name) */
    int64_t shutdown_upload_ms;          /* destroy: keep uploading this long */
    int64_t replay_window_ms;            /* remember ids of leftover staged events this long */
};

/* backend{...}, staging_dir, rollover, object_size, max_staging, region,
 * host, shutdown_upload, replay_window. */
extern const struct lh_opt lh_sink_archive_opts[];

/* Opens the backend and the staging directory (created when missing) and
 * starts the uploader, which first takes what an earlier run left staged.
 * cfg is copied. metrics may be NULL. */
int lh_sink_archive_create(const struct lh_sink_archive_config *cfg, const char *name,
                           struct lh_metrics *metrics, struct lh_sink **out,
                           struct lh_err *err);

struct lh_sink_archive_stats {
    uint64_t staged_bytes;               /* in staging files now */
    uint64_t staged_files;               /* open or waiting for upload */
    uint64_t objects;                    /* uploaded since create */
    uint64_t upload_errors;
};
void lh_sink_archive_stats(struct lh_sink *s, struct lh_sink_archive_stats *out);

/* Seals every staging file now (tests; flush seals by age). */
void lh_sink_archive_seal_all(struct lh_sink *s);

#endif

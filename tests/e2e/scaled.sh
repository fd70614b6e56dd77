#!/usr/bin/env bash
# tests/e2e/scaled.sh - the scaled-out deployment end to end, every daemon
# and service real: logwriter.py writes app-format lines (each with a unique
# seq=<n> and its write time) into 4 files at a steady rate, rotating them ->
# loghaul-agent -> loghaul-collector -> Kafka -> loghaul-indexer (parse,
# enrich, mask) -> OpenSearch (refresh 5 s) + S3 archive (MinIO, Parquet) ->
# loghaul-queryd (OpenSearch tier, S3 archive tier). Then, once the pipeline
# is quiet (polled, not slept):
#   check.py walks queryd's search cursor over ALL results: every seq exactly
#            once; lists and downloads every S3 object of the run and reads
#            them (pyarrow): every seq exactly once, before and after the
#            daemons' clean shutdown;
#   latency.py: files-to-search latency of every 50th line (p50/p99 per
#            phase, reported, never asserted; target p99 < 5 s).
# Per run a unique Kafka topic (+ .dlq), consumer group, OpenSearch index
# prefix and template, and tenant (the S3 key prefix <tenant>/); all are
# deleted at the end (LOGHAUL_KEEP_WORK=1 keeps them for a look).
# Default: 100,000 lines at 1,250 lines/s (~80 s; ~2 min in all).
# LOGHAUL_LONG=1: 10 minutes at 600 lines/s, then a 3x burst for 60 s (the
# rate is bounded by the full cursor walk afterwards: OpenSearch returns ~2,000
# hits/s here, and the whole test must end within the runner's 15 minutes;
# LOGHAUL_E2E_RATE=2000 with LOGHAUL_ITEST_TIMEOUT=2400 for the embedded rate).
# $LOGHAUL_E2E_RESULTS: the counts and latencies go there as JSON.
# LOGHAUL_E2E_OS_REFRESH: the indices' refresh_interval (default 5s).
# services: kafka opensearch s3
# long-variant: yes
. "$(dirname "$0")/../integration/lib.sh"
E2E_LONG_RATE=600
. "$(dirname "$0")/lib.sh"

for s in kafka opensearch s3; do   # started if needed, healthy (waits), never stopped here
    "$ROOT/tests/services/$s" start >"$WORK/service-$s.out" 2>&1 ||
        { cat "$WORK/service-$s.out"; fail "tests/services/$s start"; }
    eval "$("$ROOT/tests/services/$s" env)" || fail "tests/services/$s env"
done
BROKERS=${LOGHAUL_KAFKA_BROKERS:-127.0.0.1:9092}
OS=${LOGHAUL_OPENSEARCH_URL:-http://127.0.0.1:9200}
S3=${LOGHAUL_S3_ENDPOINT:-http://127.0.0.1:9000} BUCKET=${LOGHAUL_S3_BUCKET:-loghaul}
RUN="e2e-$$-$RANDOM"
TOPIC="$RUN" PREFIX="lh$RUN" TENANT="$RUN"

os_delete() {   # PATH: DELETE, again while OpenSearch answers neither 2xx nor 404 (60 s)
    local code end=$((SECONDS + 60))
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -XDELETE "$OS/$1")
        case "$code" in 2??|404) return 0 ;; esac
        [ $SECONDS -lt $end ] || { echo "cleanup: DELETE $OS/$1: HTTP $code" >&2; return 1; }
        sleep 1
    done
}
scaled_cleanup() {
    [ -n "${LOGHAUL_KEEP_WORK:-}" ] && { echo "kept: topic $TOPIC, indices $PREFIX-*, s3://$BUCKET/$TENANT/"; return; }
    "$BUILD/tests/kafka_topics" --brokers "$BROKERS" --delete "$TOPIC" "$TOPIC.dlq" ||
        echo "cleanup: could not delete Kafka topic $TOPIC" >&2
    os_delete "$PREFIX-*"
    os_delete "_index_template/$PREFIX"
    "$PY" "$E2E_DIR/check.py" --s3 "$S3" --bucket "$BUCKET" --prefix "$TENANT/" --rm-only \
        >/dev/null || echo "cleanup: could not delete s3://$BUCKET/$TENANT/" >&2
}
trap 'lh_cleanup; scaled_cleanup' EXIT

S3_YAML="{ endpoint: \"$S3\", bucket: $BUCKET, addressing: path, access_key: \"$AWS_ACCESS_KEY_ID\", secret_key: \"$AWS_SECRET_ACCESS_KEY\" }"
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: $TENANT, tokens: [e2e-token] } ]
bus:
  type: kafka
  topic: $TOPIC
  kafka: { brokers: "$BROKERS", delivery_timeout: 10s, linger: 5ms, compression: zstd }
fallback: { dir: $WORK/collector-fallback }
EOT
cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
drain_timeout: 20s
bus:
  type: kafka
  topic: $TOPIC
  dlq_topic: $TOPIC.dlq
  kafka: { brokers: "$BROKERS", client_id: loghaul-indexer-$RUN }
pipeline: { group: $RUN, max_batch: 5000, linger: 200ms, workers: 2, replay_topic: auto }
$(e2e_stages_yaml)
sinks:
  - name: opensearch
    type: opensearch
    opensearch:
      urls: ["$OS"]
      index_prefix: $PREFIX
      template: { name: $PREFIX, refresh_interval: ${LOGHAUL_E2E_OS_REFRESH:-5s}, shards: 1, replicas: 0 }
$(e2e_archive_sink_yaml "{ type: s3, format: parquet, s3: $S3_YAML }")
EOT
cat >"$WORK/queryd.yaml" <<EOT
$(e2e_queryd_head_yaml)
tiers:
  - { type: opensearch, max_age: 7d, opensearch: { urls: ["$OS"], index_prefix: $PREFIX } }
  - type: archive
    archive:
      type: s3
      s3: $S3_YAML
EOT

say "run $RUN: topic $TOPIC, indices $PREFIX-$TENANT-*, s3://$BUCKET/$TENANT/"
e2e_pipeline scaled $([ "$LONG" = 1 ] && echo 1800 || echo 180) \
    --s3 "$S3" --bucket "$BUCKET" --prefix "$TENANT/"

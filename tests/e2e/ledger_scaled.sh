#!/usr/bin/env bash
# The delivery ledger, scaled: logwriter.py -> agent -> collector -> Kafka ->
# indexer -> OpenSearch + S3 archive -> queryd. Once quiescent, `loghaul
# audit` must exit 0 with the exact counts per file (read, acknowledged,
# indexed, archived in S3); then D documents of one file are deleted from
# OpenSearch (search + _bulk delete) and `loghaul audit` must exit 1 naming
# that file with D missing. Private names per run (tenant,
# topic, group, index prefix, template); indices, template and archive
# objects are deleted at the end (~40 s).
# services: kafka opensearch s3
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/ledger_lib.sh"

N=3000 D=123
[ "$LONG" = 1 ] && N=60000
TAG="ledger-$$-$RANDOM"
TENANT="ledger$$"
OS=http://127.0.0.1:9200
S3=http://127.0.0.1:9000/loghaul
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/in" "$WORK/agent"

s3_cleanup() {  # every archive object of the run's tenant
    local keys
    keys=$(curl -s --aws-sigv4 aws:amz:us-east-1:s3 --user loghaul:loghaul-secret \
        "$S3?list-type=2&prefix=$TENANT/" | python3 -c '
import re, sys
print("\n".join(re.findall(r"<Key>([^<]*)</Key>", sys.stdin.read())))')
    for k in $keys; do   # '=' encoded: curl signs the path as given
        curl -s -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 --user loghaul:loghaul-secret \
            -X DELETE "$S3/${k//=/%3D}"
    done
}
cleanup_scaled() {
    lh_cleanup
    curl -s -o /dev/null -X DELETE "$OS/$TAG-*,$TAG.ledger?ignore_unavailable=true"
    curl -s -o /dev/null -X DELETE "$OS/_index_template/$TAG-template"
    s3_cleanup
}
trap cleanup_scaled EXIT

cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: $TENANT, tokens: [tok-$TAG] } ]
bus: { type: kafka, topic: $TAG, kafka: { brokers: 127.0.0.1:9092, delivery_timeout: 20s } }
EOT
cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus:
  type: kafka
  topic: $TAG
  dlq_topic: $TAG.dlq
  kafka: { brokers: 127.0.0.1:9092 }
pipeline: { group: $TAG, linger: 100ms }
sinks:
  - name: opensearch
    type: opensearch
    opensearch:
      urls: [$OS]
      index_prefix: $TAG
      template: { name: $TAG-template, refresh_interval: 1s, shards: 1, replicas: 0 }
  - name: archive
    type: archive
    archive:
      staging_dir: $WORK/staging
      rollover: 2s
      backend:
        type: s3
        format: parquet
        s3: { endpoint: http://127.0.0.1:9000, bucket: loghaul, region: us-east-1,
              addressing: path, access_key: loghaul, secret_key: loghaul-secret }
EOT
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: $TENANT, tokens: [tok-$TAG] } ]
tiers: [ { type: opensearch, opensearch: { urls: [$OS], index_prefix: $TAG } } ]
EOT
ledger_agent_yaml scaled-host "tok-$TAG" "$WORK/in/*.log"
AUDIT=("$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token "tok-$TAG" --since 2h
       --archive-settle 0)
ledger_start_all

say "writing $N lines into 3 files"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/in" --files 3 --lines "$N" --size 200 \
    --rotate-every 1000000000 >"$WORK/w.out" 2>&1 || { cat "$WORK/w.out"; fail "logwriter"; }
ledger_wait "$N" 90

say "audit of the quiescent pipeline"
ledger_expect_exact scaled-host "$WORK/in/app-0.log=$(( (N + 2) / 3 ))" \
    "$WORK/in/app-1.log=$(( (N + 1) / 3 ))" "$WORK/in/app-2.log=$(( N / 3 ))"

F="$WORK/in/app-1.log"
say "deleting $D documents of $F from OpenSearch"
# (_delete_by_query needs the reindex module, which a minimal node lacks:
# search the ids, then a _bulk of deletes)
curl -s -H 'Content-Type: application/json' "$OS/$TAG-*/_search" \
    -d "{\"size\":$D,\"_source\":false,\"query\":{\"term\":{\"file\":\"$F\"}}}" |
    python3 -c '
import json, sys
for h in json.load(sys.stdin)["hits"]["hits"]:
    print(json.dumps({"delete": {"_index": h["_index"], "_id": h["_id"]}}))' >"$WORK/del.ndjson"
del=$(curl -s -H 'Content-Type: application/x-ndjson' --data-binary @"$WORK/del.ndjson" \
    "$OS/_bulk?refresh=true" |
    python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin)["items"] if i["delete"].get("result") == "deleted"))')
[ "$del" = "$D" ] || fail "deleted $del documents, want $D"
ledger_expect_missing scaled-host "$F" "$D"
u=$("${AUDIT[@]}" --settle 0 --json | ledger_total unexplained)
[ "$u" = "$D" ] || fail "unexplained total $u, want $D"

stop_daemon "$APID"
stop_daemon "$QPID"
stop_daemon "$IPID"
stop_daemon "$CPID"
say "ok: audit exact on $N events through Kafka and OpenSearch (exit 0), catches $D deleted documents (exit 1)"

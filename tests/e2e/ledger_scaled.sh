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
cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$WORK/in/*.log]
  checkpoint: $WORK/agent/checkpoint.json
ship: { endpoints: [http://127.0.0.1:$CPORT], token: tok-$TAG }
buffer: { dir: $WORK/agent/buffer }
batch: { max_age: 200ms }
host_id: scaled-host
EOT

start_daemon collector "$WORK/collector.yaml" "$CPORT"
CPID=$DAEMON_PID
start_daemon indexer "$WORK/indexer.yaml" "$IPORT"
IPID=$DAEMON_PID
start_daemon queryd "$WORK/queryd.yaml" "$QPORT"
QPID=$DAEMON_PID
start_daemon agent "$WORK/agent.yaml" "$APORT"
APID=$DAEMON_PID

AUDIT=("$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token "tok-$TAG" --since 2h
       --archive-settle 0)
total() { python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"][sys.argv[1]])' "$1"; }

say "writing $N lines into 3 files"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/in" --files 3 --lines "$N" --size 200 \
    --rotate-every 1000000000 >"$WORK/w.out" 2>&1 || { cat "$WORK/w.out"; fail "logwriter"; }
end=$((SECONDS + 90))
while :; do
    j="$("${AUDIT[@]}" --settle 0 --json 2>"$WORK/audit.err")"
    if [ -n "$j" ] && [ "$(total acknowledged <<<"$j")" = "$N" ] &&
        [ "$(total indexed <<<"$j")" = "$N" ] && [ "$(total archived <<<"$j")" = "$N" ]; then
        break
    fi
    [ $SECONDS -ge $end ] && { echo "$j"; cat "$WORK/audit.err"; fail "not $N events acknowledged, indexed and archived within 90 s"; }
    sleep 1
done

say "audit of the quiescent pipeline"
"${AUDIT[@]}" --settle 0 >"$WORK/audit1.out" 2>&1
rc=$?
cat "$WORK/audit1.out"
[ "$rc" = 0 ] || fail "loghaul audit exited $rc on a quiescent run (want 0)"
"${AUDIT[@]}" --settle 0 --json >"$WORK/audit1.json" || fail "audit --json"
python3 - "$WORK/audit1.json" "$WORK" "$N" <<'PY' || fail "exact counts"
import json, sys
r = json.load(open(sys.argv[1]))
work, n = sys.argv[2], int(sys.argv[3])
got = {}
for w in r["windows"]:
    g = got.setdefault(w["file"], [0, 0, 0, 0, 0, 0])
    for i, k in enumerate(["read", "acknowledged", "indexed", "unexplained", "archived"]):
        g[i] += w[k]
    g[5] += w["archive"]["unexplained"]
want = {f"{work}/in/app-{i}.log": n // 3 + (1 if i < n % 3 else 0) for i in range(3)}
for f, c in want.items():
    assert got.get(f) == [c, c, c, 0, c, 0], (f, got.get(f), c)
assert set(got) == set(want) and r["ok"] is True, (got, r["totals"])
print("exact per-file counts:", {f.rsplit("/", 1)[1]: v for f, v in got.items()})
PY

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
"${AUDIT[@]}" --settle 0 >"$WORK/audit2.out" 2>&1
rc=$?
cat "$WORK/audit2.out"
[ "$rc" = 1 ] || fail "loghaul audit exited $rc after documents were deleted (want 1)"
grep -q "MISSING: host scaled-host file $F window .*: $D acknowledged" "$WORK/audit2.out" ||
    fail "the audit does not name $F with $D missing"
u=$("${AUDIT[@]}" --settle 0 --json | total unexplained)
[ "$u" = "$D" ] || fail "unexplained total $u, want $D"

stop_daemon "$APID"
stop_daemon "$QPID"
stop_daemon "$IPID"
stop_daemon "$CPID"
say "ok: audit exact on $N events through Kafka and OpenSearch (exit 0), catches $D deleted documents (exit 1)"

#!/usr/bin/env bash
# tests/security/pii.sh - e-mail addresses and card numbers never reach a
# sink, a dead letter or a daemon log unmasked.
# The corpus (pii_check.py gen): 5 e-mails, 15 Luhn-valid cards of 9 brands
# (plain, spaces, dashes; Amex/Diners 4-6-x), in plain messages, JSON lines
# (nested fields), structured ingest fields, JSON messages and metadata
# values; 45 events plus 2 bus values that are not events (dead letters).
# 1. Embedded: agent (no edge masking) -> collector -> spool -> indexer
#    (parse, enrich, mask) -> store + archive dirs (Parquet and NDJSON+zstd);
#    a direct ingest body; undecodable values put on the spool. Scanned for
#    the original values (pii_check.py scan: raw bytes, every zstd frame,
#    Parquet through pyarrow and duckdb): the store's files, queryd's
#    answers (match-all pages and a phrase search per value), both archive
#    directories and their staging, the dead-letter topic, every daemon log.
#    Zero hits; [EMAIL]/[CARD] present and every event found in each sink.
# 2. Edge masking: a second agent with mask.enabled ships other values: the
#    spool (what left the host) holds none of them, only placeholders.
# 3. Scaled: collector -> Kafka -> indexer -> OpenSearch + S3 (Parquet):
#    OpenSearch (a phrase query per value, and a match_all dump), the S3
#    objects (downloaded with curl --aws-sigv4, read with pyarrow and
#    duckdb), the Kafka dead-letter topic (undecodable values and a document
#    OpenSearch refuses: an immense trace_id term). The main Kafka topic
#    carries the values unmasked: the indexer masks after the bus (inside
#    the region, as DESIGN.md allows); reported, not asserted.
# services: kafka opensearch s3
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/seclib.sh"

PY=$(bash "$ROOT/tests/integration/venv.sh") || fail "python venv (pyarrow, duckdb)"
C="$WORK/corpus"
python3 "$ROOT/tests/security/pii_check.py" gen "$C" || fail "corpus"
NEVENTS=$(wc -l <"$C/tags.txt") NEDGE=$(wc -l <"$C/edge_tags.txt")
cat "$C/originals.txt" "$C/edge_originals.txt" >"$C/all_originals.txt"
cat "$C/tags.txt" "$C/edge_tags.txt" >"$C/all_tags.txt"
declare -a LEAKS=()

# scan LABEL ORIGINALS TAGS PATH...: no original value in PATHs; every tag
# (when TAGS is not -) found; placeholders present (when TAGS is not -).
scan() {
    local label="$1" orig="$2" tags="$3"
    shift 3
    local -a t=()
    [ "$tags" != - ] && t=(--tags "$tags" --min-placeholders 1)
    "$PY" "$ROOT/tests/security/pii_check.py" scan --originals "$orig" "${t[@]}" \
        --label "$label: " "$@" >"$WORK/scan.out" 2>&1
    local rc=$?
    cat "$WORK/scan.out"
    [ "$rc" = 0 ] || LEAKS+=("$label")
}

# ---------------------------------------------------------------- embedded
E="$WORK/embedded"
mkdir -p "$E/in-a" "$E/in-e" "$E/store"
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port) EPORT=$(free_port)
cat >"$E/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: piitest, tokens: [pii-token] } ]
bus: { type: spool, topic: logs, spool: { dir: $E/spool } }
EOT
archive_sink() {  # NAME FORMAT BACKEND-YAML
    echo "{ name: $1, type: archive, archive: { staging_dir: $E/stage-$1, rollover: 10m," \
        "backend: { format: $2, $3 } } }"
}
cat >"$E/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus: { type: spool, topic: logs, dlq_topic: logs.dlq, spool: { dir: $E/spool } }
pipeline: { group: pii-indexer, linger: 100ms, workers: 2 }
stages: [parse, enrich, mask]
parse: { patterns_dir: $ROOT/config/patterns }
sinks:
  - { name: store, type: store, store: { dir: $E/store } }
  - $(archive_sink parquet parquet "type: dir, dir: { path: $E/archive-parquet }")
  - $(archive_sink ndjson ndjson "type: dir, dir: { path: $E/archive-ndjson }")
EOT
cat >"$E/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: piitest, tokens: [pii-query-token] } ]
tiers: [ { type: store, store: { dir: $E/store } } ]
EOT
agent_yaml() {  # PORT INPUT-DIR STATE-DIR MASK
    cat <<EOT
listen: { address: 127.0.0.1:$1 }
tail: { include: [$2/*.log], checkpoint: $3/checkpoint.json, read_from: beginning }
ship: { endpoints: [http://127.0.0.1:$CPORT], token: pii-token }
buffer: { dir: $3/buffer }
mask: { enabled: $4 }
host_id: pii-host
EOT
}
agent_yaml "$APORT" "$E/in-a" "$E/agent-a" false >"$E/agent-a.yaml"
agent_yaml "$EPORT" "$E/in-e" "$E/agent-e" true >"$E/agent-e.yaml"

# values that are not events, on the spool before the collector owns it (one
# writer process per spool)
mapfile -t DL <"$C/dlq.txt"
"$BUILD/tests/bus_put" --bus spool --dir "$E/spool" --topic logs --tenant piitest "${DL[@]}" ||
    fail "bus_put"
start_daemon collector "$E/collector.yaml" "$CPORT" "$E/collector.log"
CPID=$DAEMON_PID
start_daemon indexer "$E/indexer.yaml" "$IPORT" "$E/indexer.log"
IPID=$DAEMON_PID
start_daemon queryd "$E/queryd.yaml" "$QPORT" "$E/queryd.log"
QPID=$DAEMON_PID
cp "$C/agent.log" "$E/in-a/app.log"
cp "$C/edge.log" "$E/in-e/app.log"
start_daemon agent "$E/agent-a.yaml" "$APORT" "$E/agent-a.log"
APID=$DAEMON_PID
start_daemon agent "$E/agent-e.yaml" "$EPORT" "$E/agent-e.log"
EPID=$DAEMON_PID
st=$(ingest "http://127.0.0.1:$CPORT" "X-Log-Shipper-Token: pii-token" "@$C/ingest.json")
[ "$st" = 200 ] || { cat "$WORK/last_body"; fail "ingest: HTTP $st"; }

WANT=$((NEVENTS + NEDGE))
all_searchable() {
    query "http://127.0.0.1:$QPORT" pii-query-token /v1/logs/search \
        '{"query":{},"pagination":{"limit":1000}}' "$E/search.json" >/dev/null
    [ "$(json "$E/search.json" 'j.get("total_hits")')" = "$WANT" ]
}
wait_for 60 "all $WANT events searchable" all_searchable
dead_letters() {
    curl -s "http://127.0.0.1:$IPORT/metrics" |
        awk '$1 ~ /^loghaul_indexer_dlq_total/ {n += $2} END {print n + 0}'
}
dlq_has_all() { [ "$(dead_letters)" -ge "${#DL[@]}" ]; }
wait_for 30 "the undecodable values in the dead-letter queue" dlq_has_all
say "embedded: $WANT events searchable, $(dead_letters) dead letters"

say "embedded: queryd, a phrase search for every original value"
python3 - "http://127.0.0.1:$QPORT" "$C/originals.txt" "$C/edge_originals.txt" \
    >"$E/phrases.out" <<'PY' || { cat "$E/phrases.out"; LEAKS+=("queryd phrase searches"); }
import json, sys, urllib.request
url = sys.argv[1]
def hits(text):
    body = json.dumps({"query": {"full_text": text}}).encode()
    req = urllib.request.Request(url + "/v1/logs/search", body,
                                 {"Authorization": "Bearer pii-query-token"})
    return json.load(urllib.request.urlopen(req))["total_hits"]
values = [l for f in sys.argv[2:] for l in open(f).read().splitlines() if l]
bad = [v for v in values if hits('"%s"' % v) != 0]
for v in bad:
    print("queryd: a phrase search for %r has hits" % v)
assert hits("piitag001") == 1, "a search for a tag finds its event"
print(len(values))
sys.exit(1 if bad else 0)
PY
n=$(tail -1 "$E/phrases.out")
say "  $n phrase searches: no hit (a tag search finds its event)"

# the archive sinks' staging files (rollover 10m: all still there)
scan "archive staging" "$C/all_originals.txt" "$C/all_tags.txt" "$E"/stage-*
stop_daemon "$APID"
stop_daemon "$EPID"
stop_daemon "$QPID"
stop_daemon "$CPID"
stop_daemon "$IPID"   # uploads what the archive sinks staged

say "embedded: scanning every sink, the dead letters and the logs"
scan "queryd answer" "$C/all_originals.txt" "$C/all_tags.txt" "$E/search.json"
scan "store files" "$C/all_originals.txt" "$C/all_tags.txt" "$E/store"
scan "archive parquet" "$C/all_originals.txt" "$C/all_tags.txt" "$E/archive-parquet"
scan "archive ndjson+zstd" "$C/all_originals.txt" "$C/all_tags.txt" "$E/archive-ndjson"
ls "$E"/archive-ndjson/piitest/year=*/month=*/day=*/hour=*/*.zst >/dev/null 2>&1 ||
    fail "no NDJSON+zstd archive object"
for f in "$E"/archive-ndjson/piitest/year=*/month=*/day=*/hour=*/*.zst; do
    zstd -dcq "$f" >>"$WORK/ndjson-zstd-d.txt" || fail "zstd -d $f"
done
scan "archive ndjson (zstd -d)" "$C/all_originals.txt" "$C/all_tags.txt" "$WORK/ndjson-zstd-d.txt"
scan "dead-letter topic" "$C/all_originals.txt" - "$E/spool/logs.dlq"
grep -qa '\[EMAIL\]\|\[CARD\]' -r "$E/spool/logs.dlq" || LEAKS+=("dead letters without placeholders")
scan "daemon logs" "$C/all_originals.txt" - "$E"/*.log

say "edge masking: what the masking agent sent (the spool) has none of its values"
scan "spool, edge agent's values" "$C/edge_originals.txt" "$C/edge_tags.txt" "$E/spool/logs"
"$PY" "$ROOT/tests/security/pii_check.py" scan --originals "$C/originals.txt" "$E/spool/logs" \
    >"$WORK/scan.out" 2>&1
unmasked=$(grep -c '^LEAK' "$WORK/scan.out")
say "  (the spool, between collector and indexer, holds $unmasked unmasked findings of the" \
    "agent without edge masking and of direct ingest: masking is in the indexer)"

# ------------------------------------------------------------------ scaled
RUN="pii$$$RANDOM"
TENANT="$RUN" TOPIC="lh-$RUN" DLQ="lh-$RUN.dlq" OS_PREFIX="lh-$RUN"
OS_URL=http://127.0.0.1:9200 S3_URL=http://127.0.0.1:9000 BUCKET=loghaul
S3_AUTH=(--aws-sigv4 "aws:amz:us-east-1:s3" --user loghaul:loghaul-secret)
s3_keys() {  # the archive objects of this run's tenant ('=' of keys is %3D in signed URLs)
    curl -s "${S3_AUTH[@]}" "$S3_URL/$BUCKET?list-type=2&prefix=$TENANT%2F" |
        grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'
}
scaled_cleanup() {
    curl -s -X DELETE "$OS_URL/$OS_PREFIX-*" >/dev/null
    curl -s -X DELETE "$OS_URL/_index_template/$OS_PREFIX" >/dev/null
    local k
    for k in $(s3_keys); do
        curl -s -X DELETE "${S3_AUTH[@]}" "$S3_URL/$BUCKET/${k//=/%3D}" >/dev/null
    done
    "$BUILD/tests/bus_put" --bus kafka --delete-topics "$TOPIC" "$DLQ" >/dev/null 2>&1
}
trap 'scaled_cleanup; lh_cleanup' EXIT
S="$WORK/scaled"
mkdir -p "$S"
CPORT=$(free_port) IPORT=$(free_port)
cat >"$S/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: $TENANT, tokens: [pii-token] } ]
bus: { type: kafka, topic: $TOPIC, kafka: { brokers: 127.0.0.1:9092 } }
EOT
cat >"$S/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus: { type: kafka, topic: $TOPIC, dlq_topic: $DLQ, kafka: { brokers: 127.0.0.1:9092 } }
pipeline: { group: $RUN, linger: 100ms, workers: 2 }
parse: { patterns_dir: $ROOT/config/patterns }
sinks:
  - { name: os, type: opensearch, opensearch: { urls: [$OS_URL], index_prefix: $OS_PREFIX,
      retry_timeout: 10s, template: { name: $OS_PREFIX, refresh_interval: 200ms } } }
  - { name: s3, type: archive, archive: { staging_dir: $S/stage, rollover: 1s,
      backend: { type: s3, format: parquet, s3: { endpoint: $S3_URL, bucket: $BUCKET,
      addressing: path, access_key: loghaul, secret_key: loghaul-secret } } } }
EOT
start_daemon collector "$S/collector.yaml" "$CPORT" "$S/collector.log"
CPID=$DAEMON_PID
start_daemon indexer "$S/indexer.yaml" "$IPORT" "$S/indexer.log"
IPID=$DAEMON_PID
# the agent's lines as raw_message records, the ingest body, and one event
# OpenSearch refuses (a trace_id over its 32766-byte term limit)
python3 - "$C" >"$S/lines.json" <<'PY'
import json, sys
lines = open(sys.argv[1] + "/agent.log").read().splitlines()
print(json.dumps({"log_records": [{"raw_message": l} for l in lines]}))
PY
python3 - "$C" >"$S/immense.json" <<'PY'
import json, sys
o = open(sys.argv[1] + "/originals.txt").read().splitlines()
print(json.dumps({"log_records": [{"raw_message": "piitag900 refused by opensearch: %s %s"
                                   % (o[2], o[7]), "trace_id": "t" * 40000}]}))
PY
for b in lines.json immense.json; do
    st=$(ingest "http://127.0.0.1:$CPORT" "X-Log-Shipper-Token: pii-token" "@$S/$b")
    [ "$st" = 200 ] || { cat "$WORK/last_body"; fail "scaled ingest $b: HTTP $st"; }
done
st=$(ingest "http://127.0.0.1:$CPORT" "X-Log-Shipper-Token: pii-token" "@$C/ingest.json")
[ "$st" = 200 ] || fail "scaled ingest: HTTP $st"
"$BUILD/tests/bus_put" --bus kafka --topic "$TOPIC" --tenant "$TENANT" "${DL[@]}" ||
    fail "bus_put kafka"
os_count() {
    curl -s -X POST "$OS_URL/$OS_PREFIX-*/_refresh" >/dev/null
    curl -s "$OS_URL/$OS_PREFIX-*/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", -1))'
}
os_all() { [ "$(os_count)" = "$NEVENTS" ]; }
wait_for 90 "$NEVENTS documents in OpenSearch" os_all
dlq3() { [ "$(dead_letters)" -ge $(( ${#DL[@]} + 1 )) ]; }
wait_for 60 "three dead letters (two undecodable, one refused by OpenSearch)" dlq3
stop_daemon "$IPID"   # uploads the staged archive objects
stop_daemon "$CPID"
say "scaled: $NEVENTS documents in OpenSearch, dead letters written, indexer stopped"

say "scaled: OpenSearch, a phrase query per value and a match_all dump"
python3 - "$OS_URL" "$OS_PREFIX" "$C/originals.txt" "$S/os-dump.json" <<'PY' || LEAKS+=("opensearch queries")
import json, sys, urllib.request
url, prefix, orig, dump = sys.argv[1:5]
def search(body):
    req = urllib.request.Request("%s/%s-*/_search" % (url, prefix), json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
bad = 0
values = [l for l in open(orig).read().splitlines() if l]
for v in values + ["piitag001"]:
    q = {"query": {"simple_query_string": {"query": '"%s"' % v, "fields": ["*"],
                                           "lenient": True}}, "size": 5}
    n = search(q)["hits"]["total"]["value"]
    if (n != 0) != (v == "piitag001"):
        print("opensearch: %r: %d hits" % (v, n))
        bad += 1
r = search({"query": {"match_all": {}}, "size": 1000})
json.dump(r, open(dump, "w"))
print("opensearch: %d phrase queries, %d unexpected; match_all dumped %d documents"
      % (len(values), bad, len(r["hits"]["hits"])))
sys.exit(1 if bad else 0)
PY
grep -v piitag900 "$C/tags.txt" >"$C/os_tags.txt"
scan "opensearch match_all" "$C/originals.txt" "$C/os_tags.txt" "$S/os-dump.json"

say "scaled: the S3 archive objects"
mkdir -p "$S/s3"
keys=$(s3_keys)
[ -n "$keys" ] || fail "no archive object under s3://$BUCKET/$TENANT/"
for k in $keys; do
    curl -sf "${S3_AUTH[@]}" -o "$S/s3/$(basename "$k")" "$S3_URL/$BUCKET/${k//=/%3D}" ||
        fail "GET $k"
done
say "  $(echo "$keys" | wc -l) object(s) downloaded"
echo piitag900 >>"$C/os_tags.txt"
scan "s3 archive" "$C/originals.txt" "$C/os_tags.txt" "$S/s3"

say "scaled: the Kafka dead-letter topic"
consume() {  # TOPIC OUT [FORMAT]: the whole topic (three tries: the broker is shared)
    local try
    for try in 1 2 3; do
        kcat -b 127.0.0.1:9092 -C -t "$1" -e -o beginning -q -f "${3:-%s\n}" >"$2" \
            2>"$S/kcat.err" && return 0
        sleep 1
    done
    cat "$S/kcat.err"
    return 1
}
consume "$DLQ" "$S/dlq.txt" 'headers=%h value=%s\n' || fail "kcat $DLQ"
ndl=$(grep -c '^headers=' "$S/dlq.txt")
[ "$ndl" -ge 3 ] || { cat "$S/dlq.txt" | cut -c1-300; fail "$ndl dead letters in $DLQ, want 3"; }
scan "kafka dead letters ($ndl)" "$C/originals.txt" - "$S/dlq.txt"
scan "scaled daemon logs" "$C/originals.txt" - "$S"/*.log
consume "$TOPIC" "$S/topic.txt"
"$PY" "$ROOT/tests/security/pii_check.py" scan --originals "$C/originals.txt" "$S/topic.txt" \
    >"$WORK/scan.out" 2>&1
say "  (the main Kafka topic holds $(grep -c '^LEAK' "$WORK/scan.out") unmasked findings:" \
    "masking happens in the indexer, after the bus)"

if [ "${#LEAKS[@]}" -gt 0 ]; then
    printf 'leak: %s\n' "${LEAKS[@]}"
    fail "${#LEAKS[@]} place(s) with original PII values"
fi
say "ok: no original e-mail or card number in store, archives (dir, S3), OpenSearch, queryd, dead letters, logs; edge masking holds"

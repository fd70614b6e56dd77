# shellcheck shell=bash
# tests/chaos/chaos_lib.sh - helpers for the fault-injection tests (sourced,
# not a test itself): the four daemons on private ports and directories
# (embedded default or scaled out to the services of tests/services/), the
# line generator (gen.py), the exact-count check through queryd (check.py),
# `loghaul audit` when the CLI has it, and the result line.
#
# After chaos_init FAULT: RUN (the run's word; every line carries it), INPUT
# (the agent's input dir), CPORT IPORT QPORT APORT, and *PID of each daemon.
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

CHAOS_DIR="$ROOT/tests/chaos"
TOKEN=dev-token

chaos_init() {  # FAULT
    FAULT="$1"
    RUN="chaos$$r$RANDOM"
    TENANT=demo
    INPUT="$WORK/input"
    mkdir -p "$INPUT" "$WORK/agent"
    CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
    CPID="" IPID="" QPID="" APID="" GPID=""
    T_START=$(date +%s.%N)
    FAULT_END=""
    # Knobs a test may set before chaos_configs.
    SPOOL_DIR="${SPOOL_DIR:-$WORK/spool}"
    STORE_DIR="${STORE_DIR:-$WORK/store}"
    COLLECTOR_URL="${COLLECTOR_URL:-http://127.0.0.1:$CPORT}"
    AGENT_BUFFER_MAX="${AGENT_BUFFER_MAX:-256MiB}"
    SPOOL_MAX="${SPOOL_MAX:-4GiB}"
    ROTATE_WAIT="${ROTATE_WAIT:-5s}"
}

# chaos_configs embedded|scaled: writes $WORK/{collector,indexer,queryd,agent}.yaml.
chaos_configs() {
    local mode="$1" stages
    stages="stages: [parse, enrich, mask]
parse: { patterns_dir: $ROOT/config/patterns }
enrich: { tags: { region: local } }
sinks:"
    if [ "$mode" = scaled ]; then
        eval "$("$ROOT/tests/services/kafka" env)"
        eval "$("$ROOT/tests/services/opensearch" env)"
        eval "$("$ROOT/tests/services/s3" env)"
        # A tenant of its own: the OpenSearch indices (<prefix>-<tenant>-day) and
        # the archive keys (<tenant>/year=...) of this run are its alone.
        TENANT="$RUN"
        OS_PREFIX="$RUN"
        TOPIC="$RUN"
        cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: $TENANT, tokens: [$TOKEN] } ]
bus:
  type: kafka
  topic: $TOPIC
  kafka: { brokers: "$LOGHAUL_KAFKA_BROKERS", delivery_timeout: 10s, linger: 5ms }
fallback: { dir: $WORK/collector-fallback, max_size: 1GiB, probe_interval: 1s }
EOT
        cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus:
  type: kafka
  topic: $TOPIC
  dlq_topic: $TOPIC.dlq
  kafka: { brokers: "$LOGHAUL_KAFKA_BROKERS", client_id: $RUN-indexer }
pipeline: { group: $RUN-indexer, max_batch: 5000, linger: 200ms, workers: 2 }
$stages
  - name: opensearch
    type: opensearch
    opensearch:
      urls: ["$LOGHAUL_OPENSEARCH_URL"]
      index_prefix: $OS_PREFIX
      template: { name: $OS_PREFIX-template, refresh_interval: 1s, shards: 1, replicas: 0 }
  - name: archive
    type: archive
    archive:
      staging_dir: $WORK/archive-staging
      rollover: 10s
      backend:
        type: s3
        format: parquet
        s3:
          endpoint: $LOGHAUL_S3_ENDPOINT
          bucket: $LOGHAUL_S3_BUCKET
          region: us-east-1
          addressing: path
          access_key: $AWS_ACCESS_KEY_ID
          secret_key: $AWS_SECRET_ACCESS_KEY
EOT
        cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: $TENANT, tokens: [$TOKEN] } ]
cursor: { key: chaos-test-cursor-key-0123456789 }
tiers:
  - type: opensearch
    max_age: 7d
    opensearch: { urls: ["$LOGHAUL_OPENSEARCH_URL"], index_prefix: $OS_PREFIX }
EOT
    else
        cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: $TENANT, tokens: [$TOKEN] } ]
bus: { type: spool, topic: logs, spool: { dir: $SPOOL_DIR, max_size: $SPOOL_MAX } }
EOT
        cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus: { type: spool, topic: logs, dlq_topic: logs.dlq, spool: { dir: $SPOOL_DIR } }
pipeline: { group: loghaul-indexer, max_batch: 5000, linger: 200ms, workers: 2 }
$stages
  - name: store
    type: store
    store: { dir: $STORE_DIR }
EOT
        cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: $TENANT, tokens: [$TOKEN] } ]
cursor: { key: chaos-test-cursor-key-0123456789 }
tiers: [ { type: store, store: { dir: $STORE_DIR } } ]
EOT
    fi
    cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$INPUT/*.log]
  checkpoint: $WORK/agent/checkpoint.json
  rotate_wait: $ROTATE_WAIT
ship:
  endpoints: [$COLLECTOR_URL]
  token: $TOKEN
  backoff_max: 2s
buffer: { dir: $WORK/agent/buffer, max_bytes: $AGENT_BUFFER_MAX, write_ahead: true }
batch: { max_age: 250ms }
host_id: chaos-agent
EOT
}

start_collector() { start_daemon collector "$WORK/collector.yaml" "$CPORT"; CPID=$DAEMON_PID; }
start_indexer() { start_daemon indexer "$WORK/indexer.yaml" "$IPORT"; IPID=$DAEMON_PID; }
start_queryd() { start_daemon queryd "$WORK/queryd.yaml" "$QPORT"; QPID=$DAEMON_PID; }
# The agent may run under a wrapper (ip netns exec ...): AGENT_WRAP.
start_agent() {
    if [ -n "${AGENT_WRAP:-}" ]; then
        # shellcheck disable=SC2086
        $AGENT_WRAP "$BUILD/loghaul-agent" -c "$WORK/agent.yaml" >>"$WORK/agent.log" 2>&1 &
        APID=$!
        LH_PIDS+=("$APID")
        local end=$((SECONDS + 30))
        # shellcheck disable=SC2086
        until $AGENT_WRAP curl -fs "http://127.0.0.1:$APORT/readyz" >/dev/null 2>&1; do
            kill -0 "$APID" 2>/dev/null && [ $SECONDS -lt $end ] ||
                { tail -n 30 "$WORK/agent.log" >&2; fail "loghaul-agent did not become ready"; }
            sleep 0.1
        done
    else
        start_daemon agent "$WORK/agent.yaml" "$APORT"
        APID=$DAEMON_PID
    fi
}
start_all() { start_collector; start_indexer; start_queryd; start_agent; }

# kill9 NAME: SIGKILL the daemon NAME (collector|indexer|queryd|agent).
kill9() {
    local var pid
    var="$(printf '%s' "${1:0:1}" | tr a-z A-Z)PID"
    pid="${!var}"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# metric PORT NAME [LABEL-SUBSTRING]: a value from a daemon's /metrics.
metric() {
    local wrap=""
    [ "$1" = "$APORT" ] && wrap="${AGENT_WRAP:-}"
    # shellcheck disable=SC2086
    $wrap curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
        awk -v n="$2" -v l="${3:-}" 'index($1, n) == 1 && (substr($1, length(n) + 1, 1) == "" ||
            substr($1, length(n) + 1, 1) == "{") && index($1, l) { s += $2; f = 1 }
            END { if (f) printf "%.0f\n", s }'
}

# gen_start LINES RATE [gen.py options...]: the generator in the background.
gen_start() {
    GEN_LINES="$1"
    local rate="$2"
    shift 2
    python3 "$CHAOS_DIR/gen.py" "$INPUT" --run "$RUN" --lines "$GEN_LINES" --rate "$rate" \
        --done "$WORK/gen.done" "$@" >"$WORK/gen.out" 2>&1 &
    GPID=$!
    LH_PIDS+=("$GPID")
}
gen_wait() {
    wait "$GPID" || { cat "$WORK/gen.out"; fail "generator failed"; }
    cat "$WORK/gen.out"
    GEN_END=$(date +%s.%N)
}

fault_end() { FAULT_END=$(date +%s.%N); }

# chaos_check [check.py options...]: the exact-count check, then the
# function named by $CHAOS_AFTER_CHECK (if any), then `loghaul audit` (when
# the CLI has it), then the result line; fails the test on any loss or
# visible duplicate. Recovery counts from the later of the last fault
# and the generator's last line.
chaos_check() {
    local from="${FAULT_END:-$T_START}"
    [ -n "${GEN_END:-}" ] && from=$(python3 -c "print(max($from, $GEN_END))")
    local rc=0
    python3 "$CHAOS_DIR/check.py" --url "http://127.0.0.1:$QPORT" --token "$TOKEN" \
        --run "$RUN" --expect "$GEN_LINES" --since "${T_START%.*}" --fault-end "$from" \
        --timeout "${CHECK_TIMEOUT:-300}" --json "$WORK/check.json" "$@" || rc=1
    if [ -n "${CHAOS_AFTER_CHECK:-}" ]; then "$CHAOS_AFTER_CHECK" || rc=1; fi
    chaos_audit || rc=1
    chaos_result
    [ "$rc" = 0 ] || fail "$FAULT: lines lost or duplicated, or a check failed (see above)"
}

chaos_audit() {
    "$BUILD/loghaul" audit --help >/dev/null 2>&1 || { say "audit: not available in this build"; return 0; }
    # Everything is searchable by now: what is still pending settles in seconds.
    "$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token "$TOKEN" --since 2h \
        --wait "${AUDIT_WAIT:-120s}" >"$WORK/audit.out" 2>&1
    local rc=$?
    cat "$WORK/audit.out"
    [ "$rc" = 0 ] || { echo "audit: loghaul audit exited $rc (want 0: nothing unexplained)" >&2; return 1; }
}

# The result line (the test's last line) and a JSON line in $LOGHAUL_CHAOS_RESULTS.
chaos_result() {
    python3 - "$WORK/check.json" "$FAULT" "${CHAOS_EXTRA:-}" "${LOGHAUL_CHAOS_RESULTS:-}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r = {"fault": sys.argv[2], **r}
if sys.argv[3]:
    r["notes"] = sys.argv[3]
if sys.argv[4]:
    with open(sys.argv[4], "a") as f:
        f.write(json.dumps(r) + "\n")
rec = "n/a" if r["recovery_s"] is None else f"{r['recovery_s']}s"
print(f"result: {r['fault']}: sent {r['sent']} found {r['found']} duplicates {r['duplicates']}"
      f" recovery {rec}" + (f" ({r['notes']})" if sys.argv[3] else ""))
PY
}

# ---- scaled deployment: outages of a service --------------------------------

# What a scaled run created in Kafka, OpenSearch and S3 goes at exit.
chaos_scaled_cleanup() {
    [ -n "${OS_PREFIX:-}" ] || return 0
    "$BUILD/tests/kafka_topics" --brokers "$LOGHAUL_KAFKA_BROKERS" --timeout-ms 20000 \
        --delete "$TOPIC" "$TOPIC.dlq" >/dev/null 2>&1 || echo "could not delete topic $TOPIC" >&2
    curl -s -o /dev/null --max-time 20 -X DELETE "$LOGHAUL_OPENSEARCH_URL/$OS_PREFIX-*"
    curl -s -o /dev/null --max-time 20 -X DELETE "$LOGHAUL_OPENSEARCH_URL/$OS_PREFIX.ledger"
    curl -s -o /dev/null --max-time 20 -X DELETE \
        "$LOGHAUL_OPENSEARCH_URL/_index_template/$OS_PREFIX-template"
    local key
    s3_keys "$TENANT/" | while read -r key; do
        s3_req -o /dev/null -X DELETE "$LOGHAUL_S3_ENDPOINT/$LOGHAUL_S3_BUCKET/${key//=/%3D}"
    done
}
s3_req() {
    curl -s --max-time 20 --aws-sigv4 "aws:amz:${AWS_DEFAULT_REGION:-us-east-1}:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}
s3_keys() {  # PREFIX ([A-Za-z0-9/]): object keys (first 1000)
    # SigV4 signs the query URI-encoded: the prefix's / goes as %2F.
    s3_req "$LOGHAUL_S3_ENDPOINT/$LOGHAUL_S3_BUCKET?list-type=2&prefix=${1//\//%2F}" |
        grep -o '<Key>[^<]*</Key>' | sed 's/<Key>//; s/<\/Key>//'
}
chaos_scaled_exit() {
    # A test cut short in the middle of an outage leaves the service running.
    if [ -n "${OUTAGE_DOWN:-}" ]; then
        "$ROOT/tests/services/$OUTAGE_DOWN" start >>"$WORK/services.log" 2>&1 ||
            echo "could not start $OUTAGE_DOWN again" >&2
    fi
    lh_cleanup_daemons
    chaos_scaled_cleanup
    lh_cleanup
}
# Daemons go first (the indexer must not recreate what the cleanup deletes):
# lh_cleanup's stopping of this script's daemons, the work dir kept for the
# final lh_cleanup.
lh_cleanup_daemons() { LOGHAUL_KEEP_WORK=1 lh_cleanup >/dev/null; }

# ingest_probe: one batch straight to the collector; prints the HTTP status.
ingest_probe() {
    local key
    key="$(python3 -c 'import uuid; print(uuid.uuid4())')"
    curl -s -o "$WORK/probe.out" -w '%{http_code}' --max-time 20 \
        -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: $key" \
        -H 'Content-Type: application/json' \
        -d "{\"shipper_metadata\":{\"host_id\":\"chaos-probe\"},\"log_records\":[{\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)\",\"raw_message\":\"outage probe ${RUN}probe\"}]}" \
        "http://127.0.0.1:$CPORT/v1/logs/ingest"
}

# chaos_outage SERVICE SECONDS: the scaled pipeline under a steady load; the
# service is stopped for SECONDS (tests/services/SERVICE stop|start, state
# kept) in the middle. During the outage the collector's ingest must keep
# answering 200 (probed every 5 s) and the agent keep getting acknowledgements.
chaos_outage() {
    local svc="$1" down="$2" rate="${OUTAGE_RATE:-400}" warm=10 after=10
    chaos_init "$svc-outage-${down}s"
    chaos_configs scaled
    trap chaos_scaled_exit EXIT
    start_all
    local n=$((rate * (warm + down + after)))
    gen_start "$n" "$rate"
    say "writing $n lines at $rate/s; $svc down for ${down}s after ${warm}s"
    sleep "$warm"
    # Everything flows before the fault: some lines searchable already.
    local a0 probes=0 bad=0 st q503=0 qst=""
    a0=$(metric "$APORT" loghaul_agent_lines_acked_total)
    OUTAGE_DOWN="$svc"
    "$ROOT/tests/services/$svc" stop >>"$WORK/services.log" 2>&1 || fail "$svc stop"
    local t_down=$SECONDS
    say "  $svc stopped"
    while [ $((SECONDS - t_down)) -lt "$down" ]; do
        sleep 5
        st=$(ingest_probe)
        probes=$((probes + 1))
        [ "$st" = 200 ] || { bad=$((bad + 1)); say "  ingest answered $st while $svc is down: $(head -c 200 "$WORK/probe.out")"; }
        if [ "$svc" = opensearch ]; then
            st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $TOKEN" \
                -d '{"query":{"full_text":"x"}}' "http://127.0.0.1:$QPORT/v1/logs/search")
            [ "$st" = 503 ] && q503=$((q503 + 1))
            qst="$qst $st"
        fi
    done
    local a1
    a1=$(metric "$APORT" loghaul_agent_lines_acked_total)
    say "  $svc starting again after $((SECONDS - t_down))s; ingest probes: $probes, not 200: $bad;" \
        "agent lines acknowledged during the outage: $((a1 - a0))"
    [ "$svc" = opensearch ] && say "  search answered 503 (backend down) to $q503 of $probes queries:$qst"
    [ "$svc" = kafka ] && say "  collector fallback spooled: $(metric "$CPORT" loghaul_collector_fallback_spooled_total)"
    case " $qst " in *" 200 "*) fail "search answered 200 while OpenSearch was down:$qst" ;; esac
    "$ROOT/tests/services/$svc" start >>"$WORK/services.log" 2>&1 || fail "$svc did not start again"
    OUTAGE_DOWN=""
    fault_end
    [ "$bad" = 0 ] || fail "ingest did not answer 200 while $svc was down ($bad of $probes probes)"
    [ $((a1 - a0)) -gt 0 ] || fail "the agent got no acknowledgement while $svc was down"
    gen_wait
    CHAOS_EXTRA="ingest 200 to $probes/$probes probes during the outage"
    CHAOS_AFTER_CHECK=archive_check
    chaos_check
}

# Every line also in the S3 archive exactly once (tests/e2e/check.py reads
# the Parquet objects under the run's tenant; they roll over every 10 s).
archive_check() {
    local py
    py=$(bash "$ROOT/tests/integration/venv.sh") || { echo "archive check: no venv" >&2; return 1; }
    seq 0 $((GEN_LINES - 1)) >"$WORK/ids"
    "$py" "$ROOT/tests/e2e/check.py" --ids-from "$WORK/ids" --s3 "$LOGHAUL_S3_ENDPOINT" \
        --bucket "$LOGHAUL_S3_BUCKET" --prefix "$TENANT/" --wait 120 --json "$WORK/archive.json" \
        >"$WORK/archive.out" 2>&1
    local rc=$?
    sed 's/^/archive: /' "$WORK/archive.out" | tail -n 5
    if [ "$rc" != 0 ]; then
        # Where do extra copies come from: the bus (the same line produced
        # twice) or the indexer (a message consumed twice)?
        local busdup
        busdup=$(kcat -C -b "$LOGHAUL_KAFKA_BROKERS" -t "$TOPIC" -e -q -f '%s\n' 2>/dev/null |
            sed -n 's/.*seq=\([0-9]*\).*/\1/p' | sort | uniq -d | wc -l)
        echo "archive: lines on the Kafka topic $TOPIC more than once: $busdup" >&2
    fi
    return "$rc"
}

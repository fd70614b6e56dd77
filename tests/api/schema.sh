#!/usr/bin/env bash
# tests/api/schema.sh - the daemons answer as docs/openapi.yaml says:
# schemathesis generates requests from the schema (valid and invalid ones)
# against a real loghaul-collector and loghaul-queryd (the embedded default:
# spool bus, an indexer writing the embedded store and a Parquet archive,
# all in $WORK) and checks that
# every answer has a documented status, content type, headers and a body
# that validates against the schema, and that no request is a 5xx other than
# a documented 503. Phases: with a valid token (deep paths), then without
# one (the 401s). Afterwards every daemon still answers /healthz, exits 0 on
# SIGTERM (leak-free under ASan) and logged no sanitizer report.
# Daemons: the ASan build when it is at least as new as $BUILD's, else $BUILD
# (LOGHAUL_API_BUILD overrides). Seed: LOGHAUL_API_SEED (fixed by default);
# LOGHAUL_API_EXAMPLES (per operation), LOGHAUL_API_CHECKS and
# LOGHAUL_API_KEEP_GOING=1 (all runs, then fail) for longer hunts.
# long-variant: yes
. "$(dirname "$0")/../integration/lib.sh"

SCHEMA="$ROOT/docs/openapi.yaml"
PY=$(bash "$ROOT/tests/integration/venv.sh") || fail "venv"
ST=$(bash "$ROOT/tests/integration/venv.sh" --bin st) || fail "schemathesis (st) is not in the venv"

DBUILD="${LOGHAUL_API_BUILD:-}"
if [ -z "$DBUILD" ]; then
    DBUILD="$BUILD"
    [ -x "$ROOT/build/asan/loghaul-queryd" ] && [ -x "$ROOT/build/asan/loghaul-collector" ] &&
        [ ! "$ROOT/build/asan/loghaul-queryd" -ot "$BUILD/loghaul-queryd" ] &&
        [ ! "$ROOT/build/asan/loghaul-collector" -ot "$BUILD/loghaul-collector" ] &&
        DBUILD="$ROOT/build/asan"
fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

EXAMPLES=25
[ "$LONG" = 1 ] && EXAMPLES=200
EXAMPLES="${LOGHAUL_API_EXAMPLES:-$EXAMPLES}"
SEED="${LOGHAUL_API_SEED:-20260523}"
TOKEN=api-schema-token-1
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port)

cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT, max_body: 1MiB }
drain_timeout: 2s
tenants:
  - { name: demo, tokens: [$TOKEN] }
  - { name: other, tokens: [api-schema-other-token] }
limits: { max_records: 1000, max_field_bytes: 64KiB }
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
drain_timeout: 2s
bus: { type: spool, topic: logs, dlq_topic: logs.dlq, spool: { dir: $WORK/spool } }
pipeline: { group: api-schema, linger: 50ms, flush_interval: 200ms }
stages: [parse, enrich, mask]
parse: { patterns_dir: $ROOT/config/patterns }
enrich: { ingest_delay: true }
sinks:
  - { name: store, type: store, store: { dir: $WORK/store } }
  - name: archive
    type: archive
    archive:
      staging_dir: $WORK/archive-staging
      rollover: 1s
      backend: { type: dir, format: parquet, dir: { path: $WORK/archive } }
EOT
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT, max_body: 1MiB }
drain_timeout: 2s
tenants: [ { name: demo, tokens: [$TOKEN] } ]
cursor: { key: api-schema-cursor-key-0123456789 }
limits: { timeout: 5s }
tiers: [ { type: store, store: { dir: $WORK/store } } ]
tail: { poll_interval: 50ms, heartbeat: 1s, max_duration: 300ms }
jobs: { max_running: 16, max_kept: 32 }
EOT

BUILD="$DBUILD"
say "daemons from $DBUILD; schemathesis $("$ST" --version 2>/dev/null | awk '{print $NF}')"
start_daemon collector "$WORK/collector.yaml" "$CPORT"; CPID=$DAEMON_PID
start_daemon indexer "$WORK/indexer.yaml" "$IPORT"; IPID=$DAEMON_PID
start_daemon queryd "$WORK/queryd.yaml" "$QPORT"; QPID=$DAEMON_PID

say "seed: 40 records through the collector, searchable in queryd"
"$PY" - "$CPORT" "$TOKEN" <<'PY' || fail "seed batch"
import json, sys, time, urllib.request
port, token = sys.argv[1], sys.argv[2]
now = time.time()
recs = []
for i in range(40):
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60 * i)) + ".%03dZ" % i
    r = {"timestamp": ts, "stream": "stdout", "container_id": "c_%d" % (i % 3),
         "raw_message": "%s [svc-%d] %s tr_%d usr_%d - request %d took %d ms" % (
             ts[:19].replace("T", " "), i % 4, ["INFO", "WARN", "ERROR", "DEBUG"][i % 4],
             i, i % 5, i, 10 * i)}
    if i % 5 == 0:
        r = {"timestamp": ts, "message": "structured %d" % i, "level": "error",
             "service": "checkout", "trace_id": "tr_s%d" % i, "span_id": "sp%d" % i,
             "k8s": {"namespace": "prod", "pod": "p-%d" % i},
             "metadata": {"duration_ms": i * 7, "ok": i % 2 == 0, "http": {"path": "/x"}}}
    recs.append(r)
body = json.dumps({"shipper_metadata": {"host_id": "api-host", "region": "eu"},
                   "log_records": recs}).encode()
req = urllib.request.Request("http://127.0.0.1:%s/v1/logs/ingest" % port, data=body,
                             headers={"Content-Type": "application/json",
                                      "X-Log-Shipper-Token": token})
ans = json.load(urllib.request.urlopen(req, timeout=10))
assert ans["accepted"] == 40, ans
PY
end=$((SECONDS + 30))
until curl -s -H "Authorization: Bearer $TOKEN" -d '{"query":{"time_range":{"start":0}}}' \
        "http://127.0.0.1:$QPORT/v1/logs/search" | grep -q '"total_hits":40,'; do
    [ $SECONDS -lt $end ] || fail "the seeded records did not become searchable"
    sleep 0.2
done

export SCHEMATHESIS_HOOKS=hooks
export PYTHONPATH="$ROOT/tests/api${PYTHONPATH:+:$PYTHONPATH}"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance
CHECKS=$CHECKS,response_headers_conformance,response_schema_conformance
CHECKS="${LOGHAUL_API_CHECKS:-$CHECKS}"
TOTAL=0 FAILED=""
# [PHASES=...] run NAME PORT TAG-REGEX [st options...] -- [har_summary checks...]:
# one schemathesis run; then what its answers were (by operation and status).
run() {
    local name="$1" port="$2" tags="$3" rc n
    shift 3
    local -a st=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do st+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    local out="$WORK/st-$name.out"
    # from $WORK: schemathesis keeps a .schemathesis/ cache in its directory
    (cd "$WORK" && "$ST" run "$SCHEMA" --url "http://127.0.0.1:$port" --include-tag-regex "$tags" \
        --checks "$CHECKS" --max-examples "$EXAMPLES" --seed "$SEED" \
        --generation-database none --request-timeout 10 --no-color \
        --suppress-health-check all --workers 1 --phases "${PHASES:-examples,coverage,fuzzing}" \
        --report har --report-har-path "$WORK/$name.har" "${st[@]}") >"$out" 2>&1
    rc=$?
    if [ "$rc" != 0 ]; then
        grep -v '^ *|' "$out" | tail -n 60 >&2
        [ -n "${LOGHAUL_API_KEEP_GOING:-}" ] && { FAILED="$FAILED $name"; return; }
        fail "schemathesis $name: exit $rc (full output in $out)"
    fi
    "$PY" "$ROOT/tests/api/har_summary.py" "$WORK/$name.har" "$SCHEMA" "$@" \
        >"$WORK/$name.summary" ||
        { cat "$WORK/$name.summary" >&2; fail "$name: the run did not reach what it must"; }
    cat "$WORK/$name.summary"
    n=$(tail -n 1 "$WORK/$name.summary" | awk '{print $1}')
    TOTAL=$((TOTAL + n))
    say "  $name: $n requests, every answer as the schema says"
}

say "collector with a token"
run collector-auth "$CPORT" '^(ingest|admin)$' \
    -H "X-Log-Shipper-Token: $TOKEN" -H "Authorization: Bearer $TOKEN" -- \
    --want-status POST /v1/logs/ingest 200 --want-status POST /v1/logs/ingest 400 \
    --want-status POST /v1/logs/ingest/ndjson 200 --want-status POST /v1/logs/ingest/ndjson 400 \
    --want-status GET /metrics 200 --want-status GET /readyz 200
say "queryd with a token"
# stateful: the search jobs' links (create, then get and delete that job)
PHASES=examples,coverage,fuzzing,stateful \
    run queryd-auth "$QPORT" '^(search|admin)$' -H "Authorization: Bearer $TOKEN" -- \
    --want-status POST /v1/logs/search 200 --want-status POST /v1/logs/search 400 \
    --want-status POST /v1/logs/aggregate 200 --want-status POST /v1/logs/aggregate 400 \
    --want-status GET /v1/logs/tail 200 --want-status GET /v1/logs/tail 400 \
    --want-status POST /v1/logs/search/jobs 202 --want-status POST /v1/logs/search/jobs 400 \
    --want-status GET '/v1/logs/search/jobs/{job_id}' 200 \
    --want-status DELETE '/v1/logs/search/jobs/{job_id}' 200 \
    --want-status GET /healthz 200
say "collector and queryd without a token: 401 (or 413/431 from the HTTP layer first)"
run collector-anon "$CPORT" '^ingest$' --generation-with-security-parameters false -- \
    --only-status POST /v1/logs/ingest 401,413 --only-status POST /v1/logs/ingest/ndjson 401,413
run queryd-anon "$QPORT" '^search$' --generation-with-security-parameters false -- \
    --only-status POST /v1/logs/search 401,413 --only-status POST /v1/logs/aggregate 401,413 \
    --only-status GET /v1/logs/tail 401,431 --only-status POST /v1/logs/search/jobs 401,413 \
    --only-status GET '/v1/logs/search/jobs/{job_id}' 401

[ -z "$FAILED" ] || fail "schemathesis found failures in:$FAILED"

say "every daemon survived: alive, /healthz, clean exit, no sanitizer report"
for d in collector:$CPORT:$CPID indexer:$IPORT:$IPID queryd:$QPORT:$QPID; do
    IFS=: read -r name port pid <<<"$d"
    kill -0 "$pid" 2>/dev/null || fail "loghaul-$name died"
    [ "$(curl -s "http://127.0.0.1:$port/healthz")" = ok ] || fail "$name: /healthz"
done
for d in collector:$CPID queryd:$QPID indexer:$IPID; do
    IFS=: read -r name pid <<<"$d"
    stop_daemon "$pid"
    if grep -En 'AddressSanitizer|LeakSanitizer|runtime error|Assertion|Aborted' \
            "$WORK/$name.log" >&2; then
        fail "$name: sanitizer or abort in its log"
    fi
done
say "ok: $TOTAL schemathesis requests against collector and queryd conform to docs/openapi.yaml"

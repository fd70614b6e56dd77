# tests/e2e/lib.sh - what the end-to-end tests share (source it after
# tests/integration/lib.sh; not executable on purpose: it is no test).
# Sets PHASES (the load: 100,000 lines at 1,250 lines/s, or with
# LOGHAUL_LONG=1 10 minutes at E2E_LONG_RATE (default 2,000) lines/s then
# 60 s at 3x; env LOGHAUL_E2E_RATE, LOGHAUL_E2E_LINES), the four ports and
# the input dirs.
#   e2e_pipeline MODE WAIT ARCHIVE-ARGS...  the whole test once the caller
#                         wrote $WORK/{collector,indexer,queryd}.yaml: agent
#                         config, daemons, load, checks (search waiting up to
#                         WAIT s; the archive with check.py's ARCHIVE-ARGS),
#                         clean stop, archive again, result line
#   e2e_run URL TOKEN     the load: logwriter.py (PHASES, FILES, SIZE) into
#                         $WORK/input with the latency watcher on queryd at URL
#   e2e_check NAME ARGS   tests/e2e/check.py on the expected ids; fails the test
#                         on a missing or duplicate id
#   e2e_metrics NAME:PORT...  saves each daemon's /metrics, prints the counters
#                         that explain a result (lines, duplicates, sink times)
#   e2e_finish MODE       the result line and $LOGHAUL_E2E_RESULTS (JSON)
E2E_DIR="$ROOT/tests/e2e"
PY=$(bash "$ROOT/tests/integration/venv.sh") || fail "tests/integration/venv.sh"
FILES=${LOGHAUL_E2E_FILES:-4} SIZE=200 SAMPLE_EVERY=50
T_START=$SECONDS
if [ "$LONG" = 1 ]; then
    RATE=${LOGHAUL_E2E_RATE:-${E2E_LONG_RATE:-2000}}
    PHASES="$RATE:$((RATE * 600)):steady,$((RATE * 3)):$((RATE * 180)):burst"
else
    RATE=${LOGHAUL_E2E_RATE:-1250}
    PHASES="$RATE:${LOGHAUL_E2E_LINES:-100000}:steady"
fi
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/input" "$WORK/agent"

# e2e_warmup URL TOKEN: one line (no seq: check.py counts it as foreign)
# through the whole pipeline before the measured load, polled until queryd
# returns it, so that the latencies are those of a running pipeline, not of
# its first start (Kafka topic created by the first produce, the consumer
# group joining it, the first daily index). Sets WARMUP_S.
e2e_warmup() {
    local url="$1" token="$2" t0 end now
    t0=$(date +%s%N)
    end=$((SECONDS + 180))
    printf '%s [e2e-gen] INFO tr_warmup usr_0 - e2e warmup line lhwarmup\n' \
        "$(date -u '+%Y-%m-%d %H:%M:%S.%6N')" >>"$WORK/input/warmup.log"
    until curl -s -H "Authorization: Bearer $token" -d '{"query":{"full_text":"lhwarmup"}}' \
            "$url/v1/logs/search" 2>/dev/null | grep -q '"total_hits":1,'; do
        [ $SECONDS -lt $end ] || { tail -n 20 "$WORK"/*.log >&2; fail "the warm-up line never became searchable"; }
        sleep 0.1
    done
    now=$(date +%s%N)
    WARMUP_S=$(awk -v d=$((now - t0)) 'BEGIN {printf "%.2f", d / 1e9}')
    say "warm-up line searchable after ${WARMUP_S} s (cold start)"
}

e2e_run() {
    local url="$1" token="$2"
    e2e_warmup "$url" "$token"
    "$PY" "$E2E_DIR/latency.py" --queryd "$url" --token "$token" --samples "$WORK/samples.tsv" \
        --done "$WORK/writer.done" --timeout 120 --json "$WORK/latency.json" \
        >"$WORK/latency.out" 2>&1 &
    LAT_PID=$!
    LH_PIDS+=("$LAT_PID")
    local lines=0 p
    for p in ${PHASES//,/ }; do lines=$((lines + $(cut -d: -f2 <<<"$p"))); done
    LINES=$lines
    say "writing $LINES lines into $FILES files (phases rate:lines:name $PHASES), rotating" \
        "every $((LINES / 20 < 5000 ? LINES / 20 : 5000)) lines; every ${SAMPLE_EVERY}th line timed"
    python3 "$ROOT/tests/integration/logwriter.py" "$WORK/input" --files "$FILES" --size "$SIZE" \
        --format app --phases "$PHASES" --rotate-every $((LINES / 20 < 5000 ? LINES / 20 : 5000)) \
        --checkpoint "$WORK/agent/checkpoint.json" --expected "$WORK/expected.tsv" \
        --sample-every "$SAMPLE_EVERY" --samples "$WORK/samples.tsv" >"$WORK/writer.out" 2>&1 &
    local wpid=$!
    LH_PIDS+=("$wpid")
    local t0=$SECONDS
    while kill -0 "$wpid" 2>/dev/null; do
        for p in "${E2E_DAEMONS[@]}"; do
            kill -0 "$p" 2>/dev/null || { tail -n 20 "$WORK"/*.log >&2; fail "a daemon died (pid $p)"; }
        done
        sleep 1
    done
    wait "$wpid" || { cat "$WORK/writer.out"; fail "logwriter"; }
    WRITE_S=$((SECONDS - t0))
    touch "$WORK/writer.done"
    cat "$WORK/writer.out"
    say "waiting for every timed line to be searchable (latency watcher)"
    wait "$LAT_PID"
    cat "$WORK/latency.out"
}

e2e_check() {
    local name="$1"
    shift
    "$PY" "$E2E_DIR/check.py" --ids-from "$WORK/expected.tsv" --json "$WORK/check-$name.json" "$@" \
        | sed "s/^check archive:/check $name:/"
    [ "${PIPESTATUS[0]}" = 0 ] || fail "$name: not every line exactly once (see above)"
}

e2e_metrics() {
    local d
    for d in "$@"; do
        curl -s "http://127.0.0.1:${d#*:}/metrics" >"$WORK/metrics-${d%%:*}.txt"
    done
    "$PY" - "$WORK" "$@" <<'PY'
import re, sys
work = sys.argv[1]
want = ("lines_read_total", "lines_acked_total", "lines_dropped_total", "lost_bytes_total",
        "loss_windows_total", "duplicate_batches_total", "rejects_total", "fallback_spooled_total",
        "consumed_total", "written_total", "duplicates_total", "dlq_total", "sink_errors_total",
        "parse_failures_total")
for d in sys.argv[2:]:
    name = d.split(":")[0]
    vals, hist = {}, {}
    for line in open(f"{work}/metrics-{name}.txt"):
        m = re.match(r"loghaul_[a-z]+_([a-z_]+?)(\{[^}]*\})? ([-0-9.e+]+)$", line.strip())
        if not m:
            continue
        key, labels, v = m.group(1), m.group(2) or "", float(m.group(3))
        if key in want:
            k = key + (labels if key == "written_total" else "")
            vals[k] = vals.get(k, 0) + v
        for suf in ("_sum", "_count"):
            if key.endswith("_seconds" + suf):
                lab = re.sub(r',?le="[^"]*"', "", labels)
                hist.setdefault(key[:-len(suf)] + lab, {})[suf] = v
    parts = [f"{k} {v:.0f}" for k, v in sorted(vals.items())]
    parts += [f"{k} mean {h['_sum'] / h['_count'] * 1000:.0f} ms ({h['_count']:g})"
              for k, h in sorted(hist.items()) if h.get("_count")]
    print(f"metrics {name}: " + ", ".join(parts))
PY
}

e2e_finish() {
    local mode="$1" line
    line=$("$PY" - "$mode" "$WORK" "$LINES" "$FILES" "$WRITE_S" "$((SECONDS - T_START))" \
        "${LOGHAUL_E2E_RESULTS:-}" "$WARMUP_S" "$PHASES" <<'PY'
import json, sys
mode, work, lines, files, write_s, total_s, out, warmup_s, phases = sys.argv[1:10]
lat = json.load(open(f"{work}/latency.json"))
res = {"test": f"e2e/{mode}", "lines": int(lines), "files": int(files), "phases": phases,
       "write_s": int(write_s), "runtime_s": int(total_s), "cold_start_s": float(warmup_s),
       "latency": lat}
for name in ("search", "archive"):
    res[name] = json.load(open(f"{work}/check-{name}.json"))[
        "search" if name == "search" else "archive"]
if out:
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
phases = [k for k, v in lat.items() if isinstance(v, dict)]
fmt = lambda x: "n/a" if x is None else f"{x:.2f}"
l = "; ".join(f"{p} p50 {fmt(lat[p]['p50_s'])} s p99 {fmt(lat[p]['p99_s'])} s" for p in phases)
s, a = res["search"], res["archive"]
print(f"ok: {mode}: {lines} lines, search {s['distinct']}/{s['expected']} and archive "
      f"{a['distinct']}/{a['expected']} ({a['objects']} objects) exactly once; latency {l}; "
      f"cold start {warmup_s} s; {total_s} s")
PY
    ) || fail "results"
    [ -n "${LOGHAUL_E2E_RESULTS:-}" ] && say "results written to $LOGHAUL_E2E_RESULTS"
    echo "$line"
}

# Config pieces both deployments share (printed for the caller's heredocs).
e2e_stages_yaml() {
    printf '%s\n' "stages: [parse, enrich, mask]" \
        "parse: { patterns_dir: $ROOT/config/patterns }" \
        "enrich: { tags: { region: local, env: e2e } }" "mask: { emails: true, cards: true }"
}
e2e_archive_sink_yaml() {  # BACKEND: the flow-style backend section
    printf '%s\n' "  - name: archive" "    type: archive" "    archive:" \
        "      staging_dir: $WORK/archive-staging" "      rollover: 10s" "      host: e2e-host" \
        "      backend: $1"
}
e2e_queryd_head_yaml() {   # listen, tenant $TENANT, cursor key
    printf '%s\n' "listen: { address: 127.0.0.1:$QPORT }" \
        "tenants: [ { name: $TENANT, tokens: [e2e-token] } ]" \
        "cursor: { key: e2e-cursor-key-$RANDOM$RANDOM$RANDOM$RANDOM }"
}

e2e_pipeline() {
    local mode="$1" wait="$2" p
    shift 2
    cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$WORK/input/*.log]
  checkpoint: $WORK/agent/checkpoint.json
  rotate_wait: 2s
ship: { endpoints: ["http://127.0.0.1:$CPORT"], token: e2e-token }
buffer: { dir: $WORK/agent/buffer }
batch: { max_bytes: 1MiB, max_age: 1s, compression: gzip }
host_id: e2e-host
EOT
    start_daemon collector "$WORK/collector.yaml" "$CPORT"
    CPID=$DAEMON_PID
    start_daemon indexer "$WORK/indexer.yaml" "$IPORT"
    IPID=$DAEMON_PID
    start_daemon queryd "$WORK/queryd.yaml" "$QPORT"
    QPID=$DAEMON_PID
    start_daemon agent "$WORK/agent.yaml" "$APORT"
    APID=$DAEMON_PID
    E2E_DAEMONS=("$CPID" "$IPID" "$QPID" "$APID")
    e2e_run "http://127.0.0.1:$QPORT" e2e-token
    say "checking search (cursor walk over every hit) and the archive (live)"
    e2e_check search --queryd "http://127.0.0.1:$QPORT" --token e2e-token --wait "$wait"
    e2e_check archive-live "$@" --wait 90
    e2e_metrics "agent:$APORT" "collector:$CPORT" "indexer:$IPORT"
    say "stopping the daemons (SIGTERM: drain, archive staging uploaded)"
    for p in "$APID" "$CPID" "$IPID" "$QPID"; do stop_daemon "$p"; done
    e2e_check archive "$@"
    e2e_finish "$mode"
}

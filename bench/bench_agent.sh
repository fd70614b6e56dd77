#!/usr/bin/env bash
# bench_agent.sh - loghaul-agent shipping the generated files (10 files, one
# format each, Java stack traces joined by `multiline: java`) to a real
# loghaul-collector on the spool bus over loopback: MB/s from the moment the
# files appear until the last record is durable on the bus, MB per agent
# CPU-second and peak RSS (both from /proc), and RSS while idle.
# Baselines in the same run: `cat` of the same files (MB per CPU-second of
# just reading them) and the collector alone (ingest_load, from
# bench_collector in the same run).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap stop_all_bg EXIT

W="$WORK/agent"
BYTES=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$FILES_MANIFEST")
LINES=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"])' "$FILES_MANIFEST")
RECORDS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$FILES_MANIFEST")
MB=$(calc "$BYTES / 1e6")

write_agent_config() {   # FILE ADMIN_PORT COLLECTOR_PORT
    cat >"$1" <<EOF
listen:
  address: 127.0.0.1:$2
log:
  level: warn
tail:
  include: [$W/input/*.log]
  checkpoint: $W/agent/checkpoint.json
  multiline: java
  scan_interval: 250ms
ship:
  endpoints: [http://127.0.0.1:$3]
  token: bench-token
buffer:
  dir: $W/agent/buffer
  max_bytes: 1GiB
batch:
  max_bytes: 1MiB
  max_age: 1s
  compression: gzip
EOF
}

one_run() {   # RUN
    local r=$1
    rm -rf "$W" && mkdir -p "$W/input" "$W/agent"
    local cport aport
    cport=$(free_port)
    aport=$(free_port)
    write_collector_config "$W/collector.yaml" "$cport" spool "$W/spool"
    write_agent_config "$W/agent.yaml" "$aport" "$cport"
    start_collector "$W/collector.yaml" "$cport" "$W/collector.log"
    start_bg "$W/agent.log" "$BUILD/loghaul-agent" -c "$W/agent.yaml"
    local apid=$BG_PID
    wait_http "http://127.0.0.1:$aport/readyz" 30 || { log "agent not ready"; tail "$W/agent.log" >&2; return 1; }
    sleep 0.5
    local idle c0 t0 t1 n=0 url="http://127.0.0.1:$aport/metrics"
    idle=$(rss_mb "$apid")
    c0=$(cpu_s "$apid")
    [ "$r" = 1 ] && sample_series "http://127.0.0.1:$cport/metrics" loghaul_collector_bytes_decoded_total 1e6 \
        "$OUT/series-agent.dat"
    # The files appear at once (same file system: a rename per file).
    t0=$(date +%s.%N)
    for f in "$FILES_DIR"/*.log; do ln "$f" "$W/input/" 2>/dev/null || cp "$f" "$W/input/"; done
    local deadline=$((SECONDS + 600)) curl_="http://127.0.0.1:$cport/metrics"
    while :; do
        n=$(metric_sum "$curl_" loghaul_bus_produced_messages_total)
        [ "${n%.*}" -ge "$RECORDS" ] && break
        kill -0 "$apid" 2>/dev/null || { log "agent died"; tail "$W/agent.log" >&2; return 1; }
        ((SECONDS < deadline)) || { log "timeout: $n of $RECORDS records acknowledged"; return 1; }
        sleep 0.05
    done
    t1=$(date +%s.%N)
    ACKED=$(metric "$url" loghaul_agent_lines_acked_total)
    local c1 hwm
    c1=$(cpu_s "$apid")
    hwm=$(hwm_mb "$apid")
    [ "$r" = 1 ] && { stop_pid "$SAMPLER_PID" 2; plot throughput series-agent.dat "agent -> collector (spool): MB/s decoded at the collector, run 1"; }
    stop_pid "$apid" 20
    stop_pid "$CPID" 20
    local secs
    secs=$(calc "$t1 - $t0")
    emit agent.mb_s "$(calc "$MB / $secs")" "MB/s"
    emit agent.lines_s "$(calc "$LINES / $secs")" "lines/s"
    emit agent.mb_s_per_cpu "$(calc "$MB / max($c1 - $c0, 1e-3)")" "MB per CPU-second"
    emit agent.rss_mb "$hwm" "MB"
    emit baseline.agent_idle_rss_mb "$idle" "MB"
    # Baseline: reading the same files with cat (page cache warm, as for the agent).
    "$BB/runstat" --out "$W/cat.stat" -- sh -c "cat '$FILES_DIR'/*.log >/dev/null"
    emit baseline.cat_mb_s_per_cpu "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(float(sys.argv[2]) / max(d["user_s"] + d["sys_s"], 1e-4))' "$W/cat.stat" "$MB")" "MB per CPU-second"
}

for r in $(seq "$RUNS"); do
    export RUN_NO=$r
    log "run $r/$RUNS: $MB MB in 10 files, $RECORDS records"
    one_run "$r"
done
note "Agent: tail + multiline java + batch (1 MiB) + gzip level 1 + HTTP to a collector on the spool bus (fsync'd), all on the same 2-core machine. $LINES lines in $RECORDS records; the run ends when the collector has put all $RECORDS records on the bus (loghaul_bus_produced_messages_total; the agent's loghaul_agent_lines_acked_total read $ACKED then)."
rm -rf "$W"

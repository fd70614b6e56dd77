#!/usr/bin/env bash
# bench_e2e.sh - the whole pipeline, from files on disk to searchable.
#
# Embedded default: loghaul-agent (tailing the generated files, multiline
# java) -> loghaul-collector -> spool -> loghaul-indexer (parse, enrich,
# mask) -> embedded store. Sustained MB/s and lines/s from the moment the
# files appear until every record is counted by a store reader; visibility
# latency of probe lines (written to a tailed file 10 times a second during
# the load) until a full-text search through loghaul-queryd returns them;
# CPU seconds per raw GB and peak RSS of each daemon from /proc.
# Scaled out: the same with the collector and the indexer on the real Kafka
# and the indexer writing to the real OpenSearch (tests/services); searchable
# means counted by OpenSearch after its refresh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'stop_all_bg; rm -rf "$WORK/e2e"' EXIT

W="$WORK/e2e"
TENANT=bench

if ! have_daemon indexer; then
    skip "e2e.*" "loghaul-indexer is not on main yet (branch indexer): no pipeline to run end to end"
    exit 0
fi
QUERYD=0
have_daemon queryd && QUERYD=1

write_indexer_config() {   # FILE PORT spool DIR | kafka TOPIC ; sink store DIR | opensearch PREFIX
    local f=$1 port=$2 bus=$3 where=$4 sink=$5 sdir=$6
    {
        echo "listen:"
        echo "  address: 127.0.0.1:$port"
        echo "log:"
        echo "  level: warn"
        echo "drain_timeout: 10s"
        echo "bus:"
        if [ "$bus" = spool ]; then
            echo "  type: spool"
            echo "  topic: logs"
            echo "  dlq_topic: logs.dlq"
            echo "  spool:"
            echo "    dir: $where"
            echo "    max_size: 16GiB"
            echo "    retention_size: 16GiB"
        else
            echo "  type: kafka"
            echo "  topic: $where"
            echo "  dlq_topic: $where.dlq"
            echo "  kafka:"
            echo "    brokers: $KAFKA_BROKERS"
        fi
        echo "pipeline:"
        echo "  group: lh-bench-$RANDOM$RANDOM"
        echo "  max_batch: 5000"
        echo "  linger: 200ms"
        echo "  workers: 2"
        echo "stages: [parse, enrich, mask]"
        echo "parse:"
        echo "  patterns_dir: $ROOT/config/patterns"
        echo "enrich:"
        echo "  tags:"
        echo "    region: bench"
        echo "mask:"
        echo "  emails: true"
        echo "  cards: true"
        echo "sinks:"
        if [ "$sink" = store ]; then
            echo "  - name: store"
            echo "    type: store"
            echo "    store:"
            echo "      dir: $sdir"
            # the generated data is dated 2026-05-23 on: past the default 7 d
            # retention, which would drop it at the first pass (30 s)
            echo "      retention: 3650d"
        else
            echo "  - name: opensearch"
            echo "    type: opensearch"
            echo "    opensearch:"
            echo "      urls: [$OS_URL]"
            echo "      index_prefix: $sdir"
            echo "      bulk_max_bytes: 5MiB"
            echo "      concurrency: 2"
            echo "      template:"
            echo "        name: $sdir"
            echo "        refresh_interval: 5s"
            echo "        shards: 1"
            echo "        replicas: 0"
        fi
    } >"$f"
}

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
  max_bytes: 2GiB
batch:
  max_bytes: 1MiB
  max_age: 1s
  compression: gzip
EOF
}

# The probe writer: a line in the seed's app format every 100 ms, stamped
# with the time it was written; "<seq> <sent_ns>" of each goes to SENT. (The
# line carries no nanosecond number: 19 digits may pass the Luhn check and be
# masked as a card number.)
start_probes() {   # FILE SENT
    cat >"$W/probes.py" <<'PY'
import sys, time
path, sent = sys.argv[1], sys.argv[2]
seq = 0
with open(path, "a") as f, open(sent, "w") as s:
    while True:
        ns = time.time_ns()
        t = time.gmtime(ns // 10**9)
        f.write(time.strftime("%Y-%m-%d %H:%M:%S", t) + ".%03d" % (ns // 10**6 % 1000) +
                f" [lh-probe] INFO tr_{seq:032x} usr_0 - lhprobe seq={seq}\n")
        f.flush()
        s.write(f"{seq} {ns}\n")
        s.flush()
        seq += 1
        time.sleep(0.1)
PY
    start_bg "$W/probes.log" python3 "$W/probes.py" "$1" "$2"
    PROBE_PID=$BG_PID
}

write_queryd_config() {   # FILE PORT store DIR | opensearch PREFIX
    {
        echo "listen:"
        echo "  address: 127.0.0.1:$2"
        echo "log:"
        echo "  level: warn"
        echo "tenants:"
        echo "  - name: $TENANT"
        echo "    tokens: [bench-token]"
        echo "cursor:"
        echo "  key: bench-cursor-key-0123456789abcdef"
        echo "tiers:"
        echo "  - type: $3"
        echo "    max_age: 0"
        if [ "$3" = store ]; then
            echo "    store:"
            echo "      dir: $4"
        else
            echo "    opensearch:"
            echo "      urls: [$OS_URL]"
            echo "      index_prefix: $4"
        fi
    } >"$1"
}

os_count() {   # INDEX PATTERN
    curl -s "$OS_URL/$1/_count?ignore_unavailable=true&allow_no_indices=true" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))' 2>/dev/null || echo 0
}

# Visibility of the probes sent between T0 and T1 (epoch seconds): p50, p99,
# and how many were never seen.
visibility() {   # SENT SEEN T0 T1 [LATFILE LABEL]
    python3 - "$@" <<'PY'
import sys
sent_f, seen_f, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
sent = {}
for line in open(sent_f):
    p = line.split()
    if len(p) == 2 and t0 <= int(p[1]) / 1e9 <= t1:
        sent[int(p[0])] = int(p[1])
seen = {}
for line in open(seen_f):
    p = line.split()
    if len(p) == 2:
        seen.setdefault(int(p[0]), int(p[1]))
lat = sorted((seen[s] - sent[s]) / 1e9 for s in sent if s in seen)
if len(sys.argv) > 5:
    with open(sys.argv[5], "a") as o:
        for x in lat:
            o.write(f"{sys.argv[6]} {x:.3f}\n")
lost = sum(1 for s in sent if s not in seen)
if not lat:
    print("nan nan", lost, 0)
else:
    pct = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1) + 0.5))]
    print(pct(0.5), pct(0.99), lost, len(lat))
PY
}

one_run() {   # MODE(embedded|scaled) RUN
    local mode=$1 r=$2
    rm -rf "$W" && mkdir -p "$W/input" "$W/agent"
    local cport aport iport prefix="" topic=""
    cport=$(free_port)
    aport=$(free_port)
    iport=$(free_port)
    if [ "$mode" = embedded ]; then
        write_collector_config "$W/collector.yaml" "$cport" spool "$W/spool"
        write_indexer_config "$W/indexer.yaml" "$iport" spool "$W/spool" store "$W/store"
    else
        topic="lh-bench-e2e-$$-$r"
        prefix="lhbench-e2e-$$-$r"
        write_collector_config "$W/collector.yaml" "$cport" kafka "$KAFKA_BROKERS" "$topic"
        write_indexer_config "$W/indexer.yaml" "$iport" kafka "$topic" opensearch "$prefix"
    fi
    write_agent_config "$W/agent.yaml" "$aport" "$cport"
    start_collector "$W/collector.yaml" "$cport" "$W/collector.log"
    start_bg "$W/indexer.log" "$BUILD/loghaul-indexer" -c "$W/indexer.yaml"
    local ipid=$BG_PID
    wait_http "http://127.0.0.1:$iport/readyz" 90 || { log "indexer not ready"; tail -20 "$W/indexer.log" >&2; return 1; }
    start_bg "$W/agent.log" "$BUILD/loghaul-agent" -c "$W/agent.yaml"
    local apid=$BG_PID
    wait_http "http://127.0.0.1:$aport/readyz" 30 || { log "agent not ready"; tail "$W/agent.log" >&2; return 1; }
    # Searchable = returned by loghaul-queryd's search API (by the store or
    # OpenSearch directly when queryd is not built).
    local qpid="" qport=""
    if [ "$QUERYD" = 1 ]; then
        qport=$(free_port)
        if [ "$mode" = embedded ]; then
            write_queryd_config "$W/queryd.yaml" "$qport" store "$W/store"
        else
            write_queryd_config "$W/queryd.yaml" "$qport" opensearch "$prefix"
        fi
        start_bg "$W/queryd.log" "$BUILD/loghaul-queryd" -c "$W/queryd.yaml"
        qpid=$BG_PID
        wait_http "http://127.0.0.1:$qport/readyz" 30 || { log "queryd not ready"; tail "$W/queryd.log" >&2; return 1; }
    fi
    start_probes "$W/input/probe.log" "$W/probes.sent"
    if [ -n "$qpid" ]; then
        start_bg "$W/watch.log" python3 "$ROOT/bench/search_client.py" watch \
            --url "http://127.0.0.1:$qport" --token bench-token --out "$W/probes.seen"
    elif [ "$mode" = embedded ]; then
        start_bg "$W/watch.log" "$BB/stages" watch --dir "$W/store" --tenant "$TENANT" --out "$W/probes.seen"
    else
        start_bg "$W/watch.log" python3 "$ROOT/bench/search_client.py" os-watch \
            --url "$OS_URL" --prefix "$prefix" --out "$W/probes.seen"
    fi
    WATCH_PID=$BG_PID
    local series="$OUT/series-e2e-$mode.dat"
    [ "$r" = 1 ] && sample_series "http://127.0.0.1:$iport/metrics" loghaul_indexer_consumed_bytes_total 1e6 "$series"
    sleep 1.5   # the pipeline idles with probes flowing
    local ca0 cc0 ci0 t0 t1 n=0
    ca0=$(cpu_s "$apid"); cc0=$(cpu_s "$CPID"); ci0=$(cpu_s "$ipid")
    t0=$(date +%s.%N)
    for f in "$DATASET"/*.log; do ln "$f" "$W/input/" 2>/dev/null || cp "$f" "$W/input/"; done
    local deadline=$((SECONDS + ${E2E_TIMEOUT:-900})) dayidx=""
    [ "$mode" = scaled ] && dayidx="$prefix-$TENANT-$(python3 -c "import time,sys; print(time.strftime('%Y.%m.%d', time.gmtime(int(sys.argv[1]) // 10**9)))" "$START_NS")"
    while :; do
        if [ "$mode" = embedded ]; then
            n=$("$BB/stages" count --dir "$W/store" --tenant "$TENANT" --start-ns "$START_NS" \
                --end-ns "$((END_NS + 1))" 2>/dev/null || echo 0)
        else
            n=$(os_count "$dayidx")
        fi
        [ "$n" -ge "$RECORDS" ] && break
        for p in "$apid" "$CPID" "$ipid"; do
            kill -0 "$p" 2>/dev/null || { log "a daemon died"; tail -5 "$W"/*.log >&2; return 1; }
        done
        ((SECONDS < deadline)) || { log "timeout: $n of $RECORDS records searchable"; tail -5 "$W"/*.log >&2; return 1; }
        sleep 0.2
    done
    t1=$(date +%s.%N)
    local ca1 cc1 ci1
    ca1=$(cpu_s "$apid"); cc1=$(cpu_s "$CPID"); ci1=$(cpu_s "$ipid")
    # The probes written during the load: wait until each was found (or the
    # timeout: those count as lost).
    stop_pid "$PROBE_PID" 5
    local vis_deadline=$((SECONDS + ${E2E_VIS_WAIT:-$([ "$mode" = embedded ] && echo 15 || echo 45)}))
    while ((SECONDS < vis_deadline)); do
        [ "$(visibility "$W/probes.sent" "$W/probes.seen" "$t0" "$t1" | cut -d' ' -f3)" = 0 ] && break
        sleep 0.5
    done
    emit "e2e.$mode.rss_mb.agent" "$(hwm_mb "$apid")" "MB"
    emit "e2e.$mode.rss_mb.collector" "$(hwm_mb "$CPID")" "MB"
    emit "e2e.$mode.rss_mb.indexer" "$(hwm_mb "$ipid")" "MB"
    [ -n "$qpid" ] && emit "e2e.$mode.rss_mb.queryd" "$(hwm_mb "$qpid")" "MB"
    [ "$r" = 1 ] && { stop_pid "$SAMPLER_PID" 2; plot throughput "series-e2e-$mode.dat" "end to end ($mode): MB/s consumed by the indexer, run 1"; }
    stop_pid "$WATCH_PID" 5
    [ -n "$qpid" ] && stop_pid "$qpid" 10
    stop_pid "$apid" 20
    stop_pid "$ipid" 30
    stop_pid "$CPID" 20
    local secs gb
    secs=$(calc "$t1 - $t0")
    gb=$(calc "$MB / 1000")
    emit "e2e.$mode.mb_s" "$(calc "$MB / $secs")" "MB/s"
    emit "e2e.$mode.lines_s" "$(calc "$LINES / $secs")" "lines/s"
    emit "e2e.$mode.cpu_s_per_gb.agent" "$(calc "($ca1 - $ca0) / $gb")" "CPU-s per GB"
    emit "e2e.$mode.cpu_s_per_gb.collector" "$(calc "($cc1 - $cc0) / $gb")" "CPU-s per GB"
    emit "e2e.$mode.cpu_s_per_gb.indexer" "$(calc "($ci1 - $ci0) / $gb")" "CPU-s per GB"
    local p50 p99 lost nseen
    local latf=""
    [ "$r" = 1 ] && latf="$OUT/latency-visibility.dat"
    read -r p50 p99 lost nseen < <(visibility "$W/probes.sent" "$W/probes.seen" "$t0" "$t1" $latf ${latf:+"$mode"})
    if [ "$p50" != nan ]; then
        emit "e2e.$mode.visibility_p50_s" "$p50" "s"
        emit "e2e.$mode.visibility_p99_s" "$p99" "s"
    fi
    emit "e2e.$mode.probes_lost" "$lost" "probes"
    if [ "$mode" = scaled ]; then
        curl -s -XDELETE "$OS_URL/$prefix-*" >/dev/null || true
        curl -s -XDELETE "$OS_URL/_index_template/$prefix" >/dev/null || true
    fi
}

: >"$OUT/latency-visibility.dat"
# dataset SIZE SEED: 10 files of generated logs, cached under $WORK/gen;
# sets DATASET and the manifest's numbers.
dataset() {
    DATASET="$WORK/gen/e2e-$1-s$2-$(md5sum <"$ROOT/bench/gen.c" | cut -c1-8)"
    if [ ! -s "$DATASET.json" ]; then
        rm -rf "$DATASET"
        "$BB/gen" --bytes "$1" --seed "$2" --files 10 --out "$DATASET" --manifest "$DATASET.json"
    fi
    read -r START_NS END_NS RECORDS LINES BYTES < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(m["start_ns"], m["end_ns"], m["records"], m["lines"], m["bytes"])' "$DATASET.json")
    MB=$(calc "$BYTES / 1e6")
}

dataset "${E2E_EMBEDDED_SIZE:-$([ "$QUICK" = 1 ] && echo 30M || echo "$SIZE")}" "$((SEED + 1))"
for r in $(seq "$RUNS"); do
    export RUN_NO=$r
    log "embedded run $r/$RUNS: $MB MB in 10 files, $RECORDS records"
    one_run embedded "$r"
done
note "Embedded: $MB MB ($RECORDS records, $LINES lines) in 10 files (in the quick run the pipeline's ~1 s latency is a visible part of the MB/s); agent batches of 1 MiB or 1 s, indexer batches of 5000 or 200 ms, 2 workers; everything on this one 2-core machine. Visibility: probe lines written every 100 ms during the load, found by a full-text search through loghaul-queryd's API polled every 100 ms (queryd's CPU is that polling: not reported)."

if ! wait_service kafka "$SERVICE_WAIT" || ! wait_service opensearch "$SERVICE_WAIT"; then
    skip "e2e.scaled.*" "Kafka or OpenSearch is not running (tests/services start failed or timed out)"
else
    # OpenSearch indexes a few MB/s here: the scaled run uses a smaller set.
    dataset "${E2E_SCALED_SIZE:-$([ "$QUICK" = 1 ] && echo 4M || echo 200M)}" "$((SEED + 2))"
    for r in $(seq "$RUNS"); do
        export RUN_NO=$r
        log "scaled run $r/$RUNS: $MB MB, $RECORDS records"
        one_run scaled "$r"
    done
    note "Scaled: $MB MB ($RECORDS records; the quick run's small set makes the MB/s mostly the pipeline's latency) through Kafka (single broker, 4 partitions) and OpenSearch (single node, 512 MB heap, refresh 5 s) on the same machine as the daemons."
fi
plot latency latency-visibility.dat "visibility: written to a file -> found by a search (run 1)"

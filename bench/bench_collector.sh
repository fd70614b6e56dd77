#!/usr/bin/env bash
# bench_collector.sh - loghaul-collector alone: ingest_load (4 client threads,
# gzip'd batches of 1000 records of 500 bytes) against the collector on the
# spool bus (fsync'd group commits) and on the real Kafka broker; MB/s,
# MB per collector CPU-second (from /proc/<pid>/stat), batch latency p50/p99
# as the client saw it, peak RSS (VmHWM).
# Baselines in the same run: bus_roundtrip --produce-only, the bus's own
# producer (the spool library, librdkafka) with the same record size: what
# the collector could reach if decoding requests cost nothing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap stop_all_bg EXIT

RECORDS=${COLLECTOR_RECORDS:-$([ "$QUICK" = 1 ] && echo 100000 || echo 1000000)}
MB=$(calc "$RECORDS * 500 / 1e6")
W="$WORK/collector"

# one_run BUS RUN: collector + ingest_load, then the bus's own producer
one_run() {
    local bus=$1 r=$2 port topic="" cfg line
    rm -rf "$W" && mkdir -p "$W"
    port=$(free_port)
    cfg="$W/collector.yaml"
    if [ "$bus" = spool ]; then
        write_collector_config "$cfg" "$port" spool "$W/spool"
    else
        topic="lh-bench-$$-$r-$RANDOM"
        write_collector_config "$cfg" "$port" kafka "$KAFKA_BROKERS" "$topic"
    fi
    start_collector "$cfg" "$port" "$W/collector.log"
    if [ "$r" = 1 ]; then
        sample_series "http://127.0.0.1:$port/metrics" loghaul_collector_bytes_decoded_total 1e6 \
            "$OUT/series-collector-$bus.dat"
    fi
    # Warm-up (not measured): connections, the topic's creation and metadata.
    "$BUILD/tests/ingest_load" --url "http://127.0.0.1:$port/v1/logs/ingest" --token bench-token \
        --clients 2 --records 4000 --start 900000000 --batch 1000 --size 500 --max-seconds 120 \
        >"$W/warmup.out" 2>&1 || { log "warm-up failed"; cat "$W/warmup.out" >&2; return 1; }
    local c0 k0="" kpid=""
    c0=$(cpu_s "$CPID")
    [ "$bus" = kafka ] && kpid=$(service_pid kafka)
    [ -n "$kpid" ] && k0=$(cpu_s "$kpid")
    line=$("$BUILD/tests/ingest_load" --url "http://127.0.0.1:$port/v1/logs/ingest" --token bench-token \
        --clients 4 --records "$RECORDS" --batch 1000 --size 500 --hosts 16 --max-seconds 300 \
        2>"$W/load.err") || { log "ingest_load failed: $line"; tail -5 "$W/load.err" "$W/collector.log" >&2; return 1; }
    local c1 hwm k1="" pbytes pmsgs
    c1=$(cpu_s "$CPID")
    [ -n "$kpid" ] && k1=$(cpu_s "$kpid")
    hwm=$(hwm_mb "$CPID")
    pbytes=$(metric_sum "http://127.0.0.1:$port/metrics" loghaul_bus_produced_bytes_total)
    pmsgs=$(metric_sum "http://127.0.0.1:$port/metrics" loghaul_bus_produced_messages_total)
    [ "$r" = 1 ] && stop_pid "$SAMPLER_PID" 2
    stop_pid "$CPID" 20
    local mbs p50 p99
    mbs=$(sed -E 's/.* ([0-9.]+) MB\/s.*/\1/' <<<"$line")
    p50=$(sed -E 's/.*p50 ([0-9.]+) ms.*/\1/' <<<"$line")
    p99=$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")
    emit "collector.$bus.mb_s" "$mbs" "MB/s"
    emit "collector.$bus.mb_s_per_core" "$(calc "$MB / max($c1 - $c0, 1e-3)")" "MB/s per core"
    emit "collector.$bus.cores_used" "$(calc "($c1 - $c0) / ($MB / $mbs)")" "cores"
    emit "collector.$bus.batch_p50_ms" "$p50" "ms"
    emit "collector.$bus.batch_p99_ms" "$p99" "ms"
    emit "collector.$bus.rss_mb" "$hwm" "MB"
    emit "collector.$bus.bus_bytes_per_raw_byte" "$(calc "$pbytes / max($pmsgs, 1) / 500")" "x raw"
    # The broker's CPU, if the same JVM ran all along (another user may restart it).
    if [ -n "$k0" ] && [ -n "$k1" ] && [ "$kpid" = "$(service_pid kafka)" ]; then
        emit kafka.broker_mb_s_per_core "$(calc "$MB / max($k1 - $k0, 1e-3)")" "MB/s per core"
    fi
    if [ "$r" = 1 ]; then
        plot throughput "series-collector-$bus.dat" "collector ($bus bus): MB/s decoded, run 1 (a short warm-up, then the measured load)"
    fi

    # The bus's own ceiling: the same number of 500-byte events, 4 threads,
    # batches of 1000, produced straight into the bus library.
    local args=(--bus "$bus" --count "$RECORDS" --threads 4 --batch 1000 --size 500 --produce-only)
    [ "$bus" = spool ] && args+=(--dir "$W/rt") || args+=(--brokers "$KAFKA_BROKERS")
    line=$("$BB/runstat" --out "$W/rt.stat" -- "$BUILD/tests/bus_roundtrip" "${args[@]}" 2>"$W/rt.err") ||
        { log "bus_roundtrip failed: $line"; tail -5 "$W/rt.err" >&2; return 1; }
    local rmbs rcpu
    rmbs=$(sed -E 's/.*produce ([0-9.]+) MB\/s.*/\1/' <<<"$line")
    rcpu=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["user_s"]+d["sys_s"])' "$W/rt.stat")
    emit "baseline.bus_$bus.produce_mb_s" "$rmbs" "MB/s"
    emit "baseline.bus_$bus.produce_mb_s_per_core" "$(calc "$MB / max($rcpu, 1e-3)")" "MB/s per core"
}

for bus in spool kafka; do
    if [ "$bus" = kafka ]; then
        if ! wait_service kafka "$SERVICE_WAIT"; then
            for f in collector.kafka.mb_s_per_core collector.kafka.mb_s; do
                skip "$f" "Kafka is not running on $KAFKA_BROKERS (tests/services/kafka start failed or timed out)"
            done
            continue
        fi
    fi
    for r in $(seq "$RUNS"); do
        log "$bus run $r/$RUNS: $RECORDS records"
        RUN_NO=$r one_run "$bus" "$r"
    done
done
note "kafka.broker_mb_s_per_core: raw MB per CPU-second of the Kafka JVM (single broker, RF 1, 4 partitions) while the collector produced to it; the broker also serves any other client on the machine."
note "ingest_load: 4 client threads on the same 2-core machine, gzip level 1 bodies of 1000 records x 500 bytes (~0.5 MB); the client's own CPU competes with the collector, per-core figures divide by the collector's CPU seconds only."
rm -rf "$W"

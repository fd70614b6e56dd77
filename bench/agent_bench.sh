#!/usr/bin/env bash
# agent_bench.sh - loghaul-agent throughput: 500-byte lines from 20 files
# shipped to the real loghaul-collector (spool bus) on loopback. Prints
# lines/s, MB/s (raw line bytes), MB per agent CPU-second, the collector's
# CPU and the agent's peak RSS. Ports are picked free, so runs do not clash.
# Usage: bench/agent_bench.sh [MB total, default 400]
# env:   WRITE_AHEAD=true|false   buffer.write_ahead [true]
#        BATCH_MAX_BYTES=1MiB  IN_FLIGHT=4  MEMORY_BATCHES=8  LEVEL=1
#        AGENT_EXTRA  more YAML appended at the top level of the agent's config
#        STRACE=1     strace -c -w the agent (wall time per system call) into
#                     the work directory's strace.out (implies KEEP)
#        NULL_COLLECTOR=1  ship to build/tests/null_collector (answers 200 at once,
#                     decodes nothing): the agent alone
#        DRAIN=1      the collector's side: the agent fills its disk buffer with
#                     no collector up, then the collector starts and the clock
#                     runs while the agent replays the buffer to it
#        COLLECTOR_ENV="VAR=value ..."  environment of the collector
#        SPOOL_FSYNC=false  the collector's spool does not fsync (unsafe ceiling)
#        KEEP=1       keep the work directory
#        PERF=1       perf record -a (call graphs) into the work directory's
#                     bench.perf while the agent runs (implies KEEP); then e.g.
#                     perf report -i bench.perf --comm loghaul-agent
# The agent's config is config/local/agent.yaml's, with those settings.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
MB="${1:-400}"
W="$(mktemp -d "${TMPDIR:-/tmp}/lh-agent-bench-XXXXXX")"
trap 'kill $APID $CPID 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $W" || rm -rf "$W"' EXIT
APID= CPID=
cd "$W"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CPORT=$(port) APORT=$(port)
mkdir -p var/input
sed "s/127.0.0.1:7070/127.0.0.1:$CPORT/" "$ROOT/config/local/collector.yaml" >collector.yaml
# SPOOL_FSYNC=false: the collector's spool without fsync (the unsafe ceiling)
[ -n "${SPOOL_FSYNC:-}" ] && sed -i "s|    dir: ./var/spool|    dir: ./var/spool\n    fsync: $SPOOL_FSYNC|" collector.yaml
cat >agent.yaml <<EOT
listen: { address: 127.0.0.1:$APORT }
tail: { include: [./var/input/*.log], checkpoint: ./var/agent/checkpoint.json }
ship:
  endpoints: [http://127.0.0.1:$CPORT]
  token: dev-token
  in_flight: ${IN_FLIGHT:-4}
  memory_batches: ${MEMORY_BATCHES:-8}
  backoff_max: ${BACKOFF_MAX:-30s}
buffer:
  dir: ./var/agent/buffer
  max_bytes: 256MiB
  write_ahead: ${WRITE_AHEAD:-true}
batch:
  max_bytes: ${BATCH_MAX_BYTES:-1MiB}
  max_age: 1s
  compression: gzip
  level: ${LEVEL:-1}
${AGENT_EXTRA:-}
EOT
FILES=20
LINES=$(( MB * 1000000 / 500 / FILES ))
python3 - "$FILES" "$LINES" <<'PY'
import sys
files, lines = int(sys.argv[1]), int(sys.argv[2])
pad = "x" * 400
for f in range(files):
    with open(f"var/input/app{f:02d}.log", "w") as o:
        for i in range(lines):
            s = f"2026-05-23T08:06:14.123Z INFO [svc-{f}] req={i:09d} user=u{i%977} {pad}"
            o.write(s[:499] + "\n")
PY
TOTAL=$(( FILES * LINES ))
BYTES=$(cat var/input/*.log | wc -c)
metric() {  # NAME: the agent's loghaul_agent_NAME
    curl -s "127.0.0.1:$APORT/metrics" | awk -v n="loghaul_agent_$1" '$1 == n {print $2}' || true
}
start_collector() {
    if [ -n "${NULL_COLLECTOR:-}" ]; then
        "$BUILD/tests/null_collector" --listen "127.0.0.1:$CPORT" >collector.log 2>&1 & CPID=$!
    else
        env ${COLLECTOR_ENV:-} "$BUILD/loghaul-collector" -c collector.yaml >collector.log 2>&1 &
        CPID=$!
    fi
    until curl -fs "127.0.0.1:$CPORT/readyz" >/dev/null 2>&1; do sleep 0.05; done
    read -r CUT0 CST0 < <(awk '{print $14, $15}' /proc/$CPID/stat)
}
[ -n "${PERF:-}" ] && KEEP=1
[ -n "${DRAIN:-}" ] && sed -i 's/backoff_max: .*/backoff_max: 50ms/' agent.yaml
if [ -n "${DRAIN:-}" ]; then
    # The collector alone (almost): the agent first reads everything into
    # its disk buffer while no collector is up; the clock starts when the
    # collector does, and the agent then only replays the buffer.
    "$BUILD/loghaul-agent" -c agent.yaml >agent.log 2>&1 & APID=$!
    until [ "$(metric lines_read_total)" = "$TOTAL" ] && [ "$(metric batches_pending)" = 0 ]; do
        kill -0 $APID 2>/dev/null || { echo "agent died"; tail agent.log; exit 1; }
        sleep 0.1
    done
    echo "drain: $(metric buffer_batches) batches, $(metric buffer_bytes) bytes in the buffer"
    read -r AUT0 AST0 < <(awk '{print $14, $15}' /proc/$APID/stat)
    T0=$(date +%s.%N)
    start_collector
else
    start_collector
    T0=$(date +%s.%N)
    "$BUILD/loghaul-agent" -c agent.yaml >agent.log 2>&1 & APID=$!
fi
PPIDS=
if [ -n "${PERF:-}" ]; then   # system-wide: the daemons' threads start later
    perf record -q -a -F 499 -g -o bench.perf >/dev/null 2>&1 & PPIDS="$!"
fi
if [ -n "${STRACE:-}" ]; then   # wall time per system call, all threads
    KEEP=1
    strace -q -f -c -w -o strace.out -p "$APID" & PPIDS="$PPIDS $!"
fi
while :; do
    n=$(metric lines_acked_total)
    [ "${n:-0}" -ge "$TOTAL" ] && break
    kill -0 $APID 2>/dev/null || { echo "agent died"; tail agent.log; exit 1; }
    sleep 0.05
done
T1=$(date +%s.%N)
curl -s "127.0.0.1:$APORT/metrics" >agent.metrics || true
if [ -n "$PPIDS" ]; then
    kill -INT $PPIDS 2>/dev/null || true
    for p in $PPIDS; do wait "$p" 2>/dev/null || true; done
fi
read -r UT ST < <(awk '{print $14, $15}' /proc/$APID/stat)
UT=$((UT - ${AUT0:-0})) ST=$((ST - ${AST0:-0}))
# Per thread: CPU seconds, and seconds it was runnable but waited for a CPU.
THREADS=$(for t in /proc/$APID/task/*; do
    read -r run wait _ <"$t/schedstat"
    printf '%s: cpu %.2f wait %.2f; ' "$([ "${t##*/}" = "$APID" ] && echo loop || echo "${t##*/}")" \
        "$(echo "$run / 1000000000" | bc -l)" "$(echo "$wait / 1000000000" | bc -l)"
done)
read -r CUT CST < <(awk '{print $14, $15}' /proc/$CPID/stat)
CWAIT=$(cat /proc/$CPID/task/*/schedstat | awk '{w += $2} END {printf "%.2f", w / 1e9}')
HZ=$(getconf CLK_TCK)
RSS=$(awk '/VmHWM/{print $2}' /proc/$APID/status)
python3 - "$T0" "$T1" "$UT" "$ST" "$HZ" "$TOTAL" "$BYTES" "$RSS" \
    "$((CUT - CUT0))" "$((CST - CST0))" <<'PY'
import sys
t0, t1, ut, st, hz, total, nbytes, rss, cut, cst = map(float, sys.argv[1:])
wall = t1 - t0
cpu = (ut + st) / hz
ccpu = (cut + cst) / hz
print(f"lines {int(total)}  bytes {nbytes/1e6:.0f} MB  wall {wall:.2f} s  agent cpu {cpu:.2f} s"
      f" (user {ut/hz:.2f} sys {st/hz:.2f})  collector cpu {ccpu:.2f} s")
print(f"{total/wall:,.0f} lines/s  {nbytes/wall/1e6:.0f} MB/s  "
      f"{nbytes/cpu/1e6:.0f} MB per agent CPU-second  ({cpu/wall:.2f} cores; "
      f"collector {ccpu/wall:.2f} cores)")
print(f"agent peak RSS {rss/1024:.1f} MiB")
PY
echo "agent threads: $THREADS"
echo "collector threads waited $CWAIT s in all for a CPU; load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk '/^loghaul_agent_request_seconds_sum /{s=$2} /^loghaul_agent_request_seconds_count /{n=$2}
     /^loghaul_agent_batches_total /{b=$2}
     END {if (n) printf "%d batches, %d requests, mean request %.1f ms\n", b, n, 1000*s/n}' \
    agent.metrics

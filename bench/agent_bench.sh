#!/usr/bin/env bash
# agent_bench.sh - loghaul-agent throughput: 500-byte lines from 20 files
# shipped to the real loghaul-collector (spool bus) on loopback. Prints
# lines/s, MB/s (raw line bytes), MB per agent CPU-second and the agent's
# peak RSS. Usage: bench/agent_bench.sh [MB total, default 400]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
MB="${1:-400}"
W="$(mktemp -d "${TMPDIR:-/tmp}/lh-agent-bench-XXXXXX")"
trap 'kill $APID $CPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
cd "$W"
mkdir -p var/input config/local
cp "$ROOT/config/local/collector.yaml" config/local/
cp "$ROOT/config/local/agent.yaml" config/local/
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
"$BUILD/loghaul-collector" -c config/local/collector.yaml >collector.log 2>&1 & CPID=$!
sleep 1
T0=$(date +%s.%N)
"$BUILD/loghaul-agent" -c config/local/agent.yaml >agent.log 2>&1 & APID=$!
while :; do
    n=$(curl -s 127.0.0.1:7073/metrics | awk '/^loghaul_agent_lines_acked_total /{print $2}')
    [ "${n:-0}" -ge "$TOTAL" ] && break
    kill -0 $APID 2>/dev/null || { echo "agent died"; tail agent.log; exit 1; }
    sleep 0.05
done
T1=$(date +%s.%N)
read -r UT ST < <(awk '{print $14, $15}' /proc/$APID/stat)
HZ=$(getconf CLK_TCK)
RSS=$(awk '/VmHWM/{print $2}' /proc/$APID/status)
python3 - "$T0" "$T1" "$UT" "$ST" "$HZ" "$TOTAL" "$BYTES" "$RSS" <<'PY'
import sys
t0, t1, ut, st, hz, total, nbytes, rss = map(float, sys.argv[1:])
wall = t1 - t0
cpu = (ut + st) / hz
print(f"lines {int(total)}  bytes {nbytes/1e6:.0f} MB  wall {wall:.2f} s  agent cpu {cpu:.2f} s")
print(f"{total/wall:,.0f} lines/s  {nbytes/wall/1e6:.0f} MB/s  "
      f"{nbytes/cpu/1e6:.0f} MB per agent CPU-second  ({cpu/wall:.2f} cores)")
print(f"agent peak RSS {rss/1024:.1f} MiB")
PY

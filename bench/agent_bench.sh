#!/usr/bin/env bash
# agent_bench.sh - loghaul-agent throughput: 500-byte lines from 20 files
# shipped to the real loghaul-collector (spool bus) on loopback. Prints
# lines/s, MB/s (raw line bytes), MB per agent CPU-second, the collector's
# CPU and the agent's peak RSS. Ports are picked free, so runs do not clash.
# Usage: bench/agent_bench.sh [MB total, default 400]
# env:   AGENT_EXTRA  YAML appended to the agent's config (e.g.
#                     $'buffer:\n  write_ahead: false'); keys it sets replace
#                     the defaults below (the last occurrence wins)
#        KEEP=1       keep the work directory
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
sed -e "s/127.0.0.1:7073/127.0.0.1:$APORT/" -e "s/127.0.0.1:7070/127.0.0.1:$CPORT/" \
    "$ROOT/config/local/agent.yaml" >agent.yaml
printf '%s\n' "${AGENT_EXTRA:-}" >>agent.yaml
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
"$BUILD/loghaul-collector" -c collector.yaml >collector.log 2>&1 & CPID=$!
until curl -fs "127.0.0.1:$CPORT/readyz" >/dev/null 2>&1; do sleep 0.05; done
read -r CUT0 CST0 < <(awk '{print $14, $15}' /proc/$CPID/stat)
T0=$(date +%s.%N)
"$BUILD/loghaul-agent" -c agent.yaml >agent.log 2>&1 & APID=$!
while :; do
    n=$(curl -s "127.0.0.1:$APORT/metrics" | awk '/^loghaul_agent_lines_acked_total /{print $2}' || true)
    [ "${n:-0}" -ge "$TOTAL" ] && break
    kill -0 $APID 2>/dev/null || { echo "agent died"; tail agent.log; exit 1; }
    sleep 0.05
done
T1=$(date +%s.%N)
read -r UT ST < <(awk '{print $14, $15}' /proc/$APID/stat)
read -r CUT CST < <(awk '{print $14, $15}' /proc/$CPID/stat)
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

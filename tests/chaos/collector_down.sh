#!/usr/bin/env bash
# The collector unreachable (embedded default): while gen.py writes lines,
# the collector is stopped for 45 s (LOGHAUL_LONG=1: 5 minutes, the issue's
# duration). The agent's disk buffer must absorb it: it grows, the agent's
# /readyz and metrics say the collector is down, nothing is dropped or
# sampled, and once the collector is back the buffer drains; then every line
# is found exactly once through queryd. ~2 min (LONG: ~6 min).
# long-variant: yes
. "$(dirname "$0")/chaos_lib.sh"

DOWN=45 RATE=500
[ "$LONG" = 1 ] && DOWN=300 RATE=1000
WARM=10 AFTER=10
N=$((RATE * (WARM + DOWN + AFTER)))
chaos_init "collector-down-${DOWN}s"
chaos_configs embedded
start_all
gen_start "$N" "$RATE"
say "writing $N lines at $RATE/s; the collector is down for ${DOWN}s after ${WARM}s"
sleep "$WARM"
stop_daemon "$CPID"
t_down=$SECONDS
say "  collector stopped"
max_buf=0
while [ $((SECONDS - t_down)) -lt "$DOWN" ]; do
    sleep 2
    b=$(metric "$APORT" loghaul_agent_buffer_bytes)
    [ "${b:-0}" -gt "$max_buf" ] && max_buf=${b:-0}
done
up=$(metric "$APORT" loghaul_agent_collector_up)
say "  after ${DOWN}s: agent buffer ${max_buf} bytes ($(metric "$APORT" loghaul_agent_buffer_batches) batches)," \
    "collector_up=$up, dropped $(metric "$APORT" loghaul_agent_lines_dropped_total)," \
    "sampled $(metric "$APORT" loghaul_agent_lines_sampled_total)"
[ "$max_buf" -gt 0 ] || fail "the agent's disk buffer did not grow while the collector was down"
[ "${up:-1}" = 0 ] || fail "loghaul_agent_collector_up is ${up:-absent} with the collector down"
start_collector
fault_end
say "  collector back"
gen_wait
end=$((SECONDS + 120))
until [ "$(metric "$APORT" loghaul_agent_buffer_bytes)" = 0 ]; do
    [ $SECONDS -lt $end ] || fail "the agent's disk buffer did not drain"
    sleep 0.5
done
for m in lines_dropped_total lines_sampled_total lost_bytes_total; do
    v=$(metric "$APORT" "loghaul_agent_$m")
    [ "${v:-0}" = 0 ] || fail "loghaul_agent_$m is $v"
done
CHAOS_EXTRA="agent buffer peaked at $max_buf bytes"
chaos_check

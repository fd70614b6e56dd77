#!/usr/bin/env bash
# Log rotation storm (embedded default): gen.py writes 2,000 lines/s into
# one hot file and rotates it 100 times a second (rename to chaos-0.log.<n>,
# create a new chaos-0.log) for 20 s (LOGHAUL_LONG=1: 120 s). Every line
# must be found exactly once through queryd, except lines the agent counted
# as lost in /metrics (loghaul_agent_lost_bytes_total: a file rotated away
# before it was ever opened). The count must be byte-exact: found + lost =
# written, and the lost bytes are whole lines. ~1 min.
# long-variant: yes
. "$(dirname "$0")/chaos_lib.sh"

SECS=20 RATE=2000 HZ=100 SIZE=200
[ "$LONG" = 1 ] && SECS=120
N=$((RATE * SECS))
ROTATE_WAIT=2s
chaos_init "rotation-storm-${HZ}/s"
chaos_configs embedded
start_all
gen_start "$N" "$RATE" --files 1 --rotate-hz "$HZ" --size "$SIZE"
say "writing $N lines of $SIZE bytes at $RATE/s into one file rotated $HZ times a second"
gen_wait
fault_end
# The agent is done when it has read every byte it will read: lines read
# plus lines in loss windows reach N, or nothing moves for 15 s.
read_lost() {
    read_n=$(metric "$APORT" loghaul_agent_lines_read_total)
    lost_b=$(metric "$APORT" loghaul_agent_lost_bytes_total)
    read_n=${read_n:-0} lost_b=${lost_b:-0}
}
end=$((SECONDS + 120)) last="" still=$SECONDS
while :; do
    read_lost
    [ $((read_n + lost_b / SIZE)) -ge "$N" ] && break
    [ "$read_n/$lost_b" != "$last" ] && { last="$read_n/$lost_b"; still=$SECONDS; }
    [ $((SECONDS - still)) -ge 15 ] && break
    [ $SECONDS -lt $end ] || break
    sleep 1
done
windows=$(metric "$APORT" loghaul_agent_loss_windows_total)
say "  agent: read $read_n lines, $lost_b bytes in ${windows:-0} loss window(s)" \
    "($(curl -s "http://127.0.0.1:$APORT/metrics" | grep '^loghaul_agent_lost_bytes_total{' | tr '\n' ' '))"
[ $((lost_b % SIZE)) = 0 ] || fail "lost bytes ($lost_b) are not whole lines of $SIZE bytes"
lost=$((lost_b / SIZE))
dropped=$(metric "$APORT" loghaul_agent_lines_dropped_total)
[ "${dropped:-0}" = 0 ] || fail "the agent dropped $dropped lines"
CHAOS_EXTRA="$(jq -r .rotations "$WORK/gen.done") rotations; $lost lines counted lost by the agent"
chaos_check --lost-count "$lost"

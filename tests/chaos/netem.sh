#!/usr/bin/env bash
# Network trouble between agent and collector (embedded default): the agent
# runs in a network namespace of its own, joined to the collector by a veth
# pair; tc netem on both ends first adds 100 ms delay and 5% loss (30 s),
# then drops everything (netem loss 100%: a 30 s blackhole), then the
# network is healed. Nothing may be lost and no duplicate may be visible in
# search. Needs root, iproute2 (ip, tc) and the kernel's sch_netem; where the
# netem qdisc cannot be created the test prints "skipped: <reason>" and
# exits 0. ~1.5 min (LOGHAUL_LONG=1: 2 min of delay/loss, 2 min blackhole).
# long-variant: yes
. "$(dirname "$0")/chaos_lib.sh"

skip() {
    [ -n "${LOGHAUL_CHAOS_RESULTS:-}" ] &&
        jq -nc --arg r "$*" '{fault: "netem", skipped: $r}' >>"$LOGHAUL_CHAOS_RESULTS"
    echo "skipped: $*"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "network namespaces and tc need root"
command -v ip >/dev/null && command -v tc >/dev/null || skip "ip/tc (iproute2) not installed"

BAD=30 HOLE=30 RATE=500
[ "$LONG" = 1 ] && BAD=120 HOLE=120
NS="lhchaos$$" VH="lhc$$h" VA="lhc$$a"
NET="10.251.$((RANDOM % 250))"
HOST_IP="$NET.1" AGENT_IP="$NET.2"
netem_exit() {
    lh_cleanup_daemons
    ip netns del "$NS" 2>/dev/null
    ip link del "$VH" 2>/dev/null
    lh_cleanup
}
trap netem_exit EXIT
ip netns add "$NS" || skip "cannot create a network namespace (ip netns add failed)"
ip link add "$VH" type veth peer name "$VA" || skip "cannot create a veth pair"
ip link set "$VA" netns "$NS" || fail "move $VA into $NS"
ip addr add "$HOST_IP/30" dev "$VH" && ip link set "$VH" up || fail "configure $VH"
ip netns exec "$NS" ip addr add "$AGENT_IP/30" dev "$VA" &&
    ip netns exec "$NS" ip link set "$VA" up &&
    ip netns exec "$NS" ip link set lo up || fail "configure $VA in $NS"
if ! out=$(tc qdisc add dev "$VH" root netem delay 1ms 2>&1); then
    skip "the netem qdisc cannot be created here (tc: ${out:-no message}; kernel module sch_netem missing?)"
fi
tc qdisc del dev "$VH" root
# netem_set ARGS...: the same netem settings on both ends (both directions).
netem_set() {
    tc qdisc replace dev "$VH" root netem "$@" &&
        ip netns exec "$NS" tc qdisc replace dev "$VA" root netem "$@"
}
netem_clear() {
    tc qdisc del dev "$VH" root 2>/dev/null
    ip netns exec "$NS" tc qdisc del dev "$VA" root 2>/dev/null
    return 0
}

chaos_init "netem"
COLLECTOR_URL="http://$HOST_IP:$CPORT"
chaos_configs embedded
sed -i "s/address: 127.0.0.1:$CPORT/address: $HOST_IP:$CPORT/" "$WORK/collector.yaml"
READY_URL="http://$HOST_IP" start_collector
start_indexer
start_queryd
AGENT_WRAP="ip netns exec $NS"
start_agent
N=$((RATE * (10 + BAD + HOLE + 10)))
gen_start "$N" "$RATE"
say "writing $N lines at $RATE/s; agent in netns $NS ($AGENT_IP) -> collector $HOST_IP:$CPORT"
sleep 10
netem_set delay 100ms loss 5% || fail "tc netem delay/loss"
say "  ${BAD}s of 100 ms delay and 5% loss (both directions)"
a0=$(metric "$APORT" loghaul_agent_lines_acked_total)
sleep "$BAD"
a1=$(metric "$APORT" loghaul_agent_lines_acked_total)
say "  lines acknowledged under delay/loss: $((a1 - a0))"
[ $((a1 - a0)) -gt 0 ] || fail "nothing acknowledged under 100 ms delay and 5% loss"
netem_set loss 100% || fail "tc netem loss 100%"
say "  ${HOLE}s blackhole (netem loss 100%)"
sleep "$HOLE"
a2=$(metric "$APORT" loghaul_agent_lines_acked_total)
say "  lines acknowledged in the blackhole: $((a2 - a1)); agent buffer" \
    "$(metric "$APORT" loghaul_agent_buffer_bytes) bytes"
netem_clear
fault_end
say "  network healed"
gen_wait
dropped=$(metric "$APORT" loghaul_agent_lines_dropped_total)
[ "${dropped:-0}" = 0 ] || fail "the agent dropped $dropped lines"
chaos_check

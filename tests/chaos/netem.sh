#!/usr/bin/env bash
# Network trouble between agent and collector (embedded default): the agent
# runs in a network namespace of its own, joined to the collector by a veth
# pair; tc netem on both ends first adds 100 ms delay and 5% loss (30 s),
# then drops everything (netem loss 100%: a 30 s blackhole), then the
# network is healed. Nothing may be lost and no duplicate may be visible in
# search. Needs root and iproute2 (ip, tc). Where the kernel has no sch_netem
# the same two phases are made with what it has, and the test says so: a
# slow, congested link (tbf 128 kbit/s with at most 1 s of queue: queueing
# delay, tail drops of what overflows) and a blackhole by taking the veth
# pair down; without network namespaces it prints "skipped: <reason>" and
# exits 0. ~1.5 min (LOGHAUL_LONG=1: 2 min of trouble, 2 min blackhole).
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
MODE=netem
if ! out=$(tc qdisc add dev "$VH" root netem delay 1ms 2>&1); then
    tc qdisc add dev "$VH" root tbf rate 1mbit burst 32kbit latency 100ms 2>/dev/null ||
        skip "neither netem nor tbf qdiscs can be created here (tc: ${out:-no message})"
    MODE=tbf
    echo "netem is not available here (tc: ${out:-no message}; kernel module sch_netem" \
        "missing?): using a tbf-congested link and a link-down blackhole instead"
fi
tc qdisc del dev "$VH" root
# qdisc_set ARGS...: the same qdisc on both ends (both directions).
qdisc_set() {
    tc qdisc replace dev "$VH" root "$@" &&
        ip netns exec "$NS" tc qdisc replace dev "$VA" root "$@"
}
# Phase 1: bad network. Phase 2: nothing gets through.
trouble_on() {
    if [ "$MODE" = netem ]; then
        qdisc_set netem delay 100ms loss 5%
    else
        qdisc_set tbf rate 128kbit burst 16kbit latency 1s
    fi
}
blackhole_on() {
    if [ "$MODE" = netem ]; then
        qdisc_set netem loss 100%
    else
        ip link set "$VH" down && ip netns exec "$NS" ip link set "$VA" down
    fi
}
netem_clear() {
    ip link set "$VH" up 2>/dev/null
    ip netns exec "$NS" ip link set "$VA" up 2>/dev/null
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
trouble_on || fail "tc: the bad-network qdisc ($MODE)"
if [ "$MODE" = netem ]; then
    say "  ${BAD}s of 100 ms delay and 5% loss (both directions)"
else
    say "  ${BAD}s of a 128 kbit/s link with up to 1 s of queue (tbf, both directions)"
fi
a0=$(metric "$APORT" loghaul_agent_lines_acked_total)
sleep "$BAD"
a1=$(metric "$APORT" loghaul_agent_lines_acked_total)
say "  lines acknowledged on the bad network: $((a1 - a0))"
[ $((a1 - a0)) -gt 0 ] || fail "nothing acknowledged on the bad network ($MODE)"
blackhole_on || fail "blackhole ($MODE)"
say "  ${HOLE}s blackhole ($([ "$MODE" = netem ] && echo "netem loss 100%" || echo "veth pair down"))"
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

#!/usr/bin/env bash
# Disk full (embedded default): the collector's spool and the indexer's store
# each live on a small tmpfs of their own. While gen.py writes lines:
#   1. the spool's disk is filled up by a filler file: the collector must say
#      so (/readyz not ready, loghaul_collector_rejects_total{status="503"}),
#      refuse new batches with 503 and, once the filler is deleted, take
#      batches again (the agent keeps the lines meanwhile);
#   2. the store's disk is filled up: the indexer must say so (/readyz not
#      ready, loghaul_indexer_sink_up{sink="store"} 0 or paused) and stop
#      consuming (its committed position stays), and go on once space returns.
# Then every line is found exactly once through queryd, and `loghaul store
# verify` finds no damage. Needs root (mount -t tmpfs). ~2 min.
. "$(dirname "$0")/chaos_lib.sh"

FULL=20 N=40000 RATE=400
[ "$LONG" = 1 ] && FULL=120 N=140000 RATE=500
if [ "$(id -u)" != 0 ]; then
    echo "skipped: mounting a small tmpfs as the data disk needs root"
    exit 0
fi
SMNT="$WORK/spool-disk" TMNT="$WORK/store-disk"
mkdir -p "$SMNT" "$TMNT"
mount -t tmpfs -o size=48m tmpfs "$SMNT" || fail "mount tmpfs on $SMNT"
mount -t tmpfs -o size=48m tmpfs "$TMNT" || { umount "$SMNT"; fail "mount tmpfs on $TMNT"; }
diskfull_exit() {
    lh_cleanup_daemons
    umount "$SMNT" "$TMNT" 2>/dev/null
    lh_cleanup
}
trap diskfull_exit EXIT

SPOOL_DIR="$SMNT/spool" STORE_DIR="$TMNT/store"
chaos_init diskfull
chaos_configs embedded
start_all
gen_start "$N" "$RATE"
say "writing $N lines at $RATE/s; spool disk full for ${FULL}s, then the store disk for ${FULL}s"
sleep 8

fill() {  # DIR: a filler file that takes every free block of DIR's file system
    dd if=/dev/zero of="$1/filler" bs=1M 2>/dev/null
    sync
    say "  $(df -h "$1" | awk 'NR == 2 {print $3 " used of " $2 " on '"$1"'"}')"
}
ready() { curl -s -o "$WORK/ready.out" -w '%{http_code}' "http://127.0.0.1:$1/readyz"; }
# wait_for SECONDS CMD...: polls until CMD succeeds.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.5
    done
}
not_ready() { [ "$(ready "$1")" != 200 ]; }
is_ready() { [ "$(ready "$1")" = 200 ]; }

say "1. the spool's disk is full"
r0=$(metric "$CPORT" loghaul_collector_rejects_total 'status="503"')
fill "$SMNT"
t_full=$SECONDS
wait_for 30 not_ready "$CPORT" || fail "the collector's /readyz stayed ready with its disk full"
say "  collector /readyz: $(ready "$CPORT") $(head -c 200 "$WORK/ready.out")"
# A small batch may still fit in the last page of a segment: the load fills
# it, and then every batch is refused.
probe_503() { [ "$(ingest_probe)" = 503 ]; }
wait_for 15 probe_503 || fail "ingest did not answer 503 with the spool's disk full: $(cat "$WORK/probe.out")"
say "  ingest: 503 $(head -c 200 "$WORK/probe.out")"
while [ $((SECONDS - t_full)) -lt "$FULL" ]; do sleep 1; done
r1=$(metric "$CPORT" loghaul_collector_rejects_total 'status="503"')
[ "${r1:-0}" -gt "${r0:-0}" ] || fail "loghaul_collector_rejects_total{status=\"503\"} did not count the refusals"
say "  503 answers while full: $(( ${r1:-0} - ${r0:-0} )); agent buffer holds" \
    "$(metric "$APORT" loghaul_agent_buffer_bytes) bytes"
rm -f "$SMNT/filler"
wait_for 30 is_ready "$CPORT" || fail "the collector did not become ready after space returned: $(cat "$WORK/ready.out")"
say "  space back: the collector is ready after $((SECONDS - t_full - FULL))s"

say "2. the store's disk is full"
fill "$TMNT"
t_full=$SECONDS
wait_for 30 not_ready "$IPORT" || fail "the indexer's /readyz stayed ready with the store's disk full"
say "  indexer /readyz: $(ready "$IPORT") $(head -c 200 "$WORK/ready.out")"
up=$(metric "$IPORT" loghaul_indexer_sink_up 'sink="store"')
[ "$up" = 0 ] || fail "loghaul_indexer_sink_up{sink=\"store\"} is ${up:-absent} with the store's disk full"
c0=$(metric "$IPORT" loghaul_indexer_consumed_total)
while [ $((SECONDS - t_full)) -lt "$FULL" ]; do sleep 1; done
c1=$(metric "$IPORT" loghaul_indexer_consumed_total)
say "  consumed while full: $(( ${c1:-0} - ${c0:-0} )) (loghaul_indexer_consumed_total)" \
    "while ~$((RATE * FULL)) lines were written"
[ $(( ${c1:-0} - ${c0:-0} )) -le 5000 ] || fail "the indexer went on consuming with its store full"
rm -f "$TMNT/filler"
wait_for 60 is_ready "$IPORT" || fail "the indexer did not become ready after space returned: $(cat "$WORK/ready.out")"
say "  space back: the indexer is ready after $((SECONDS - t_full - FULL))s"
fault_end
gen_wait
# A block write cut short by ENOSPC leaves a torn tail in that (unsealed)
# segment: readers skip it, the writer drops it when it next opens the store.
# So: verify the live store (reported), then restart the indexer (SIGTERM,
# start) and verify again (must be clean).
store_verify() {
    "$BUILD/loghaul" store verify "$STORE_DIR" >"$WORK/verify-live.out" 2>&1
    say "store verify while the indexer runs (exit $?): $(grep -E '^problem|^verify' "$WORK/verify-live.out" | tr '\n' ' ')"
    stop_daemon "$IPID"
    start_indexer
    "$BUILD/loghaul" store verify "$STORE_DIR" >"$WORK/verify.out" 2>&1 ||
        { cat "$WORK/verify.out"; echo "loghaul store verify found damage" >&2; return 1; }
    say "store verify after the indexer reopened the store: $(tail -n 1 "$WORK/verify.out")"
}
CHAOS_AFTER_CHECK=store_verify
chaos_check

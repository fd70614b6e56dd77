#!/usr/bin/env bash
# The delivery ledger, embedded: logwriter.py -> agent -> collector -> spool
# -> indexer -> store + archive dir -> queryd. Phase 1 writes N1 lines into
# two files, phase 2 (after an indexer restart, so the store starts a new
# segment) N2 lines into a third. Once quiescent, `loghaul audit` must exit 0
# with the exact counts (read, acknowledged, indexed and archived per file,
# archived from the rows the archive sink writes per uploaded object; the
# indexer restart also uploads what it had staged). Then the
# store segment holding phase 1 is deleted: `loghaul audit` must exit 1 and
# name both phase-1 files with N1/2 missing each, and phase 2 stays clean.
# Needs no external service (~20 s).
. "$(dirname "$0")/../integration/lib.sh"

N1=4000 N2=1500
[ "$LONG" = 1 ] && N1=100000 N2=50000
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/a" "$WORK/b" "$WORK/agent"
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
cat >"$WORK/indexer.yaml" <<EOT
listen: { address: 127.0.0.1:$IPORT }
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
pipeline: { linger: 100ms }
sinks:
  - { name: store, type: store, store: { dir: $WORK/store, merge_interval: 0 } }
  - name: archive
    type: archive
    archive:
      staging_dir: $WORK/staging
      rollover: 2s
      backend: { type: dir, format: ndjson, dir: { path: $WORK/archive } }
EOT
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT }
tenants: [ { name: demo, tokens: [dev-token-1234] } ]
tiers: [ { type: store, store: { dir: $WORK/store } } ]
EOT
cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$WORK/a/*.log, $WORK/b/*.log]
  checkpoint: $WORK/agent/checkpoint.json
ship: { endpoints: [http://127.0.0.1:$CPORT], token: dev-token }
buffer: { dir: $WORK/agent/buffer }
batch: { max_age: 200ms }
host_id: ledger-host
EOT

start_daemon collector "$WORK/collector.yaml" "$CPORT"
CPID=$DAEMON_PID
start_daemon indexer "$WORK/indexer.yaml" "$IPORT"
IPID=$DAEMON_PID
start_daemon queryd "$WORK/queryd.yaml" "$QPORT"
QPID=$DAEMON_PID
start_daemon agent "$WORK/agent.yaml" "$APORT"
APID=$DAEMON_PID

AUDIT=("$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token dev-token-1234 --since 2h
       --archive-settle 0)
# total FIELD from the JSON report
total() { python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"][sys.argv[1]])' "$1"; }
# wait_indexed N: until N events are read, acknowledged, indexed and
# archived (the archive's objects roll over every 2 s; 60 s at most)
wait_indexed() {
    local want="$1" end=$((SECONDS + 60)) j k ok
    while :; do
        j="$("${AUDIT[@]}" --settle 0 --json 2>/dev/null)"
        ok=1
        for k in read acknowledged indexed archived; do
            [ -n "$j" ] && [ "$(total $k <<<"$j")" = "$want" ] || ok=0
        done
        [ "$ok" = 1 ] && return 0
        [ $SECONDS -ge $end ] && { echo "$j" >&2; fail "not $want events read, acknowledged, indexed and archived within 60 s"; }
        sleep 0.5
    done
}

say "phase 1: $N1 lines into 2 files"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/a" --files 2 --lines "$N1" --size 200 \
    --rotate-every 1000000000 >"$WORK/w1.out" 2>&1 || { cat "$WORK/w1.out"; fail "logwriter"; }
wait_indexed "$N1"
say "restarting the indexer: the store seals its segment"
stop_daemon "$IPID"
SEGS1=$(find "$WORK/store" -path "$WORK/store/.ledger" -prune -o -name '*.seg' -print | sort)
[ -n "$SEGS1" ] || fail "no store segment after phase 1"
start_daemon indexer "$WORK/indexer.yaml" "$IPORT"
IPID=$DAEMON_PID

say "phase 2: $N2 lines into 1 file"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/b" --files 1 --lines "$N2" --size 200 \
    --start "$N1" --rotate-every 1000000000 >"$WORK/w2.out" 2>&1 || { cat "$WORK/w2.out"; fail "logwriter"; }
N=$((N1 + N2))
wait_indexed "$N"

say "audit of the quiescent pipeline"
"${AUDIT[@]}" --settle 0 >"$WORK/audit1.out" 2>&1
rc=$?
cat "$WORK/audit1.out"
[ "$rc" = 0 ] || fail "loghaul audit exited $rc on a quiescent run (want 0)"
"${AUDIT[@]}" --settle 0 --json >"$WORK/audit1.json" || fail "audit --json"
python3 - "$WORK/audit1.json" "$WORK" "$N1" "$N2" <<'PY' || fail "exact counts"
import json, sys
r = json.load(open(sys.argv[1]))
work, n1, n2 = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = {f"{work}/a/app-0.log": n1 // 2, f"{work}/a/app-1.log": n1 - n1 // 2,
        f"{work}/b/app-0.log": n2}
got = {}
for w in r["windows"]:
    assert w["host"] == "ledger-host", w
    g = got.setdefault(w["file"], [0, 0, 0, 0, 0, 0])
    for i, k in enumerate(["read", "acknowledged", "indexed", "unexplained", "archived"]):
        g[i] += w[k]
    g[5] += w["archive"]["unexplained"]
for f, n in want.items():
    assert got.get(f) == [n, n, n, 0, n, 0], (f, got.get(f), n)
assert set(got) == set(want), got
assert r["ok"] is True and r["totals"]["unexplained"] == 0, r["totals"]
assert r["totals"]["archive_unexplained"] == 0 and r["totals"]["archived"] == n1 + n2, r["totals"]
print("exact per-file counts:", {f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[1]: v for f, v in got.items()})
PY

say "deleting the phase-1 store segment(s): $(echo $SEGS1 | wc -w) file(s)"
rm -f $SEGS1
"${AUDIT[@]}" --settle 0 >"$WORK/audit2.out" 2>&1
rc=$?
cat "$WORK/audit2.out"
[ "$rc" = 1 ] || fail "loghaul audit exited $rc after events were deleted (want 1)"
for f in "$WORK/a/app-0.log:$((N1 / 2))" "$WORK/a/app-1.log:$((N1 - N1 / 2))"; do
    grep -q "MISSING: host ledger-host file ${f%%:*} window .*: ${f##*:} acknowledged" \
        "$WORK/audit2.out" || fail "the audit does not name ${f%%:*} with ${f##*:} missing"
done
grep -q "MISSING: .*$WORK/b/" "$WORK/audit2.out" && fail "phase-2 file reported missing"
u=$("${AUDIT[@]}" --settle 0 --json | total unexplained)
[ "$u" = "$N1" ] || fail "unexplained total $u, want $N1"

stop_daemon "$APID"
stop_daemon "$QPID"
stop_daemon "$IPID"
stop_daemon "$CPID"
say "ok: audit exact on $N events (exit 0), catches $N1 deleted events per file (exit 1)"

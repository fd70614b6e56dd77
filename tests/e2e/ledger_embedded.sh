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
# Another tenant's token sees none of it; an unknown token exits 2.
# Needs no external service (~20 s).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/ledger_lib.sh"

N1=4000 N2=1500
[ "$LONG" = 1 ] && N1=100000 N2=50000
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/a" "$WORK/b" "$WORK/agent"
ledger_embedded_yaml "linger: 100ms" ", merge_interval: 0"
ledger_agent_yaml ledger-host dev-token "$WORK/a/*.log" "$WORK/b/*.log"
AUDIT=("$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token dev-token-1234 --since 2h
       --archive-settle 0)
ledger_start_all

say "phase 1: $N1 lines into 2 files"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/a" --files 2 --lines "$N1" --size 200 \
    --rotate-every 1000000000 >"$WORK/w1.out" 2>&1 || { cat "$WORK/w1.out"; fail "logwriter"; }
ledger_wait "$N1" 60
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
ledger_wait "$N" 60

say "audit of the quiescent pipeline"
ledger_expect_exact ledger-host "$WORK/a/app-0.log=$((N1 / 2))" "$WORK/a/app-1.log=$((N1 - N1 / 2))" \
    "$WORK/b/app-0.log=$N2"

o="$("$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token other-token-1234 --since 2h \
    --settle 0 --json)" || fail "audit as another tenant"
[ "$(ledger_total acknowledged <<<"$o")" = 0 ] || fail "another tenant sees the ledger of demo"
"$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token wrong-token-1234 >/dev/null 2>&1
[ $? = 2 ] || fail "audit with an unknown token must exit 2"

say "deleting the phase-1 store segment(s): $(echo $SEGS1 | wc -w) file(s)"
rm -f $SEGS1
ledger_expect_missing ledger-host "$WORK/a/app-0.log" $((N1 / 2))
grep -q "MISSING: host ledger-host file $WORK/a/app-1.log window .*: $((N1 - N1 / 2)) acknowledged" \
    "$WORK/audit2.out" || fail "the audit does not name $WORK/a/app-1.log"
grep -q "MISSING: .*$WORK/b/" "$WORK/audit2.out" && fail "phase-2 file reported missing"
u=$("${AUDIT[@]}" --settle 0 --json | ledger_total unexplained)
[ "$u" = "$N1" ] || fail "unexplained total $u, want $N1"

stop_daemon "$APID"
stop_daemon "$QPID"
stop_daemon "$IPID"
stop_daemon "$CPID"
say "ok: audit exact on $N events (exit 0), catches $N1 deleted events per file (exit 1)"

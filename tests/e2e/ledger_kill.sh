#!/usr/bin/env bash
# The delivery ledger under kill -9: while logwriter.py writes N lines at a
# steady rate, the indexer is killed with SIGKILL twice and the collector
# once (each restarted at once). A replay of the uncommitted bus range
# rewrites ledger rows, never adds to them, and a batch the agent sends again
# to the restarted collector keeps its rows' key: once quiescent, `loghaul
# audit --wait` must exit 0 with N acknowledged = indexed = archived and no
# unexplained difference. Prints how many rows the ledger files hold and how
# many distinct ones (more rows: a kill fell between a ledger write and the
# bus commit, and the replay wrote them again). Embedded (~30 s).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/ledger_lib.sh"

N=12000 RATE=600
[ "$LONG" = 1 ] && N=120000 RATE=3000
CPORT=$(free_port) IPORT=$(free_port) QPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/in" "$WORK/agent"
ledger_embedded_yaml "linger: 300ms, max_batch: 700" ""
ledger_agent_yaml kill-host dev-token "$WORK/in/*.log"
AUDIT=("$BUILD/loghaul" audit --url "http://127.0.0.1:$QPORT" --token dev-token-1234 --since 2h
       --archive-settle 0)
ledger_start_all

SECS=$((N / RATE))
say "writing $N lines into 4 files at $RATE lines/s (~${SECS} s); kill -9: indexer twice, collector once"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/in" --files 4 --lines "$N" --size 200 \
    --rate "$RATE" --rotate-every 1000000000 >"$WORK/w.out" 2>&1 &
WPID=$!
LH_PIDS+=("$WPID")
kill9() {  # NAME PIDVAR PORT: SIGKILL, then start again
    local pid="${!2}"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    start_daemon "$1" "$WORK/$1.yaml" "$3"
    printf -v "$2" '%s' "$DAEMON_PID"
    say "  $1 killed with SIGKILL and restarted"
}
sleep $((SECS / 4)); kill9 indexer IPID "$IPORT"
sleep $((SECS / 4)); kill9 collector CPID "$CPORT"
sleep $((SECS / 4)); kill9 indexer IPID "$IPORT"
wait "$WPID" || { cat "$WORK/w.out"; fail "logwriter"; }

ledger_wait "$N" 90
say "audit after the run (--wait: until nothing is pending)"
"${AUDIT[@]}" --wait 60s >"$WORK/audit.out" 2>&1
rc=$?
cat "$WORK/audit.out"
[ "$rc" = 0 ] || fail "loghaul audit exited $rc after a run with kill -9 (want 0)"
j="$("${AUDIT[@]}" --settle 0 --json)"
for k in acknowledged indexed archived; do
    [ "$(ledger_total $k <<<"$j")" = "$N" ] || fail "$k: $(ledger_total $k <<<"$j"), want $N"
done
[ "$(ledger_total unexplained <<<"$j")" = 0 ] || fail "unexplained difference"
rows=$(cat "$WORK"/store/.ledger/*.ndjson | wc -l)
distinct=$(cat "$WORK"/store/.ledger/*.ndjson | python3 -c '
import json, sys
keys = set()
for line in sys.stdin:
    r = json.loads(line)
    keys.add((r["kind"], r["batch"], r["host"], r["file"], r.get("sink"), r.get("object"), r.get("idx")))
print(len(keys))')
say "ledger rows written: $rows, distinct: $distinct"
stop_daemon "$APID"
stop_daemon "$QPID"
stop_daemon "$IPID"
stop_daemon "$CPID"
say "ok: $N events through 3 kill -9s: acknowledged = indexed = archived = $N, nothing unexplained ($rows rows, $distinct distinct)"

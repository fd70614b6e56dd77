#!/usr/bin/env bash
# The agent end to end: logwriter.py writes N lines into 50 files (45
# regular, 5 symlinks) at a steady rate while rotating them (rename and
# create, copytruncate, delete after drain, same name reappearing, symlink
# flips); the real agent tails them and ships to the real collector (spool
# bus). During the run the agent is killed with SIGKILL 3 times and
# restarted, and the collector is stopped for 10 s once. Then:
#   bus_verify: every line on the bus, and a line that arrived twice carries
#               the same event id both times (write-ahead: invisible
#               downstream); prints how many duplicates there were;
#   agent_e2e_check.py: the text of every line byte for byte, the file it is
#               reported from, and per file the order it was written in.
# The agent ships over TLS 1.3 with a client certificate (mTLS required by
# the collector; LOGHAUL_E2E_TLS=0 for plain HTTP).
# LOGHAUL_LONG=1: 1,000,000 lines, 10 kills, the collector down for 60 s.
# LOGHAUL_E2E_WRITE_AHEAD=false runs the agent without write-ahead (expected
# to fail: lines re-read after a kill come back in new batches, new ids).
# Needs no external service.
. "$(dirname "$0")/lib.sh"

N=100000 RATE=3500 KILLS=3 DOWN=10
[ "$LONG" = 1 ] && N=1000000 RATE=10000 KILLS=10 DOWN=60
FILES=50 LINKS=5 SIZE=500
CPORT=$(free_port) APORT=$(free_port)
mkdir -p "$WORK/input" "$WORK/agent"
SCHEME=http LISTEN_TLS="" SHIP_TLS=""
if [ "${LOGHAUL_E2E_TLS:-1}" = 1 ]; then
    P="$WORK/pki"
    make_pki "$P" || fail "openssl: cannot make test certificates"
    SCHEME=https
    LISTEN_TLS=", tls: { cert: $P/server.crt, key: $P/server.key, client_ca: $P/ca.crt, client_auth: require }"
    SHIP_TLS="  tls: { ca: $P/ca.crt, cert: $P/agent.crt, key: $P/agent.key }"
fi
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT$LISTEN_TLS }
tenants: [ { name: demo, tokens: [dev-token], client_cns: [agent-1.demo] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
cat >"$WORK/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail:
  include: [$WORK/input/*.log]
  checkpoint: $WORK/agent/checkpoint.json
  rotate_wait: 2s
ship:
  endpoints: [$SCHEME://localhost:$CPORT]
  token: dev-token
$SHIP_TLS
buffer:
  dir: $WORK/agent/buffer
  write_ahead: ${LOGHAUL_E2E_WRITE_AHEAD:-true}
host_id: e2e-host
EOT

collector_probe() {  # the readiness probe of the collector's listener
    if [ "$SCHEME" = https ]; then
        READY_URL=https://localhost
        READY_CURL="--cacert $P/ca.crt --cert $P/agent.crt --key $P/agent.key --resolve localhost:$CPORT:127.0.0.1"
    else
        READY_URL="" READY_CURL=""
    fi
}
collector_probe
start_daemon collector "$WORK/collector.yaml" "$CPORT"
CPID=$DAEMON_PID
READY_URL="" READY_CURL=""
start_daemon agent "$WORK/agent.yaml" "$APORT"
APID=$DAEMON_PID

SECS=$(( N / RATE ))
say "writing $N lines into $FILES files at $RATE lines/s (~${SECS} s), $KILLS kills, collector down ${DOWN} s"
python3 "$ROOT/tests/integration/logwriter.py" "$WORK/input" --files "$FILES" --links "$LINKS" \
    --lines "$N" --size "$SIZE" --rate "$RATE" --rotate-every $(( N / 50 )) \
    --checkpoint "$WORK/agent/checkpoint.json" --expected "$WORK/expected.tsv" \
    >"$WORK/logwriter.out" 2>&1 &
WPID=$!
LH_PIDS+=("$WPID")

metric() {  # NAME: loghaul_agent_NAME from the agent's /metrics
    curl -s "http://127.0.0.1:$APORT/metrics" | awk -v n="loghaul_agent_$1" '$1 == n {print $2}'
}

# The schedule, in seconds from now: kills spread over the run (the first
# ones at random offsets), the collector down from 30% of the run.
T0=$SECONDS
declare -a KILL_AT=()
for k in $(seq 1 "$KILLS"); do
    KILL_AT+=($(( SECS * k / (KILLS + 1) + RANDOM % 3 )))
done
DOWN_AT=$(( SECS * 3 / 10 )) UP_AT=$(( SECS * 3 / 10 + DOWN ))
next_kill=0 collector_down=0 collector_done=0
while kill -0 "$WPID" 2>/dev/null || [ "$next_kill" -lt "$KILLS" ] || [ "$collector_done" = 0 ]; do
    t=$(( SECONDS - T0 ))
    if [ "$next_kill" -lt "$KILLS" ] && [ "$t" -ge "${KILL_AT[$next_kill]}" ]; then
        # The worst moments (waiting up to 2 s for one): while a batch is
        # written ahead but not acknowledged (in flight: the collector may
        # have taken it, the agent does not know), or right after an
        # acknowledgement (before the next checkpoint).
        end=$((SECONDS + 2))
        if [ $((next_kill % 2)) = 0 ]; then
            while ! compgen -G "$WORK/agent/buffer/*.batch" >/dev/null && [ $SECONDS -lt $end ]
            do
                sleep 0.002
            done
        else
            a0=$(metric lines_acked_total)
            while [ "$(metric lines_acked_total)" = "$a0" ] && [ $SECONDS -lt $end ]; do
                sleep 0.005
            done
        fi
        kill -KILL "$APID"
        wait "$APID" 2>/dev/null
        next_kill=$((next_kill + 1))
        say "  agent killed with SIGKILL ($next_kill of $KILLS, t=${t}s; buffer holds" \
            "$(ls "$WORK/agent/buffer" | grep -c '\.batch') batch files); restarting"
        start_daemon agent "$WORK/agent.yaml" "$APORT"
        APID=$DAEMON_PID
    fi
    if [ "$collector_down" = 0 ] && [ "$collector_done" = 0 ] && [ "$t" -ge "$DOWN_AT" ]; then
        say "  collector stopped for ${DOWN} s (t=${t}s)"
        stop_daemon "$CPID"
        collector_down=1
    fi
    if [ "$collector_down" = 1 ] && [ "$t" -ge "$UP_AT" ]; then
        say "  collector restarted (t=${t}s)"
        collector_probe
        start_daemon collector "$WORK/collector.yaml" "$CPORT"
        READY_URL="" READY_CURL=""
        CPID=$DAEMON_PID
        collector_down=0 collector_done=1
    fi
    sleep 0.2
done
wait "$WPID" || { cat "$WORK/logwriter.out"; fail "logwriter"; }
cat "$WORK/logwriter.out"

say "verifying the bus (every line, same id when repeated)"
"$BUILD/tests/bus_verify" --bus spool --dir "$WORK/spool" --expect "$N" --at-least-once \
    --timeout 300 --dump "$WORK/dump.tsv" | tee "$WORK/verify.out"
[ "${PIPESTATUS[0]}" = 0 ] || fail "bus_verify"
dups=$(sed -n 's/.* \([0-9]*\) duplicates.*/\1/p' "$WORK/verify.out")
say "duplicates on the bus: ${dups:-?} (all with the id of their first copy)"

say "checking text, source file and per-file order"
python3 "$ROOT/tests/integration/agent_e2e_check.py" "$WORK/expected.tsv" "$WORK/dump.tsv" \
    --size "$SIZE" --files "$FILES" || fail "agent_e2e_check"

if grep -q "loss window" "$WORK"/agent.log; then
    grep "loss window" "$WORK"/agent.log | head -5
    fail "the agent reported loss windows"
fi
found=$(sed -n 's/.*buffer: \([0-9]*\) batch(es), .* waiting in.*/\1/p' "$WORK/agent.log" |
    awk '{n += $1} END {print n + 0}')
say "batch files the restarted agents found in their disk buffer (the undelivered ones are sent again, same ids): $found"
replays=$(curl -s "http://127.0.0.1:$CPORT/metrics" |
    awk '$1 == "loghaul_collector_duplicate_batches_total" {print $2}')
say "batches sent again after a kill and answered from the collector's idempotency cache" \
    "(since its restart): ${replays:-0}"
stop_daemon "$APID"
stop_daemon "$CPID"
say "ok: $N lines, $KILLS kills, collector down ${DOWN} s, ${dups:-?} duplicates, all with their first id"

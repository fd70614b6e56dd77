#!/usr/bin/env bash
# The collector into the embedded spool: records from 8 concurrent clients
# land on the bus exactly once with the right key and tenant header; then
# kill -9 the collector twice under load: every batch that got a 200 is on
# the bus, and the batches the clients retried land again with the same ids.
. "$(dirname "$0")/lib.sh"

N=200000
[ "$LONG" = 1 ] && N=1000000
PORT=$(free_port)
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$PORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
URL="http://127.0.0.1:$PORT/v1/logs/ingest"

say "exactly once: $N records, 8 clients"
start_daemon collector "$WORK/collector.yaml" "$PORT"
PID=$DAEMON_PID
"$BUILD/tests/ingest_load" --url "$URL" --clients 8 --records "$N" || fail "load"
"$BUILD/tests/bus_verify" --bus spool --dir "$WORK/spool" --expect "$N" || fail "verify"
stop_daemon "$PID"

say "kill -9 under load: 2 kills, clients retry"
start_daemon collector "$WORK/collector.yaml" "$PORT"
"$BUILD/tests/ingest_load" --url "$URL" --clients 8 --records "$N" --start "$N" \
    --max-seconds 120 >"$WORK/load2.out" 2>&1 &
LOAD=$!
for k in 1 2; do
    sleep 0.7
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null
    say "  killed ($k); restarting"
    start_daemon collector "$WORK/collector.yaml" "$PORT"
done
wait "$LOAD" || { cat "$WORK/load2.out"; fail "load under kills"; }
cat "$WORK/load2.out"
"$BUILD/tests/bus_verify" --bus spool --dir "$WORK/spool" --start "$N" --expect "$N" \
    --at-least-once --group after-kills || fail "verify after kills"
say "ok"

#!/usr/bin/env bash
# Kafka unreachable: the collector keeps answering 200 by writing batches to
# its bounded local spool, and forwards them once the broker is back; every
# accepted record ends up in Kafka. With the local spool full, it answers
# 503 and keeps serving health probes.
# services: kafka
. "$(dirname "$0")/lib.sh"

N=50000
[ "$LONG" = 1 ] && N=500000
PORT=$(free_port)
TOPIC="itest-outage-$$-$RANDOM"
conf() {  # max_size
    cat <<EOT
listen: { address: 127.0.0.1:$PORT }
tenants: [ { name: demo, tokens: [dev-token] } ]
bus:
  type: kafka
  topic: $TOPIC
  kafka: { brokers: 127.0.0.1:9092, delivery_timeout: 5s }
fallback: { dir: $WORK/fallback, max_size: $1, probe_interval: 1s }
EOT
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
URL="http://127.0.0.1:$PORT/v1/logs/ingest"

conf 1GiB >"$WORK/collector.yaml"
start_daemon collector "$WORK/collector.yaml" "$PORT"
PID=$DAEMON_PID
# Create the topic while the broker is up, so forwarding is not waiting on it.
"$BUILD/tests/ingest_load" --url "$URL" --records 1000 --start 900000000 >/dev/null || fail "warm-up"

say "broker down: $N records still accepted (into the local spool)"
"$ROOT/tests/services/kafka" stop
"$BUILD/tests/ingest_load" --url "$URL" --clients 8 --records "$N" --max-seconds 120 || fail "load while Kafka is down"
[ "$(metric loghaul_collector_fallback_active)" = 1 ] || fail "fallback not active"
spooled=$(metric loghaul_collector_fallback_spooled_total)
echo "  spooled locally: $spooled"

say "broker back: the local spool drains into Kafka"
"$ROOT/tests/services/kafka" start || fail "kafka did not come back"
end=$((SECONDS + 180))
while [ "$(metric loghaul_collector_fallback_forwarded_total)" != "$spooled" ]; do
    [ $SECONDS -lt $end ] || fail "forwarded $(metric loghaul_collector_fallback_forwarded_total) of $spooled"
    sleep 1
done
[ "$(metric loghaul_collector_fallback_active)" = 0 ] || fail "fallback still active"
"$BUILD/tests/bus_verify" --bus kafka --topic "$TOPIC" --expect "$N" --at-least-once --timeout 120 \
    || fail "verify"
stop_daemon "$PID"

say "local spool full: 503, and the daemon keeps serving"
rm -rf "$WORK/fallback"
conf 1MiB >"$WORK/collector.yaml"
start_daemon collector "$WORK/collector.yaml" "$PORT"
"$ROOT/tests/services/kafka" stop
"$BUILD/tests/ingest_load" --url "$URL" --clients 2 --records 20000 --start 5000000 \
    --max-seconds 15 >"$WORK/full.out" 2>&1
cat "$WORK/full.out"
grep -q ' 503=0 ' "$WORK/full.out" && fail "no 503 with a full local spool"
expect_status 200 "http://127.0.0.1:$PORT/healthz"
"$ROOT/tests/services/kafka" start || fail "kafka did not come back"
say "ok"

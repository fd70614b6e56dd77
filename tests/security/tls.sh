#!/usr/bin/env bash
# tests/security/tls.sh - TLS 1.3 only and mTLS on the collector's ingest
# listener and queryd's search listener, and on the agent -> collector hop.
# Certificates come from make_pki/make_pki_bad (tests/integration/lib.sh).
# Per listener (both with client_auth: require):
#   - openssl s_client -tls1_2, -tls1_1, -tls1 (the old ones offered at
#     SECLEVEL=0 so that the client really sends them): the server answers
#     alert protocol_version (70); -tls1_3 completes (TLSv1.3);
#     curl --tls-max 1.2 fails (exit 35, protocol version); plain HTTP on the
#     TLS port gets no HTTP answer;
#   - mTLS: no client certificate -> alert certificate_required (116), an
#     unknown CA -> unknown_ca (48), a CA of the same name with another key
#     -> decrypt_error (51), an expired certificate of the right CA ->
#     certificate_expired (45): curl exit 56, no HTTP status, and nothing
#     of those requests reaches the bus (their markers are not in the spool)
#     or an answer; a valid certificate -> 200; a valid certificate whose CN
#     no tenant maps, without a token -> 401, one tenant's token with another
#     tenant's certificate -> 403 (collector);
#   - loghaul_http_tls_handshake_failures_total counts every refused handshake.
# Agent -> collector: an agent that trusts the wrong CA (an unknown one, and
# an impostor with the right CA's name) or presents an expired certificate
# ships nothing: no line acknowledged, nothing on the collector's bus,
# requests_total{code="error"} counts the failures and the log says why;
# without write-ahead (and no spilling) its checkpoint stays at 0 while it
# retries; what it read is kept (after the checkpoint or in its disk buffer)
# and delivered once CA and certificate are fixed. An endpoint that speaks
# only TLS 1.2 (openssl s_server) gets nothing from the agent either.
# Needs no external service; about 15 s.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/seclib.sh"

P="$WORK/pki"
make_pki "$P" && make_pki_bad "$P" || fail "openssl: cannot make test certificates"
CPORT=$(free_port) QPORT=$(free_port)
TLS="tls: { cert: $P/server.crt, key: $P/server.key, client_ca: $P/ca.crt, client_auth: require }"
cat >"$WORK/collector.yaml" <<EOT
listen: { address: 127.0.0.1:$CPORT, $TLS }
tenants:
  - { name: demo, tokens: [dev-token], client_cns: [agent-1.demo] }
  - { name: beta, tokens: [beta-token] }
bus: { type: spool, topic: logs, spool: { dir: $WORK/spool } }
EOT
mkdir -p "$WORK/store"
cat >"$WORK/queryd.yaml" <<EOT
listen: { address: 127.0.0.1:$QPORT, $TLS }
tenants: [ { name: demo, tokens: [query-token-1] } ]
tiers: [ { type: store, store: { dir: $WORK/store } } ]
EOT
READY_URL=https://localhost
for port in $CPORT $QPORT; do
    READY_CURL="--cacert $P/ca.crt --cert $P/agent.crt --key $P/agent.key --resolve localhost:$port:127.0.0.1"
    if [ "$port" = "$CPORT" ]; then
        start_daemon collector "$WORK/collector.yaml" "$port"
        CPID=$DAEMON_PID
    else
        start_daemon queryd "$WORK/queryd.yaml" "$port"
        QPID=$DAEMON_PID
    fi
done
alive() {  # the collector and queryd still run (refused clients must not harm them)
    local pid
    for pid in "$CPID" "$QPID"; do
        kill -0 "$pid" 2>/dev/null && continue
        wait "$pid"
        echo "exit status $?" >&2
        tail -n 20 "$WORK/collector.log" "$WORK/queryd.log" >&2
        fail "a daemon (pid $pid) is gone: $1"
    done
}
READY_URL="" READY_CURL=""

# tls_curl PORT CERT [CURL-ARGS...]: a request over TLS to localhost:PORT
# presenting CERT (none: no client certificate); prints "<http status>
# <curl exit>", stderr in $WORK/curl.err.
tls_curl() {
    local port="$1" cert="$2" code
    shift 2
    local -a c=(--resolve "localhost:$port:127.0.0.1" --cacert "$P/ca.crt")
    [ "$cert" != none ] && c+=(--cert "$P/$cert.crt" --key "$P/$cert.key")
    rm -f "$WORK/curl.body"
    code=$(curl -sS -o "$WORK/curl.body" -w '%{http_code}' "${c[@]}" "$@" 2>"$WORK/curl.err")
    echo "$code $?"
}

handshakes() {  # PORT: refused TLS handshakes so far
    local port="$1"
    curl -s --resolve "localhost:$port:127.0.0.1" --cacert "$P/ca.crt" --cert "$P/agent.crt" \
        --key "$P/agent.key" "https://localhost:$port/metrics" |
        awk '$1 == "loghaul_http_tls_handshake_failures_total" {print $2}'
}

# check_listener NAME PORT URL-PATH BODY AUTH-HEADER: everything above on one listener.
check_listener() {
    local name="$1" port="$2" path="$3" body="$4" auth="$5" v out rc got
    local url="https://localhost:$port$path" h0 refused=0
    h0=$(handshakes "$port")
    for v in tls1_2 tls1_1 tls1; do
        out=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost "-$v" \
            -cipher 'DEFAULT@SECLEVEL=0' -CAfile "$P/ca.crt" -cert "$P/agent.crt" \
            -key "$P/agent.key" </dev/null 2>&1)
        rc=$?
        { [ "$rc" != 0 ] && grep -q 'alert protocol version' <<<"$out" &&
            ! grep -q '^New, TLS' <<<"$out"; } ||
            { echo "$out" | tail -20; fail "$name: openssl s_client -$v was not refused"; }
        refused=$((refused + 1))
    done
    out=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost -tls1_3 \
        -CAfile "$P/ca.crt" -cert "$P/agent.crt" -key "$P/agent.key" </dev/null 2>&1)
    rc=$?
    { [ "$rc" = 0 ] && grep -q '^New, TLSv1.3, Cipher is TLS_' <<<"$out" &&
        grep -q 'Verify return code: 0 (ok)' <<<"$out"; } ||
        { echo "$out" | tail -20; fail "$name: openssl s_client -tls1_3 failed"; }
    say "  $name: s_client -tls1_2/-tls1_1/-tls1 refused (alert protocol version), -tls1_3 ok"

    got=$(tls_curl "$port" agent --tls-max 1.2 -X POST -H "$auth" --data-binary "$body" "$url")
    [ "$got" = "000 35" ] && grep -q 'alert protocol version' "$WORK/curl.err" ||
        { cat "$WORK/curl.err"; fail "$name: curl --tls-max 1.2: $got"; }
    refused=$((refused + 1))
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port$path")
    [ "$got" = 000 ] || fail "$name: plain HTTP on the TLS port answered $got"
    refused=$((refused + 1))
    say "  $name: curl --tls-max 1.2 refused (exit 35), plain HTTP gets no answer"

    local cert want marker
    for cert in none:'certificate required' rogue:'unknown ca' impostor:'decrypt error' \
        expired:'certificate expired'; do
        want="${cert#*:}" cert="${cert%%:*}"
        marker="refused${cert}${name}z"
        got=$(tls_curl "$port" "$cert" --tlsv1.3 -X POST -H "$auth" \
            --data-binary "${body//MARKER/$marker}" "$url")
        [ "$got" = "000 56" ] && grep -q "alert $want" "$WORK/curl.err" ||
            { cat "$WORK/curl.err"; fail "$name: client cert $cert: $got, want alert $want"; }
        [ -s "$WORK/curl.body" ] && fail "$name: client cert $cert: an answer came back"
        refused=$((refused + 1))
    done
    say "  $name: no certificate / unknown CA / impostor CA / expired: alerts" \
        "certificate_required, unknown_ca, decrypt_error, certificate_expired; no answer"
    got=$(tls_curl "$port" agent --tlsv1.3 -X POST -H "$auth" \
        --data-binary "${body//MARKER/accepted${name}z}" "$url")
    [ "$got" = "200 0" ] || { cat "$WORK/curl.err" "$WORK/curl.body"; fail "$name: valid cert: $got"; }
    local h1
    h1=$(handshakes "$port")
    [ $((h1 - h0)) = "$refused" ] ||
        fail "$name: handshake failures counted $((h1 - h0)), want $refused"
    say "  $name: a valid certificate: 200; $refused refused handshakes counted"
}

say "collector ingest listener (port $CPORT)"
INGEST='{"log_records":[{"raw_message":"tls probe MARKER"}]}'
check_listener collector "$CPORT" /v1/logs/ingest "$INGEST" "X-Log-Shipper-Token: dev-token"
got=$(tls_curl "$CPORT" stranger --tlsv1.3 -X POST --data-binary "${INGEST//MARKER/strangerz}" \
    "https://localhost:$CPORT/v1/logs/ingest")
[ "$got" = "401 0" ] || fail "collector: a verified certificate of no tenant, no token: $got"
got=$(tls_curl "$CPORT" agent --tlsv1.3 -X POST --data-binary "${INGEST//MARKER/bycnz}" \
    "https://localhost:$CPORT/v1/logs/ingest")
[ "$got" = "200 0" ] || fail "collector: the agent certificate alone (CN agent-1.demo): $got"
got=$(tls_curl "$CPORT" agent --tlsv1.3 -X POST -H "X-Log-Shipper-Token: beta-token" \
    --data-binary "${INGEST//MARKER/mixedz}" "https://localhost:$CPORT/v1/logs/ingest")
[ "$got" = "403 0" ] || fail "collector: beta's token with demo's certificate: $got"
say "  collector: a verified CN no tenant has, no token: 401; the tenant's CN alone: 200;" \
    "one tenant's token with another's certificate: 403"
spool_has() { grep -rqa -- "$1" "$WORK/spool"; }
for m in acceptedcollectorz bycnz; do spool_has "$m" || fail "accepted $m is not on the bus"; done
for m in refusednonecollectorz refusedroguecollectorz refusedimpostorcollectorz \
    refusedexpiredcollectorz strangerz mixedz; do
    spool_has "$m" && fail "refused request $m reached the bus"
done
say "  collector: the bus holds the accepted requests' events and none of the refused"

alive "after the collector's checks"
say "queryd search listener (port $QPORT)"
check_listener queryd "$QPORT" /v1/logs/search '{"query":{"full_text":"MARKER"}}' \
    "Authorization: Bearer query-token-1"
json "$WORK/curl.body" '"total_hits" in j' | grep -qx True || fail "queryd: no search answer"

# ---- the agent -> collector hop ----
APORT=$(free_port)
mkdir -p "$WORK/input"
N=50
for i in $(seq 1 "$N"); do echo "agent line $i shipmarkz"; done >"$WORK/input/app.log"
# run_agent DIR CA CERT WRITE-AHEAD: starts an agent (state in $WORK/DIR)
# trusting CA, with client certificate CERT.
run_agent() {
    local d="$WORK/$1" ca="$2" cert="$3" wa="$4"
    mkdir -p "$d"
    cat >"$d/agent.yaml" <<EOT
listen: { address: 127.0.0.1:$APORT }
tail: { include: [$WORK/input/*.log], checkpoint: $d/checkpoint.json, read_from: beginning }
ship:
  endpoints: [https://localhost:$CPORT]
  token: dev-token
  tls: { ca: $P/$ca.crt, cert: $P/$cert.crt, key: $P/$cert.key }
  backoff_base: 100ms
  backoff_max: 500ms
  spill_after: ${SPILL_AFTER:-2s}
buffer: { dir: $d/buffer, write_ahead: $wa }
host_id: tls-host
EOT
    start_daemon agent "$d/agent.yaml" "$APORT" "$d/agent.log"
    AGENT_PID=$DAEMON_PID
}
agent_metric() { metric_of "http://127.0.0.1:$APORT" "$1"; }
ship_errors() {
    curl -s "http://127.0.0.1:$APORT/metrics" |
        awk '$1 ~ /^loghaul_agent_requests_total\{.*code="error"/ {n += $2} END {print n + 0}'
}
errors_at_least() { [ "$(ship_errors)" -ge "$1" ]; }
read_all() { [ "$(agent_metric loghaul_agent_lines_read_total)" -ge "$N" ]; }
on_bus() { grep -rao 'agent line [0-9]* shipmarkz' "$WORK/spool" | sort -u | wc -l; }
checkpoint_offset() {  # DIR: the file's offset in the checkpoint (0 when none)
    python3 - "$WORK/$1/checkpoint.json" <<'PY'
import json, os, sys
p = sys.argv[1]
doc = json.load(open(p)) if os.path.exists(p) else {}
print(sum(f.get("offset", 0) for f in doc.get("files", [])))
PY
}

# Nothing may be acknowledged or reach the bus, and nothing may be lost:
# each line is either still after the checkpoint or kept in the disk buffer
# (with write-ahead, the default, the checkpoint moves past batches written
# there; without it, batches no collector takes are spilled there, at the
# latest when the agent stops: docs/architecture.md, delivery rule 1).
for bad in agent-wrongca:rogue-ca:agent:false:'SSL certificate problem' \
    agent-impostor:impostor-ca:agent:true:'SSL certificate problem' \
    agent-expired:ca:expired:true:'alert certificate expired'; do
    IFS=: read -r name ca cert wa why <<<"$bad"
    # without write-ahead and with no spilling while it runs, the checkpoint
    # must stay at 0 while the agent runs
    SPILL_AFTER=2s
    [ "$wa" = false ] && SPILL_AFTER=1h
    alive "before agent $name"
    run_agent "$name" "$ca" "$cert" "$wa"
    wait_for 30 "$name: the agent read its file" read_all
    wait_for 30 "$name: three failed requests" errors_at_least 3
    acked=$(agent_metric loghaul_agent_lines_acked_total)
    [ "$acked" = 0 ] || fail "$name: $acked lines acknowledged"
    if [ "$wa" = false ]; then
        sleep 0.5   # three checkpoint intervals: a wrong move would be written by now
        off=$(checkpoint_offset "$name")
        [ "$off" = 0 ] || fail "$name: the checkpoint moved to $off without a 200"
        say "agent $name (no write-ahead, no spill): checkpoint at 0 while it retries"
    fi
    stop_daemon "$AGENT_PID"
    d="$WORK/$name"
    grep -q "ship: POST https://localhost:$CPORT/v1/logs/ingest: .*$why" "$d/agent.log" ||
        { grep ship: "$d/agent.log" | tail -3; fail "$name: the agent's log does not say '$why'"; }
    [ "$(on_bus)" = 0 ] || fail "$name: agent lines reached the bus"
    off=$(checkpoint_offset "$name")
    kept=$(find "$d/buffer" -name '*.batch' | wc -l)
    [ "$off" = 0 ] || [ "$kept" -gt 0 ] ||
        fail "$name: checkpoint at $off and no batch kept in the disk buffer"
    why=$(grep -o "ship: POST https://localhost:$CPORT/v1/logs/ingest: [^;]*" "$d/agent.log" |
        head -1 | sed 's/.*ingest: //')
    say "agent $name (write-ahead $wa): 0 acknowledged, nothing on the bus; checkpoint" \
        "at $off, $kept batch file(s) kept in the disk buffer; log: $why"
done

# The same agents, CA and certificate fixed: what they kept is delivered
# (when their checkpoint is already at the end, only from the disk buffer).
all_on_bus() { [ "$(on_bus)" = "$N" ]; }
buffer_empty() { ! compgen -G "$WORK/$1/buffer/*.batch" >/dev/null; }
read_to_end() { [ "$(checkpoint_offset "$1")" = "$(stat -c %s "$WORK/input/app.log")" ]; }
sent() { grep -rao 'agent line [0-9]* shipmarkz' "$WORK/spool" | wc -l; }
SPILL_AFTER=2s
for name in agent-wrongca agent-impostor agent-expired; do
    alive "before agent $name, fixed"
    before=$(sent)
    run_agent "$name" ca agent true
    wait_for 30 "$name, fixed: every line on the bus" all_on_bus
    wait_for 30 "$name, fixed: its disk buffer empties" buffer_empty "$name"
    wait_for 30 "$name, fixed: its checkpoint reaches the end" read_to_end "$name"
    grew() { [ $(( $(sent) - before )) -ge "$N" ]; }
    wait_for 30 "$name, fixed: $N more lines on the bus" grew
    stop_daemon "$AGENT_PID"
done
say "the three agents with the right CA and certificate: each delivered all $N lines it kept"
# An endpoint that speaks only TLS 1.2 (openssl s_server, the right
# certificate): the agent (TLS 1.3 unless ship.tls.tls12) does not talk to it.
SPORT=$(free_port)
openssl s_server -accept "127.0.0.1:$SPORT" -cert "$P/server.crt" -key "$P/server.key" \
    -tls1_2 -www -quiet >"$WORK/s_server.log" 2>&1 &
LH_PIDS+=($!)
s_server_up() { (exec 3<>"/dev/tcp/127.0.0.1/$SPORT") 2>/dev/null; }
wait_for 10 "openssl s_server" s_server_up
CPORT_REAL=$CPORT CPORT=$SPORT
run_agent agent-tls12 ca agent false
wait_for 30 "tls12: three failed requests" errors_at_least 3
[ "$(agent_metric loghaul_agent_lines_acked_total)" = 0 ] || fail "tls12: lines acknowledged"
stop_daemon "$AGENT_PID"
CPORT=$CPORT_REAL
why=$(grep -o "ship: POST https://localhost:$SPORT/v1/logs/ingest: [^;]*" \
    "$WORK/agent-tls12/agent.log" | head -1 | sed 's/.*ingest: //')
grep -qi 'protocol version\|unsupported protocol' <<<"$why" ||
    fail "tls12: the agent's log does not name the protocol version: $why"
say "agent against a TLS 1.2-only endpoint: nothing sent; log: $why"
alive "at the end"
stop_daemon "$QPID"
stop_daemon "$CPID"
say "ok: TLS 1.3 only and mTLS on collector and queryd, agent refuses a wrong CA / expired cert"

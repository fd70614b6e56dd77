# tests/integration/lib.sh - helpers for integration test scripts: a private
# work directory, free ports, starting loghaul daemons and waiting for them,
# and cleanup of everything a test started. Source it; BUILD is the build
# directory (default build).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lh-itest-XXXXXX")"
LONG="${LOGHAUL_LONG:-0}"
declare -a LH_PIDS=()

lh_cleanup() {
    # Only the processes still among this shell's jobs: the pid of one that
    # was stopped and waited for may belong to another process by now (pids
    # wrap at 32768 on a busy machine), which must not get our signals.
    local pid live=" $(jobs -p | tr '\n' ' ') "
    local -a mine=()
    for pid in "${LH_PIDS[@]}"; do
        case "$live" in *" $pid "*) mine+=("$pid") ;; esac
    done
    for pid in "${mine[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${mine[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    [ -n "${LOGHAUL_KEEP_WORK:-}" ] && echo "work dir kept: $WORK" || rm -rf "$WORK"
}
trap lh_cleanup EXIT

say() { echo "[$(date +%H:%M:%S)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# A TCP port nothing listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_daemon NAME CONFIG PORT [LOGFILE]: starts loghaul-NAME, waits for
# /readyz on 127.0.0.1:PORT, sets DAEMON_PID. For a TLS listener, set
# READY_URL (e.g. https://localhost) and READY_CURL (curl options: CA,
# client certificate, --resolve) for the probe.
start_daemon() {
    local name="$1" conf="$2" port="$3" log="${4:-$WORK/$1.log}"
    local -a probe=()
    [ -n "${READY_CURL:-}" ] && read -r -a probe <<<"$READY_CURL"
    "$BUILD/loghaul-$name" -c "$conf" >>"$log" 2>&1 &
    DAEMON_PID=$!
    LH_PIDS+=("$DAEMON_PID")
    local end=$((SECONDS + 30))
    until curl -fs "${probe[@]}" "${READY_URL:-http://127.0.0.1}:$port/readyz" >/dev/null 2>&1; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null || [ $SECONDS -ge $end ]; then
            tail -n 30 "$log" >&2
            fail "loghaul-$name did not become ready on port $port"
        fi
        sleep 0.1
    done
}

# stop_daemon PID: SIGTERM and wait for a clean exit (status 0).
stop_daemon() {
    local pid="$1" rc
    kill -TERM "$pid" 2>/dev/null || return 0
    wait "$pid" 2>/dev/null
    rc=$?
    [ "$rc" = 0 ] || fail "pid $pid exited with $rc after SIGTERM"
}

# make_pki DIR: a test CA, a server certificate for localhost/127.0.0.1 and
# a client certificate with CN agent-1.demo, all signed by that CA.
make_pki() {
    local p="$1"
    mkdir -p "$p"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=loghaul-test-ca -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null || return 1
    local leaf cn
    for leaf in server:localhost agent:agent-1.demo; do
        cn="${leaf#*:}" leaf="${leaf%%:*}"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$cn" \
            -keyout "$p/$leaf.key" -out "$p/$leaf.csr" 2>/dev/null || return 1
        openssl x509 -req -in "$p/$leaf.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
            -CAcreateserial -days 2 -out "$p/$leaf.crt" \
            -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1') 2>/dev/null || return 1
    done
}

# expect_status WANT CURL-ARGS...: one request, checks the HTTP status.
expect_status() {
    local want="$1" got
    shift
    got="$(curl -s -o "$WORK/last_body" -w '%{http_code}' "$@")"
    if [ "$got" != "$want" ]; then
        echo "  body: $(head -c 300 "$WORK/last_body")" >&2
        fail "expected HTTP $want, got $got for: $*"
    fi
}

# make_pki_bad DIR: after make_pki DIR, client certificates that must be
# refused, all with CN agent-1.demo: rogue.crt signed by an unknown CA
# (rogue-ca.crt), impostor.crt signed by a CA with the test CA's very name
# but another key, expired.crt signed by the test CA and valid for one day
# in 2025 (`openssl ca -startdate/-enddate`: openssl 3.0 has no -not_after).
# And stranger.crt: signed by the test CA, CN stranger.demo (no tenant's).
make_pki_bad() {
    local p="$1" ca leaf
    for ca in rogue-ca:rogue-test-ca impostor-ca:loghaul-test-ca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=${ca#*:}" -keyout "$p/${ca%%:*}.key" -out "$p/${ca%%:*}.crt" \
            2>/dev/null || return 1
    done
    for leaf in rogue:rogue-ca impostor:impostor-ca stranger:ca expired:; do
        ca="${leaf#*:}" leaf="${leaf%%:*}"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=$([ "$leaf" = stranger ] && echo stranger.demo || echo agent-1.demo)" \
            -keyout "$p/$leaf.key" -out "$p/$leaf.csr" 2>/dev/null || return 1
        [ -n "$ca" ] || continue
        openssl x509 -req -in "$p/$leaf.csr" -CA "$p/$ca.crt" -CAkey "$p/$ca.key" \
            -CAcreateserial -days 2 -out "$p/$leaf.crt" 2>/dev/null || return 1
    done
    mkdir -p "$p/ca-db/new"
    : >"$p/ca-db/index.txt"
    echo 1000 >"$p/ca-db/serial"
    printf '%s\n' '[ca]' 'default_ca = d' '[d]' "database = $p/ca-db/index.txt" \
        "new_certs_dir = $p/ca-db/new" "serial = $p/ca-db/serial" 'policy = p' \
        'default_md = sha256' '[p]' 'commonName = supplied' >"$p/ca-db/ca.cnf"
    openssl ca -batch -config "$p/ca-db/ca.cnf" -cert "$p/ca.crt" -keyfile "$p/ca.key" \
        -in "$p/expired.csr" -out "$p/expired.crt" -notext \
        -startdate 20250101000000Z -enddate 20250102000000Z 2>/dev/null || return 1
}

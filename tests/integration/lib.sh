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

# lh_child PID: PID is still a child of this shell. A pid that ended may name
# another user's process by now (pid_max is 32768 here: pids wrap within
# minutes on a busy machine), so cleanup signals only its own children.
lh_child() {
    [ "$(sed -n 's/.*) . \([0-9]*\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" = "$$" ]
}

lh_cleanup() {
    local pid
    local -a mine=()
    for pid in "${LH_PIDS[@]}"; do
        lh_child "$pid" && mine+=("$pid")
    done
    for pid in "${mine[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${mine[@]}"; do
        for _ in $(seq 1 50); do lh_child "$pid" || break; sleep 0.1; done
        lh_child "$pid" && kill -KILL "$pid" 2>/dev/null
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

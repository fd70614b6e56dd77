# shellcheck shell=bash
# Shared helpers for tests/services/{kafka,opensearch,s3,all}.
# Sourced, never run. Each service script defines:
#   svc_install   download/build into the cache (idempotent, fast when cached)
#   svc_launch    start the process in the background, write $LH_PIDFILE
#   svc_healthy   exit 0 when the service answers (quick, no waiting)
#   svc_after_ready (optional) one-off setup once healthy (e.g. create bucket)
#   svc_env       print `export VAR=...` lines telling clients where the service is
# then calls: lh_main "$@"

LOGHAUL_CACHE="${LOGHAUL_CACHE:-$HOME/.cache/loghaul}"
LOGHAUL_SERVICES_DIR="${LOGHAUL_SERVICES_DIR:-/tmp/loghaul-services}"

lh_log() { printf '%s: %s\n' "$LH_NAME" "$*" >&2; }
lh_die() { lh_log "ERROR: $*"; exit 1; }

# lh_init NAME READY_TIMEOUT_S STOP_TIMEOUT_S
lh_init() {
    LH_NAME="$1"
    LH_READY_TIMEOUT="$2"
    LH_STOP_TIMEOUT="$3"
    LH_STATE="$LOGHAUL_SERVICES_DIR/$LH_NAME"
    LH_PIDFILE="$LH_STATE/$LH_NAME.pid"
    LH_LOG="$LH_STATE/$LH_NAME.log"     # the service's own log (tailed on failure)
    LH_OUT="$LH_STATE/$LH_NAME.out"     # stdout/stderr of the launched process
}

lh_is_root() { [ "$(id -u)" -eq 0 ]; }

# Install Debian packages if missing; `apt-get update` only when a plain install fails
# (saves ~20 s on machines whose package lists are fresh).
lh_apt() {
    lh_is_root || lh_die "need Debian package(s) $* (run as root or install them)"
    lh_log "installing Debian package(s): $*"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
            || lh_die "apt-get install $* failed"
    fi
}

# lh_need CMD [DEBIAN_PACKAGE]
lh_need() {
    command -v "$1" >/dev/null 2>&1 || lh_apt "${2:-$1}"
}

lh_need_java() {
    lh_need java default-jdk-headless
    # JAVA_HOME from the java on PATH (Debian: /usr/lib/jvm/java-17-openjdk-amd64).
    if [ -z "${JAVA_HOME:-}" ] || [ ! -x "${JAVA_HOME}/bin/java" ]; then
        JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
    fi
    export JAVA_HOME
    local major
    major="$("$JAVA_HOME/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [ "${major:-0}" -ge 17 ] || lh_die "need Java >= 17, found ${major:-none} at $JAVA_HOME"
}

lh_need_mvn() { lh_need mvn maven; }

# lh_quiet LOGFILE CMD...: run a noisy install step (maven, go) with its output in
# LOGFILE, shown only if it fails.
lh_quiet() {
    local log="$1"; shift
    mkdir -p "$(dirname "$log")"
    if ! "$@" >"$log" 2>&1; then
        echo "----- last 50 lines of $log -----" >&2
        tail -n 50 "$log" >&2
        return 1
    fi
}
lh_need_go() { lh_need go golang; }

# lh_spawn LOGFILE CMD...: run CMD as a session leader (setsid: detached from the
# caller's terminal and process group), stdout+stderr to LOGFILE, pid to $LH_PIDFILE.
# The inner shell writes its own pid and execs, so the pid is CMD's pid and its session id.
lh_spawn() {
    local log="$1"; shift
    rm -f "$LH_PIDFILE"
    # shellcheck disable=SC2016  # $$ and $@ are for the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$LH_PIDFILE" "$@" >"$log" 2>&1 </dev/null 9>&- &
    local tries=50
    while [ "$tries" -gt 0 ]; do
        [ -s "$LH_PIDFILE" ] && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}

# lh_alive PID: the process exists and is not a zombie waiting to be reaped.
lh_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# PID of our running service, or fail.
lh_pid() {
    local pid
    [ -s "$LH_PIDFILE" ] || return 1
    pid="$(tr -dc '0-9' <"$LH_PIDFILE")"
    [ -n "$pid" ] && lh_alive "$pid" || return 1
    printf '%s\n' "$pid"
}

# lh_port_free PORT: nothing listens on 127.0.0.1:PORT / *:PORT.
lh_port_free() {
    ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

lh_tail_log() {
    local f
    for f in "$LH_LOG" "$LH_OUT"; do
        if [ -s "$f" ]; then
            echo "----- last 50 lines of $f -----" >&2
            tail -n 50 "$f" >&2
        fi
    done
}

# Wait for svc_healthy, failing early if the process died.
lh_wait_ready() {
    local deadline=$((SECONDS + LH_READY_TIMEOUT))
    while :; do
        if svc_healthy; then return 0; fi
        if ! lh_pid >/dev/null; then
            lh_log "process exited before becoming ready"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            lh_log "not ready after ${LH_READY_TIMEOUT}s"
            return 1
        fi
        sleep 1
    done
}

# SIGTERM, wait, SIGKILL after LH_STOP_TIMEOUT. Kills the whole process group too
# (we start services with setsid, so the group holds only the service's processes).
lh_stop() {
    local pid deadline
    if ! pid="$(lh_pid)"; then
        rm -f "$LH_PIDFILE"
        lh_log "not running"
        return 0
    fi
    lh_log "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + LH_STOP_TIMEOUT))
    while lh_alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            lh_log "still alive after ${LH_STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
            while lh_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
            lh_alive "$pid" && lh_log "WARNING: pid $pid survived SIGKILL"
            break
        fi
        sleep 0.5
    done
    # Services are started as session leaders (setsid), so the session id is $pid:
    # kill anything the service left behind in its own session (none expected).
    pkill -KILL -s "$pid" 2>/dev/null || true
    rm -f "$LH_PIDFILE"
    lh_log "stopped"
}

lh_status() {
    local pid
    if pid="$(lh_pid)"; then
        if svc_healthy; then
            echo "$LH_NAME: running (pid $pid), healthy"
            return 0
        fi
        echo "$LH_NAME: running (pid $pid), NOT healthy"
        return 1
    fi
    echo "$LH_NAME: stopped"
    return 3
}

lh_start() {
    local pid t0=$SECONDS
    mkdir -p "$LOGHAUL_SERVICES_DIR"
    chmod 0755 "$LOGHAUL_SERVICES_DIR" 2>/dev/null || true
    if [ "${LOGHAUL_SERVICES_FRESH:-0}" = 1 ]; then
        lh_stop
        lh_log "LOGHAUL_SERVICES_FRESH=1: wiping $LH_STATE"
        rm -rf "$LH_STATE"
    fi
    mkdir -p "$LH_STATE"
    if pid="$(lh_pid)"; then
        if svc_healthy; then
            lh_log "already running (pid $pid) and healthy"
            return 0
        fi
        lh_log "already running (pid $pid), waiting for readiness"
    else
        svc_install
        local port
        for port in "${LH_PORTS[@]}"; do
            lh_port_free "$port" || lh_die "port $port is already in use by another process:
$(ss -Hltnp "sport = :$port" 2>/dev/null)"
        done
        : >"$LH_OUT"
        svc_launch
        pid="$(lh_pid)" || { lh_tail_log; lh_die "failed to launch"; }
        lh_log "launched pid $pid, waiting up to ${LH_READY_TIMEOUT}s for readiness"
    fi
    if ! lh_wait_ready; then
        lh_tail_log
        lh_stop >/dev/null 2>&1 || true
        lh_die "start failed"
    fi
    if declare -F svc_after_ready >/dev/null; then
        svc_after_ready || { lh_tail_log; lh_die "post-start setup failed"; }
    fi
    lh_log "ready after $((SECONDS - t0))s"
}

# Serialise concurrent invocations for the same service (two test runners calling start).
# The lock is fd 9: launched services must not inherit it (9>&-), or they would hold it.
lh_lock() {
    mkdir -p "$LOGHAUL_SERVICES_DIR"
    exec 9>"$LOGHAUL_SERVICES_DIR/.$LH_NAME.lock"
    flock 9
}

lh_main() {
    local cmd="${1:-}"
    case "$cmd" in
        install) lh_lock; svc_install ;;
        start) lh_lock; lh_start ;;
        stop) lh_lock; lh_stop ;;
        status) lh_status ;;
        env) svc_env ;;   # shell exports for tests: eval "$(tests/services/NAME env)"
        *)
            echo "usage: $0 install|start|stop|status|env" >&2
            echo "env: LOGHAUL_CACHE=$LOGHAUL_CACHE LOGHAUL_SERVICES_DIR=$LOGHAUL_SERVICES_DIR LOGHAUL_SERVICES_FRESH=0|1" >&2
            exit 2
            ;;
    esac
}

# lib.sh - helpers shared by bench/run and the bench/bench_*.sh scripts.
# Sourced, not run. The driver exports ROOT, BUILD, BB (bench binaries), OUT
# (this run's staging dir), WORK (scratch), RUNS, QUICK, DATA, MANIFEST and
# BENCH (the name of the benchmark being run).
#
# A benchmark reports through four calls that append JSON lines to
# $OUT/samples.jsonl; bench/report.py turns them into latest.json/latest.md:
#   emit NAME VALUE UNIT        one measurement (a figure or a baseline) of one run
#   emit_lines                  the same for {"name","value","unit"} lines on stdin
#   skip NAME REASON            a figure not measured, and why
#   note TEXT                   a remark printed under the benchmark's table

HZ=$(getconf CLK_TCK)
# The services tests/services/ starts, on the ports it was told to use.
KAFKA_BROKERS="127.0.0.1:${LOGHAUL_KAFKA_PORT:-9092}"
OS_URL="http://127.0.0.1:${LOGHAUL_OPENSEARCH_PORT:-9200}"
: "${SERVICE_WAIT:=90}"
RUN_NO=${RUN_NO:-0}

json_str() {   # a JSON string literal of $1
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/ }
    s=${s//$'\t'/ }
    printf '"%s"' "$s"
}

emit() {   # NAME VALUE UNIT
    local v=$2
    [[ $v =~ ^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]] || { echo "emit $1: bad value '$v'" >&2; return 0; }
    printf '{"bench":"%s","run":%d,"name":"%s","value":%s,"unit":%s}\n' \
        "$BENCH" "$RUN_NO" "$1" "$v" "$(json_str "$3")" >>"$OUT/samples.jsonl"
    printf '  %-48s %12s %s\n' "$1" "$v" "$3" >&2
}

emit_lines() {   # {"name":..,"value":..,"unit":..} lines on stdin
    local line name value unit
    while IFS= read -r line; do
        [[ $line == '{"name":'* ]] || continue
        name=$(sed -E 's/.*"name":"([^"]*)".*/\1/' <<<"$line")
        value=$(sed -E 's/.*"value":([^,}]*).*/\1/' <<<"$line")
        unit=$(sed -E 's/.*"unit":"([^"]*)".*/\1/' <<<"$line")
        emit "$name" "$value" "$unit"
    done
}

skip() {   # NAME REASON
    printf '{"bench":"%s","skip":"%s","reason":%s}\n' "$BENCH" "$1" "$(json_str "$2")" \
        >>"$OUT/samples.jsonl"
    printf '  %-48s skipped: %s\n' "$1" "$2" >&2
}

note() {   # TEXT
    printf '{"bench":"%s","note":%s}\n' "$BENCH" "$(json_str "$1")" >>"$OUT/samples.jsonl"
}

plot() {   # KIND FILE TITLE: a series for bench/report.py to draw
    printf '{"bench":"%s","plot":"%s","file":"%s","title":%s}\n' "$BENCH" "$1" "$2" \
        "$(json_str "$3")" >>"$OUT/samples.jsonl"
}

log() { echo "[$BENCH] $*" >&2; }

calc() { python3 -c "import math; print($1)"; }   # calc 'EXPR' -> number

# ---- processes --------------------------------------------------------------

# The /proc readers print nothing (and succeed) when the process is gone.
cpu_s() {   # PID -> user+system CPU seconds of the process (all its threads)
    awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || true
}

hwm_mb() {   # PID -> peak resident set size (VmHWM) in MB
    awk '/^VmHWM:/ { print $2 / 1000 }' "/proc/$1/status" 2>/dev/null || true
}

rss_mb() {   # PID -> current resident set size (VmRSS) in MB
    awk '/^VmRSS:/ { print $2 / 1000 }' "/proc/$1/status" 2>/dev/null || true
}

service_pid() {   # kafka|opensearch -> the JVM's pid (tests/services pid file), or nothing
    local p
    p=$(tr -dc '0-9' <"${LOGHAUL_SERVICES_DIR:-/tmp/loghaul-services}/$1/$1.pid" 2>/dev/null || true)
    [ -n "$p" ] && [ -r "/proc/$p/stat" ] && echo "$p"
    return 0
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() {   # URL SECONDS: until URL answers 2xx
    local deadline=$((SECONDS + $2))
    until curl -fs -o /dev/null "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

metric() {   # URL NAME: the value of an unlabelled Prometheus series (0 if absent)
    curl -fs "$1" 2>/dev/null | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

metric_sum() {   # URL NAME: the sum of a series over all its labels
    curl -fs "$1" 2>/dev/null |
        awk -v n="$2" 'index($1, n) == 1 && (substr($1, length(n) + 1, 1) ~ /^[{]?$/) { v += $2 } END { print v + 0 }'
}

BG_PIDS=()
start_bg() {   # LOGFILE CMD...: runs CMD in the background, its pid in BG_PID
    local logf=$1
    shift
    "$@" >"$logf" 2>&1 &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

stop_pid() {   # PID [SECONDS]: SIGTERM, wait, then SIGKILL
    local pid=$1 t=${2:-20}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + t))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_all_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do stop_pid "$p" 10; done
    BG_PIDS=()
}

# sample_series URL METRIC SCALE FILE: every 0.1 s appends "<seconds> <rate>"
# (the metric's growth per second, divided by SCALE) to FILE until killed.
sample_series() {
    local url=$1 name=$2 scale=$3 file=$4
    python3 - "$url" "$name" "$scale" "$file" <<'PY' &
import sys, time, urllib.request
url, name, scale, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def value():
    try:
        body = urllib.request.urlopen(url, timeout=1).read().decode()
    except Exception:
        return None
    v = 0.0
    for line in body.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
            v += float(line.rsplit(" ", 1)[1])
    return v
t0 = time.monotonic()
prev = (t0, value())
with open(path, "w") as f:
    while True:
        time.sleep(0.1)
        now, v = time.monotonic(), value()
        if v is not None and prev[1] is not None and now > prev[0]:
            f.write(f"{now - t0:.2f} {(v - prev[1]) / (now - prev[0]) / scale:.3f}\n")
            f.flush()
        prev = (now, v)
PY
    SAMPLER_PID=$!
    BG_PIDS+=("$SAMPLER_PID")
    sleep 0.5   # the sampler's first reading comes before what it is to see
}

# ---- daemons ------------------------------------------------------------------

# write_collector_config FILE PORT spool DIR | kafka BROKERS TOPIC
write_collector_config() {
    local f=$1 port=$2 bus=$3
    {
        echo "listen:"
        echo "  address: 127.0.0.1:$port"
        echo "  max_body: 16MiB"
        echo "log:"
        echo "  level: warn"
        echo "drain_timeout: 5s"
        echo "tenants:"
        echo "  - name: bench"
        echo "    tokens: [bench-token]"
        echo "limits:"
        echo "  max_decompressed: 64MiB"
        echo "  max_records: 100000"
        echo "bus:"
        if [ "$bus" = spool ]; then
            echo "  type: spool"
            echo "  topic: logs"
            echo "  spool:"
            echo "    dir: $4"
            echo "    max_size: 16GiB"
            echo "    retention_size: 16GiB"
        else
            echo "  type: kafka"
            echo "  topic: $5"
            echo "  kafka:"
            echo "    brokers: $4"
        fi
    } >"$f"
}

# start_collector CONFIG PORT LOG: starts loghaul-collector, CPID, waits for /readyz
start_collector() {
    start_bg "$3" "$BUILD/loghaul-collector" -c "$1"
    CPID=$BG_PID
    if ! wait_http "http://127.0.0.1:$2/readyz" 60; then
        log "collector did not become ready:"
        tail -20 "$3" >&2
        return 1
    fi
}

# Component checks: a daemon is present when its binary answers --version
# with its name (the placeholders on main print nothing).
have_daemon() {
    "$BUILD/loghaul-$1" --version 2>/dev/null | grep -q "^loghaul-$1 "
}

service_up() {   # kafka|opensearch
    "$ROOT/tests/services/$1" status >/dev/null 2>&1
}

# wait_service NAME SECONDS: waits for a service the driver is starting
wait_service() {
    local deadline=$((SECONDS + $2))
    until service_up "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

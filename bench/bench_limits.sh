#!/usr/bin/env bash
# bench_limits.sh - the physical limits of this machine, measured in the same
# run as everything else (bench/limits.c): memcpy, zstd -1/-3 and gzip level 1
# (ISA-L, as the agent ships) per core on the generated logs, sequential
# write + fdatasync, 4 KiB append + fdatasync rate.
# Baselines: the same work done by the standard tools: `zstd -1/-3 -T1` and
# `gzip -1` (CPU seconds from getrusage via bench/runstat), `dd bs=1M
# conv=fdatasync` and `dd bs=4k oflag=dsync`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

W="$WORK/limits"
rm -rf "$W" && mkdir -p "$W"
DISK_MB=$([ "$QUICK" = 1 ] && echo 128 || echo 1024)
SECS=$([ "$QUICK" = 1 ] && echo 0.4 || echo 2)
# The CLI baselines compress a slice of the data (from the page cache).
SLICE_MB=$([ "$QUICK" = 1 ] && echo 24 || echo 64)
head -c "${SLICE_MB}000000" "$DATA" >"$W/slice.log"

cli_mb_s_per_core() {   # CMD...: MB of the slice per CPU-second of CMD
    "$BB/runstat" --out "$W/stat" -- "$@" >/dev/null
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(float(sys.argv[2]) / max(d["user_s"] + d["sys_s"], 1e-3))' \
        "$W/stat" "$SLICE_MB"
}

for r in $(seq "$RUNS"); do
    export RUN_NO=$r
    log "run $r/$RUNS"
    "$BB/limits" --data "$DATA" --dir "$W" --mb "$DISK_MB" --seconds "$SECS" | emit_lines
    emit baseline.zstd1_cli_mb_s "$(cli_mb_s_per_core zstd -1 -T1 -q -c "$W/slice.log")" "MB/s"
    emit baseline.zstd3_cli_mb_s "$(cli_mb_s_per_core zstd -3 -T1 -q -c "$W/slice.log")" "MB/s"
    emit baseline.gzip1_cli_mb_s "$(cli_mb_s_per_core gzip -1 -c "$W/slice.log")" "MB/s"
    # dd: the same sequential write + one fdatasync at the end.
    t=$( { /usr/bin/env LC_ALL=C dd if=/dev/zero of="$W/dd.tmp" bs=1M count="$DISK_MB" conv=fdatasync 2>&1 >/dev/null; } |
        awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1) }')
    emit baseline.dd_write_mb_s "$(calc "$DISK_MB * 1048576 / 1e6 / $t")" "MB/s"
    n=$([ "$QUICK" = 1 ] && echo 200 || echo 2000)
    t=$( { /usr/bin/env LC_ALL=C dd if=/dev/zero of="$W/dd.tmp" bs=4k count="$n" oflag=dsync 2>&1 >/dev/null; } |
        awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1) }')
    emit baseline.dd_dsync_per_s "$(calc "$n / $t")" "writes/s"
    rm -f "$W/dd.tmp"
done
# The size baseline every size ratio is set against: zstd -3 of the whole
# raw data file (one frame, the CLI's default window; made by bench/run).
RUN_NO=1 emit baseline.zstd3_file.size_ratio "$(calc "$(stat -c %s "$DATA.zst") / $(stat -c %s "$DATA")")" "x raw"
note "Compression speeds are per core on the generated mix (1 MiB blocks through lh_codec, zstd's and ISA-L's own code). Disk figures are on the file system of ${WORK#"$ROOT"/}, shared with whatever else runs on this machine."
rm -rf "$W"

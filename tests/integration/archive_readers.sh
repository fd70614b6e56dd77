#!/usr/bin/env bash
# archive_readers.sh - our Parquet archive objects checked by independent
# readers, and our reader checked on an independent writer's files:
#   1. build/tests/archive_write writes generated events (realistic lines and
#      edge cases: unicode, empty strings, absent fields, many and null
#      metadata values, pre-1970 times) as Parquet in several layouts, plus
#      the same events as expected JSON lines;
#   2. archive_readers.py reads every file with pyarrow AND DuckDB and
#      compares every row and field with the expectation;
#   3. our own reader (archive_write --dump) must reproduce the expectation;
#   4. pyarrow writes the expectation as Parquet (data pages v1 and v2,
#      dictionaries, zstd) and our reader must read it back identically;
#   5. the size ratios of both formats on realistic data are printed.
# Python packages come from tests/integration/venv.sh (pyarrow, duckdb).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
W="$BUILD/tests/archive_write"
PY=$(bash tests/integration/venv.sh)
dir=$(mktemp -d "${TMPDIR:-/tmp}/loghaul-archive-XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$W" --seed 1 5000 "$dir/mixed.parquet" "$dir/mixed.jsonl"
"$W" --seed 2 --rows-per-group 700 --page-bytes 8192 3000 "$dir/groups.parquet" "$dir/groups.jsonl"
"$W" --seed 3 --plain --micros --level 19 2000 "$dir/plain_micros.parquet" "$dir/plain_micros.jsonl"
"$W" --seed 4 --realistic 20000 "$dir/realistic.parquet" "$dir/realistic.jsonl"

"$PY" tests/integration/archive_readers.py \
    "$dir/mixed.parquet" "$dir/mixed.jsonl" \
    "$dir/groups.parquet" "$dir/groups.jsonl" \
    "$dir/plain_micros.parquet" "$dir/plain_micros.jsonl" \
    "$dir/realistic.parquet" "$dir/realistic.jsonl"

for f in mixed groups realistic; do
    "$W" --dump "$dir/$f.parquet" >"$dir/$f.dump"
    cmp "$dir/$f.dump" "$dir/$f.jsonl"
    echo "ok   our reader: $f.parquet matches"
done

for v in 1.0 2.0; do
    "$PY" tests/integration/archive_readers.py --write-pyarrow "$v" "$dir/mixed.jsonl" "$dir/pa-$v.parquet"
    "$W" --dump "$dir/pa-$v.parquet" >"$dir/pa-$v.dump"
    cmp "$dir/pa-$v.dump" "$dir/mixed.jsonl"
    echo "ok   our reader: pyarrow-written file (data page $v) matches"
done

"$W" --ratio 200000 | sed 's/^/size: /'
echo "archive readers: pyarrow and duckdb agree with our writer, our reader with pyarrow's"

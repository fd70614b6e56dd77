#!/usr/bin/env python3
"""archive_readers.py - reads Parquet files written by our own writer with two
independent readers (pyarrow and DuckDB) and compares every row and field
with the expected JSON lines that build/tests/archive_write wrote for the
same events.

    archive_readers.py FILE.parquet EXPECTED.jsonl [FILE2 EXPECTED2 ...]

Exits 0 when both readers agree with the expectation on every file, else 1
with the first differences. Run it with the venv's python (venv.sh).

    archive_readers.py --write-pyarrow 1.0|2.0 EXPECTED.jsonl OUT.parquet

writes the expected rows as Parquet with pyarrow (our schema, zstd,
dictionaries, data pages of the given version), so that our own reader can
be checked on files of an independent writer.
"""
import json
import sys

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

STR_FIELDS = ["id", "tenant", "service", "level", "host", "trace_id", "span_id", "user_id",
              "message", "raw", "stream", "container_id", "k8s_namespace", "k8s_pod",
              "k8s_container", "region", "file"]


def load_expected(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for r in rows:
        if r["custom_metadata"] is not None:
            r["custom_metadata"] = [tuple(kv) for kv in r["custom_metadata"]]
    return rows


def ts_scale(path):
    """ns per unit of the file's timestamp column (the file may use micros)."""
    unit = pq.read_schema(path).field("timestamp").type.unit
    return {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]


def expected_ts(ns, scale):
    return ns // scale * scale      # floor, as the writer rounds


def has_raw_parts(path):
    """Schema 2 stores a raw line holding its message as raw_prefix +
    message + raw_suffix (raw absent); schema 1 and other writers: raw."""
    return "raw_prefix" in pq.read_schema(path).names


def read_pyarrow(path):
    t = pq.read_table(path)
    ts = t.column("timestamp").cast(pa.int64()).to_pylist()
    scale = ts_scale(path)
    if has_raw_parts(path):
        # the documented rule, in Arrow compute: coalesce(raw, prefix || message || suffix)
        joined = pc.binary_join_element_wise(t.column("raw_prefix"), t.column("message"),
                                             t.column("raw_suffix"), "")
        t = t.set_column(t.schema.get_field_index("raw"), "raw",
                         pc.coalesce(t.column("raw"), joined))
    cols = {f: t.column(f).to_pylist() for f in STR_FIELDS}
    meta = t.column("custom_metadata").to_pylist()
    rows = []
    for i in range(t.num_rows):
        r = {"timestamp_ns": ts[i] * scale}
        for f in STR_FIELDS:
            r[f] = cols[f][i]
        m = meta[i]
        r["custom_metadata"] = None if not m else [tuple(kv) for kv in m]
        rows.append(r)
    return rows


def read_duckdb(path):
    con = duckdb.connect()
    fields = ", ".join('"%s"' % f for f in STR_FIELDS)
    if has_raw_parts(path):
        # the documented rule, in SQL
        fields = fields.replace('"raw"', 'coalesce(raw, raw_prefix || message || raw_suffix)')
    # epoch_ns keeps every digit; map_keys/map_values keep the entry order
    q = ("SELECT epoch_ns(timestamp), %s, map_keys(custom_metadata), "
         "map_values(custom_metadata) FROM read_parquet(?)" % fields)
    rows = []
    for rec in con.execute(q, [path]).fetchall():
        r = {"timestamp_ns": rec[0]}
        for j, f in enumerate(STR_FIELDS):
            r[f] = rec[1 + j]
        keys, values = rec[-2], rec[-1]
        r["custom_metadata"] = None if not keys else list(zip(keys, values))
        rows.append(r)
    con.close()
    return rows


def filtered_counts(path, want, scale):
    """DuckDB prunes row groups with our statistics (timestamp and string
    min/max): filtered counts must still match the expectation."""
    errors = []
    ts = sorted(expected_ts(r["timestamp_ns"], scale) for r in want)
    if not ts:
        return errors
    lo, hi = ts[len(ts) // 3], ts[2 * len(ts) // 3]
    con = duckdb.connect()
    for service in ("payment-service", "checkout", ""):
        exp = sum(1 for r in want if r["service"] == service
                  and lo <= expected_ts(r["timestamp_ns"], scale) <= hi)
        got = con.execute("SELECT count(*) FROM read_parquet(?) WHERE service = ? AND "
                          "epoch_ns(timestamp) BETWEEN ? AND ?",
                          [path, service, lo, hi]).fetchone()[0]
        if got != exp:
            errors.append("duckdb %s: %d rows of service %r in the time window, expected %d"
                          % (path, got, service, exp))
    exp = sum(1 for r in want if r["custom_metadata"] and
              any(k == "key_0" and v is not None for k, v in r["custom_metadata"]))
    got = con.execute("SELECT count(*) FROM read_parquet(?) WHERE "
                      "custom_metadata['key_0'] IS NOT NULL", [path]).fetchone()[0]
    if got != exp:
        errors.append("duckdb %s: %d rows with custom_metadata['key_0'], expected %d"
                      % (path, got, exp))
    con.close()
    return errors


def compare(name, got, want, scale, limit=10):
    errors = []
    if len(got) != len(want):
        errors.append("%s: %d rows, expected %d" % (name, len(got), len(want)))
    for i, (g, w) in enumerate(zip(got, want)):
        w = dict(w, timestamp_ns=expected_ts(w["timestamp_ns"], scale))
        for k in w:
            if g.get(k) != w[k]:
                errors.append("%s: row %d field %s: got %r, expected %r"
                              % (name, i, k, g.get(k), w[k]))
                if len(errors) >= limit:
                    return errors
    return errors


def write_pyarrow(version, exp_path, out_path):
    rows = load_expected(exp_path)
    cols = {"timestamp": pa.array([r["timestamp_ns"] for r in rows], pa.int64())
            .cast(pa.timestamp("ns", tz="UTC"))}
    for f in STR_FIELDS:
        cols[f] = pa.array([r[f] for r in rows], pa.string())
    cols["custom_metadata"] = pa.array([r["custom_metadata"] for r in rows],
                                       pa.map_(pa.string(), pa.string()))
    schema = pa.schema([pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False)] +
                       [pa.field(f, pa.string()) for f in STR_FIELDS] +
                       [pa.field("custom_metadata", pa.map_(pa.string(), pa.string()))])
    table = pa.table(cols, schema=schema)
    pq.write_table(table, out_path, compression="zstd", use_dictionary=True,
                   data_page_version=version, row_group_size=1500, data_page_size=16384)
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "--write-pyarrow":
        return write_pyarrow(argv[2], argv[3], argv[4])
    if len(argv) < 3 or len(argv) % 2 == 0:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for path, exp_path in zip(argv[1::2], argv[2::2]):
        want = load_expected(exp_path)
        scale = ts_scale(path)
        for reader, fn in (("pyarrow %s" % pa.__version__, read_pyarrow),
                           ("duckdb %s" % duckdb.__version__, read_duckdb)):
            errors = compare("%s %s" % (reader, path), fn(path), want, scale)
            if errors:
                failed = True
                print("\n".join(errors))
            else:
                print("ok   %s: %d rows match (%s)" % (reader, len(want), path))
        errors = filtered_counts(path, want, scale)
        if errors:
            failed = True
            print("\n".join(errors))
        else:
            print("ok   duckdb filtered counts match (%s)" % path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""archive_check.py - the archive objects the indexer wrote, read by two
independent readers: every expected event id exactly once.

    archive_check.py DIR EXPECTED_IDS [--max-extra N]

DIR holds the Parquet objects (*.parquet) downloaded from the archive;
EXPECTED_IDS one event id per line. DuckDB and pyarrow must both read every
object, agree on the rows, hold no id twice and every expected id; ids not
expected (dead-letter probes, which the archive keeps too) may number at
most --max-extra (default 100). Prints one summary line; exit 1 on any
difference. Run it with the venv's python (venv.sh).
"""
import argparse
import glob
import os
import sys
from collections import Counter

import duckdb
import pyarrow.parquet as pq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("expected")
    ap.add_argument("--max-extra", type=int, default=100)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.dir, "*.parquet")))
    if not files:
        print("FAIL: no Parquet objects in", a.dir)
        return 1
    with open(a.expected, encoding="utf-8") as f:
        want = {line.strip() for line in f if line.strip()}

    arrow_ids = []
    for path in files:
        arrow_ids.extend(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    con = duckdb.connect()
    pattern = os.path.join(a.dir, "*.parquet")
    duck_rows = con.execute("SELECT count(*) FROM read_parquet(?)", [pattern]).fetchone()[0]
    duck_dups = con.execute(
        "SELECT count(*) FROM (SELECT id FROM read_parquet(?) GROUP BY id HAVING count(*) > 1)",
        [pattern]).fetchone()[0]
    duck_ids = {r[0] for r in con.execute("SELECT DISTINCT id FROM read_parquet(?)", [pattern]).fetchall()}

    counts = Counter(arrow_ids)
    dups = sum(1 for c in counts.values() if c > 1)
    have = set(counts)
    missing = want - have
    extra = have - want
    problems = []
    if duck_rows != len(arrow_ids):
        problems.append("duckdb reads %d rows, pyarrow %d" % (duck_rows, len(arrow_ids)))
    if duck_ids != have:
        problems.append("duckdb and pyarrow see different ids")
    if dups or duck_dups:
        problems.append("%d ids more than once (duckdb: %d)" % (dups, duck_dups))
    if missing:
        problems.append("%d expected ids missing, e.g. %s" % (len(missing), sorted(missing)[:3]))
    if len(extra) > a.max_extra:
        problems.append("%d unexpected ids" % len(extra))
    summary = ("%d objects, %d rows (duckdb %d), %d expected ids all present once, %d extra"
               % (len(files), len(arrow_ids), duck_rows, len(want), len(extra)))
    if problems:
        print("FAIL archive:", "; ".join(problems), "--", summary)
        return 1
    print("ok   archive read by duckdb and pyarrow:", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

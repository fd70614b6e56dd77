#!/usr/bin/env python3
"""agent_e2e_check.py - checks what the agent delivered against what
logwriter.py wrote: the text of every line byte for byte, the file it is
reported from, and the order of the lines of each file instance.

usage: agent_e2e_check.py EXPECTED DUMP --size 500 --files 50

EXPECTED: logwriter --expected ("seq<TAB>name#generation" per line).
DUMP: bus_verify --dump ("seq<TAB>id<TAB>file<TAB>raw", escaped).
Order: the event id is "<batch UUID hex>-<record index>"; batches get
time-ordered (v7) UUIDs as they are sealed, so sorting the first copy of
each line by (UUID, index) gives the order the agent read them in, which
must be the order they were written in, per file instance. A line that
arrived twice must carry the same id (bus_verify checks it too).
Exits 0 when all holds; prints one summary line."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logwriter import filler_pool, make_line  # noqa: E402


def unescape(s):
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(n, n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("expected")
    ap.add_argument("dump")
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--files", type=int, required=True)
    a = ap.parse_args()
    pool = filler_pool(a.size)
    instance = {}
    with open(a.expected) as f:
        for line in f:
            seq, inst = line.rstrip("\n").split("\t")
            instance[int(seq)] = inst
    first = {}          # seq -> (uuid, index)
    errors = []
    dups = dup_other_id = bad_text = bad_file = 0

    def err(msg):
        if len(errors) < 10:
            errors.append(msg)

    with open(a.dump, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            seq_s, eid, path, raw = line.rstrip("\n").split("\t", 3)
            seq = int(seq_s)
            raw, path = unescape(raw), unescape(path)
            if seq not in instance:
                err(f"seq {seq} was never written")
                continue
            want = make_line(seq, seq % a.files, a.size, pool)
            if raw != want:
                bad_text += 1
                err(f"seq {seq}: text differs: got {raw[:80]!r}... want {want[:80]!r}...")
            name = instance[seq].split("#")[0]
            if os.path.basename(path) != name:
                bad_file += 1
                err(f"seq {seq}: reported from {path}, written to {name}")
            u, _, idx = eid.rpartition("-")
            key = (u, int(idx))
            if seq in first:
                dups += 1
                if first[seq] != key:
                    dup_other_id += 1
                    err(f"seq {seq}: arrived again with another id {eid}")
            else:
                first[seq] = key
    missing = [s for s in instance if s not in first]
    for s in missing[:5]:
        err(f"seq {s} missing")
    per = {}
    for seq, key in first.items():
        per.setdefault(instance[seq], []).append((key, seq))
    out_of_order = 0
    for inst, v in per.items():
        v.sort()
        for (k0, s0), (k1, s1) in zip(v, v[1:]):
            if s1 < s0:
                out_of_order += 1
                err(f"{inst}: seq {s1} (id {k1[0]}-{k1[1]}) read after seq {s0} "
                    f"(id {k0[0]}-{k0[1]})")
    for e in errors:
        print("agent_e2e_check:", e, file=sys.stderr)
    ok = not (missing or bad_text or bad_file or dup_other_id or out_of_order)
    print(f"agent_e2e_check: {len(instance)} lines in {len(per)} file instances: "
          f"{len(missing)} missing, {bad_text} with other text, {bad_file} from another file, "
          f"{out_of_order} out of order, {dups} duplicates ({dup_other_id} with another id)"
          f" - {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

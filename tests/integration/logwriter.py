#!/usr/bin/env python3
"""logwriter.py - writes log lines with sequence numbers into several files,
rotating them while it writes, for the agent's end-to-end tests.

usage: logwriter.py DIR --files 20 --lines 100000 [--size 500] [--start 0]
                    [--rotate-every 5000] [--rate 0]
Each line: "<seq:012d> seq=<n> file=<i> <filler>" (no host: the agent adds it).
Every rotate_every lines one file is rotated, cycling through the kinds
rename-and-create, copytruncate, and delete-after-rename (the rotated copy
removed once the agent had time to drain it is NOT done: deletion would
lose unread data by definition; the rotated file stays). Prints the number
of lines written. Lines of one file keep their order."""
import argparse
import os
import random
import shutil
import time

WORDS = ["request", "timeout", "database", "cache", "user", "payment", "retry",
         "connection", "upstream", "served", "order", "ok"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--rotate-every", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=0, help="lines per second, 0 = flat out")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rnd = random.Random(a.start)
    paths = [os.path.join(a.dir, f"app-{i}.log") for i in range(a.files)]
    fds = [open(p, "a", buffering=1) for p in paths]
    rotations = 0
    t0 = time.monotonic()
    for k in range(a.lines):
        seq = a.start + k
        i = seq % a.files
        fill = []
        n = 40
        while n < a.size - 10:
            w = rnd.choice(WORDS)
            fill.append(w)
            n += len(w) + 1
        fds[i].write(f"{seq:012d} seq={seq} file={i} {' '.join(fill)}\n")
        if a.rotate_every and k and k % a.rotate_every == 0:
            j = (k // a.rotate_every) % a.files
            kind = rotations % 2
            fds[j].close()
            if kind == 0:   # rename and create
                os.rename(paths[j], f"{paths[j]}.{rotations}")
            else:           # copytruncate
                shutil.copyfile(paths[j], f"{paths[j]}.{rotations}")
                with open(paths[j], "r+") as f:
                    f.truncate(0)
            fds[j] = open(paths[j], "a", buffering=1)
            rotations += 1
        if a.rate:
            ahead = k / a.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    for f in fds:
        f.close()
    print(f"logwriter: {a.lines} lines into {a.files} files, {rotations} rotations")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gen.py - the chaos tests' line generator: writes N numbered lines into
files at a steady rate, optionally rotating one hot file very often.

usage: gen.py DIR --run RUN --lines N [--files 4] [--rate 2000] [--size 200]
              [--rotate-hz 0] [--done FILE]

Line seq (0..N-1) goes to file seq % files (DIR/chaos-<i>.log) and reads
  "chaos RUN seq=<seq> file=<i> <filler>"
so a search for the word RUN finds exactly this run's lines and the checker
(check.py) reads seq back from the message. --rotate-hz H renames file 0 to
chaos-0.log.<n> and creates a new chaos-0.log H times a second while writing
(rename-and-create; the rotated files stay). --done FILE gets a JSON summary
(lines, rotations, seconds) once everything is written and flushed."""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--run", required=True)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--rotate-hz", type=float, default=0)
    ap.add_argument("--done")
    a = ap.parse_args()

    filler = ("lorem ipsum dolor sit amet consectetur adipiscing elit " * 20)
    paths = [os.path.join(a.dir, f"chaos-{i}.log") for i in range(a.files)]
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for p in paths]
    rotations = 0
    t0 = time.monotonic()
    next_rot = t0
    seq = 0
    tick = 0.01
    while seq < a.lines:
        now = time.monotonic()
        if a.rotate_hz > 0 and now >= next_rot:
            rotations += 1
            os.close(fds[0])
            os.rename(paths[0], f"{paths[0]}.{rotations}")
            fds[0] = os.open(paths[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            next_rot += 1.0 / a.rotate_hz
            if next_rot < now:
                next_rot = now + 1.0 / a.rotate_hz
        want = a.lines if a.rate <= 0 else min(a.lines, int((now - t0) * a.rate) + 1)
        if a.rotate_hz > 0:   # small chunks: rotations fall between lines of one second
            want = min(want, seq + max(1, int(a.rate / a.rotate_hz)))
        chunks = {}
        while seq < want:
            i = seq % a.files
            head = f"chaos {a.run} seq={seq} file={i} "
            line = (head + filler)[:max(len(head), a.size - 1)] + "\n"
            chunks.setdefault(i, []).append(line)
            seq += 1
        for i, lines in chunks.items():
            data = "".join(lines).encode()
            while data:   # O_APPEND: one write per chunk, whole lines
                n = os.write(fds[i], data)
                data = data[n:]
        if seq < a.lines:
            sleep = tick
            if a.rotate_hz > 0:
                sleep = min(sleep, max(0.0, next_rot - time.monotonic()))
            time.sleep(sleep)
    for fd in fds:
        os.fsync(fd)
        os.close(fd)
    secs = time.monotonic() - t0
    summary = {"lines": seq, "rotations": rotations, "seconds": round(secs, 2)}
    print(f"gen: {seq} lines into {a.files} files in {secs:.1f} s, {rotations} rotations")
    if a.done:
        tmp = a.done + ".tmp"
        with open(tmp, "w") as f:
            json.dump(summary, f)
        os.rename(tmp, a.done)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""logwriter.py - writes log lines with sequence numbers into several files,
rotating them while it writes, for the agent's end-to-end tests.

usage: logwriter.py DIR --files 50 --lines 100000 [--size 500] [--start 0]
                    [--rotate-every 2000] [--rate 0] [--links 5]
                    [--checkpoint PATH] [--expected FILE]
                    [--format plain|app] [--kinds rename,copytruncate,delete,reappear]
                    [--phases RATE:LINES[:NAME],...] [--sample-every K --samples FILE]

Line seq goes to file seq % files; lines of one file keep their order. The
text of a line is a function of (seq, file index, size) only (make_line), so
a checker can rebuild it. Files 0..files-links-1 are regular files
DIR/app-<i>.log; the last `links` are symlinks DIR/link-<i>.log to a target in
DIR/targets/ (which the glob DIR/*.log does not reach).

Every rotate_every lines one file is rotated, cycling through the kinds
  rename-and-create     app.log -> app.log.<n>, new app.log (kept)
  copytruncate          copy to app.log.<n>, truncate app.log
  delete-after-drain    rename-and-create, and the rotated file is deleted
                        once the agent's checkpoint shows it read to its end
  same-name-reappears   no new lines go to app.log until the checkpoint shows
                        it drained; then it is deleted and created again
and for symlinks: symlink flip (a new target, the link replaced atomically;
every other old target is deleted once drained). Deletions wait for the
checkpoint (--checkpoint), so nothing is deleted before the agent read it:
without --checkpoint, the delete kinds become rename-and-create.

--expected FILE gets one line "seq<TAB>instance" per line written, where the
instance is "<name>#<generation>" (name: the file's name under DIR, as the
agent reports it; generation: rotations of that file so far): lines of one
instance must arrive in order. Prints a summary line at the end.

For the pipeline's end-to-end tests (tests/e2e/):
--format app writes lines in the loghaul app format that the indexer's grok
  patterns parse, stamped with the wall clock at the moment of the write:
  "2026-05-23 08:06:14.123456 [e2e-gen] INFO tr_<seq> usr_<file> - e2e
  seq=<seq> file=<i> <filler>" (make_app_line); ids stay "seq=<seq>".
--kinds limits the rotation kinds of regular files to those named (the
  cycle goes through them in the order above).
--phases replaces --rate/--lines with consecutive phases of RATE lines/s for
  LINES lines each (NAME: a label, default p<index>), e.g. 2000:1200000:steady,
  6000:360000:burst.
--sample-every K: every K-th line (seq % K == 0) also carries the word
  "lhsample"; "seq<TAB>write_ns<TAB>phase" of each goes to --samples FILE
  (flushed per line) for the latency watcher (tests/e2e/latency.py)."""
import argparse
import json
import os
import random
import shutil
import signal
import sys
import time

WORDS = ["request", "timeout", "database", "cache", "user", "payment", "retry",
         "connection", "upstream", "served", "order", "ok"]
POOL_SIZE = 997


def filler_pool(size):
    """Deterministic fillers (the same for every run with this size)."""
    rnd = random.Random(12345)
    pool = []
    for _ in range(POOL_SIZE):
        words, n = [], 0
        while n < size:
            w = rnd.choice(WORDS)
            words.append(w)
            n += len(w) + 1
        pool.append(" ".join(words))
    return pool


def make_line(seq, i, size, pool):
    """The line for seq in file i, without its newline (size - 1 bytes at most)."""
    return (f"{seq:012d} seq={seq} file={i} " + pool[seq % POOL_SIZE])[:size - 1]


class Out:
    """One logical file: a regular file or a symlink with its target."""

    def __init__(self, d, i, link):
        self.i, self.link, self.gen = i, link, 0
        self.name = f"link-{i}.log" if link else f"app-{i}.log"
        self.path = os.path.join(d, self.name)
        self.pending = None     # lines held while waiting to reappear
        self.wait = None        # (dev, ino, size) to see drained before reappearing
        if link:
            self.target = os.path.join(d, "targets", f"link-{i}.0.dat")
            open(self.target, "a").close()
            if os.path.lexists(self.path):
                os.unlink(self.path)
            os.symlink(self.target, self.path)
            self.fh = open(self.target, "a", buffering=1)
        else:
            self.fh = open(self.path, "a", buffering=1)


def make_app_line(seq, i, size, pool, ns, sample=False):
    """The app-format line for seq in file i written at ns (size - 1 bytes at most)."""
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 10**9)) + ".%06d" % (ns // 1000 % 10**6)
    head = (f"{ts} [e2e-gen] INFO tr_{seq} usr_{i} - e2e seq={seq} file={i} "
            + ("lhsample " if sample else ""))
    return (head + pool[seq % POOL_SIZE])[:size - 1]


def load_checkpoint(path):
    """(dev, ino) -> acknowledged offset, from the agent's checkpoint."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}
    return {(e["dev"], e["ino"]): e["offset"] for e in doc.get("files", [])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--links", type=int, default=0)
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--rotate-every", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=0, help="lines per second, 0 = flat out")
    ap.add_argument("--checkpoint", help="the agent's checkpoint, for delete-after-drain")
    ap.add_argument("--expected", help="write seq<TAB>instance per line here")
    ap.add_argument("--drain-timeout", type=float, default=300)
    ap.add_argument("--format", choices=["plain", "app"], default="plain")
    ap.add_argument("--kinds", default="rename,copytruncate,delete,reappear")
    ap.add_argument("--phases", help="RATE:LINES[:NAME],... (replaces --rate/--lines)")
    ap.add_argument("--sample-every", type=int, default=0)
    ap.add_argument("--samples", help="seq<TAB>write_ns<TAB>phase of sampled lines")
    a = ap.parse_args()
    # Say so when stopped from outside (a test then knows why lines are missing).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("logwriter: stopped by SIGTERM"))
    kind_names = ["rename", "copytruncate", "delete", "reappear"]
    kinds = [kind_names.index(k) for k in a.kinds.split(",")]
    phases = []         # (rate, lines, name)
    for j, ph in enumerate((a.phases or f"{a.rate}:{a.lines}").split(",")):
        f = ph.split(":")
        phases.append((float(f[0]), int(f[1]), f[2] if len(f) > 2 else f"p{j}"))
    a.lines = sum(p[1] for p in phases)
    samples = open(a.samples, "w", buffering=1) if a.samples else None
    os.makedirs(os.path.join(a.dir, "targets"), exist_ok=True)
    pool = filler_pool(a.size)
    outs = [Out(a.dir, i, i >= a.files - a.links) for i in range(a.files)]
    exp = open(a.expected, "w") if a.expected else None
    deletions = []          # (path, dev, ino, size): delete once drained
    counts = {"rename": 0, "copytruncate": 0, "delete": 0, "reappear": 0, "flip": 0,
              "deleted": 0}
    ckpt_state = {"mtime": None, "map": {}}

    def drained(dev, ino, size):
        if not a.checkpoint:
            return False
        try:
            m = os.stat(a.checkpoint).st_mtime_ns
        except OSError:
            return False
        if m != ckpt_state["mtime"]:
            ckpt_state["mtime"], ckpt_state["map"] = m, load_checkpoint(a.checkpoint)
        off = ckpt_state["map"].get((dev, ino))
        return off is not None and off >= size

    def write(o, seq):
        if a.format == "app":
            ns = time.time_ns()
            sample = a.sample_every and seq % a.sample_every == 0
            o.fh.write(make_app_line(seq, o.i, a.size, pool, ns, sample) + "\n")
            if sample and samples:
                samples.write(f"{seq}\t{ns}\t{phase[0]}\n")
        else:
            o.fh.write(make_line(seq, o.i, a.size, pool) + "\n")
        if exp:
            exp.write(f"{seq}\t{o.name}#{o.gen}\n")

    def reopen_new(o):
        o.gen += 1
        o.fh = open(o.path, "a", buffering=1)

    def rotate(o, n):
        kind = kinds[n % len(kinds)]
        o.fh.close()
        if o.link:
            counts["flip"] += 1
            old = o.target
            o.target = os.path.join(a.dir, "targets", f"link-{o.i}.{o.gen + 1}.dat")
            open(o.target, "a").close()
            tmp = o.path + ".tmp"
            os.symlink(o.target, tmp)
            os.rename(tmp, o.path)
            if n % 2 and a.checkpoint:
                st = os.stat(old)
                deletions.append((old, st.st_dev, st.st_ino, st.st_size))
            o.gen += 1
            o.fh = open(o.target, "a", buffering=1)
            return
        rotated = f"{o.path}.{n}"
        if kind == 3 and a.checkpoint:   # same name reappears: wait for the drain
            counts["reappear"] += 1
            st = os.stat(o.path)
            o.wait = (st.st_dev, st.st_ino, st.st_size)
            o.pending = []
            return
        if kind == 1:
            counts["copytruncate"] += 1
            shutil.copyfile(o.path, rotated)
            with open(o.path, "r+") as f:
                f.truncate(0)
        else:
            os.rename(o.path, rotated)
            if kind == 2 and a.checkpoint:
                counts["delete"] += 1
                st = os.stat(rotated)
                deletions.append((rotated, st.st_dev, st.st_ino, st.st_size))
            else:
                counts["rename"] += 1
        reopen_new(o)

    def housekeeping():
        for d in list(deletions):
            if drained(d[1], d[2], d[3]):
                os.unlink(d[0])
                deletions.remove(d)
                counts["deleted"] += 1
        for o in outs:
            if o.wait and drained(*o.wait):
                os.unlink(o.path)
                counts["deleted"] += 1
                o.wait = None
                reopen_new(o)
                for seq in o.pending:
                    write(o, seq)
                o.pending = None

    rotations = 0
    t0 = time.monotonic()
    last_hk = t0
    phase = [phases[0][2]]
    ends, k0, pt0 = [], 0, 0.0    # phase boundaries; start line and time of the phase
    for p in phases:
        ends.append((ends[-1] if ends else 0) + p[1])
    pi = 0
    for k in range(a.lines):
        if k == ends[pi]:
            pi += 1
            phase[0] = phases[pi][2]
            k0, pt0 = k, time.monotonic() - t0
        rate = phases[pi][0]
        seq = a.start + k
        o = outs[seq % a.files]
        if o.pending is not None:
            o.pending.append(seq)
        else:
            write(o, seq)
        if a.rotate_every and k and k % a.rotate_every == 0:
            j = (rotations * 7 + 3) % a.files
            if outs[j].pending is None:
                rotate(outs[j], rotations)
            rotations += 1
        now = time.monotonic()
        if now - last_hk > 0.1:
            housekeeping()
            last_hk = now
        if rate:
            ahead = pt0 + (k - k0) / rate - (now - t0)
            if ahead > 0:
                time.sleep(ahead)
    # Files still waiting to reappear: wait for the drain, then write.
    end = time.monotonic() + a.drain_timeout
    while any(o.pending is not None for o in outs) and time.monotonic() < end:
        housekeeping()
        time.sleep(0.1)
    for o in outs:
        if o.pending is not None:   # not drained in time: append to the old file
            o.fh = open(o.path, "a", buffering=1)
            for seq in o.pending:
                write(o, seq)
            o.pending = None
        o.fh.close()
    if exp:
        exp.close()
    if samples:
        samples.close()
    print(f"logwriter: {a.lines} lines into {a.files} files ({a.links} symlinks), "
          f"{rotations} rotations: {counts['rename']} rename, {counts['copytruncate']} "
          f"copytruncate, {counts['delete']} delete-after-drain, {counts['reappear']} "
          f"same-name-reappears, {counts['flip']} symlink flips; {counts['deleted']} files "
          f"deleted after drain, {len(deletions)} left to delete; "
          f"{time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()

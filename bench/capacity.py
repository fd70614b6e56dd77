#!/usr/bin/env python3
"""capacity.py - docs/capacity.md: cores, disks and object storage for the
seeds' 10 TB/day and 10 PB/day cases, computed from the per-core rates and
size ratios that bench/run measured (bench/results/latest.json), next to the
seeds' own estimates (the design documents in ../shared/seeds/, quoted below).

usage: capacity.py bench/results/latest.json docs/capacity.md

Only measured figures go into the model. A quantity whose figure was not
measured in that run is shown as "not measured" (or computed from a named
stand-in that was measured, and labelled so); nothing is guessed.
"""
import json
import os
import sys

TB = 1e12
PB = 1e15
DAY = 86400.0


def main():
    src, dst = sys.argv[1], sys.argv[2]
    figs = {f["name"]: f for f in json.load(open(src))}
    meta_path = os.path.join(os.path.dirname(src), "latest.meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}

    def v(name):
        f = figs.get(name)
        return f["value"] if f and f["value"] is not None else None

    def baseline(name):
        f = figs.get(name)
        return f["baseline"]["value"] if f and f.get("baseline") else None

    used = []   # (quantity, figure name, value, unit) actually used

    def use(label, name, value=None):
        val = v(name) if value is None else value
        if val is not None:
            used.append((label, name, val, (figs.get(name) or {}).get("unit") or ""))
        return val

    rate = {
        "agent": use("agent MB per CPU-second", "agent.mb_s_per_cpu"),
        "collector": use("collector MB/s per core (Kafka bus)", "collector.kafka.mb_s_per_core"),
        "kafka": use("Kafka broker MB/s per core", "kafka.broker_mb_s_per_core"),
        "parse": use("indexer parse+grok+mask events/s per core", "indexer.parse.events_s_per_core"),
        "os": use("OpenSearch MB/s indexed per core", "opensearch.index_mb_s_per_core"),
        "store": use("embedded store ingest MB/s per core", "store.ingest_mb_s_per_core"),
    }
    e2e_idx = v("e2e.scaled.cpu_s_per_gb.indexer")
    if e2e_idx is not None:
        use("indexer CPU-s per GB, end to end (scaled)", "e2e.scaled.cpu_s_per_gb.indexer")
    size = {
        "os": use("OpenSearch bytes per raw byte", "opensearch.size_ratio"),
        "store": use("store bytes per raw byte", "store.size_ratio"),
        "parquet": use("archive (Parquet+zstd) bytes per raw byte", "archive.parquet.size_ratio"),
        "zstd3": use("zstd -3 of the raw file, bytes per raw byte", "baseline.zstd3_file.size_ratio",
                     baseline("store.size_ratio")),
        "bus": use("bus bytes per raw byte (event JSON)", "collector.spool.bus_bytes_per_raw_byte"),
    }
    disk_mb_s = use("disk sequential write + fdatasync MB/s (this machine)", "limits.disk_write_mb_s")
    record = 500.0   # bytes per record: the seeds' average, and the generator's

    cases = [
        {
            "name": "10 TB/day (seeds 000 and 002)", "bytes_day": 10 * TB, "peak": 3.0,
            "hosts": 10000, "hot_days": 7, "replicas": 1, "cold_days": 365, "kafka_hours": 24,
            "seed": [
                ("average ingest", "115.7 MB/s, 231,480 lines/s (002); 121k entries/s of 1 KB (000)"),
                ("peak", "3x: ~350 MB/s, ~700,000 lines/s (002)"),
                ("hot index size", "1.3-1.5x raw in Elasticsearch: 15 TB/day, x2 with a replica = "
                                   "30 TB/day, 210 TB of NVMe for 7 days (002)"),
                ("retention", "30 days = 300 TB, 900 TB with 3 replicas (000); cold tier to 365 days (002)"),
                ("shards", "~350 primary shards/day of ~40 GB (002)"),
            ],
        },
        {
            "name": "10 PB/day (seed 004)", "bytes_day": 10 * PB, "peak": 3.0,
            "hosts": 1000000, "hot_days": 7, "replicas": 1, "cold_days": 30, "kafka_hours": 4,
            "seed": [
                ("average ingest", "115 GB/s, 230 M events/s of 500 B (004)"),
                ("per data centre", "~11.5 GB/s egress each, 10 DCs (004)"),
                ("hot", "7 days searchable: 70 PB (004; raw bytes, no index expansion counted)"),
                ("cold", "30 days: 300 PB in S3 (004), Parquet+zstd claimed 5-10x smaller than raw text"),
                ("Kafka", "4 hours of regional retention (004)"),
            ],
        },
    ]

    def fmt_n(x, unit=""):
        if x is None:
            return "not measured"
        if x >= 100:
            s = f"{x:,.0f}"
        elif x >= 10:
            s = f"{x:,.1f}"
        else:
            s = f"{x:,.2f}"
        return f"{s} {unit}".strip()

    def fmt_bytes(b):
        if b is None:
            return "not measured"
        for unit, div in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
            if b >= div:
                return f"{b / div:,.1f} {unit}"
        return f"{b:,.0f} B"

    def div(a, b):
        return a / b if a is not None and b else None

    def mul(*xs):
        r = 1.0
        for x in xs:
            if x is None:
                return None
            r *= x
        return r

    out = ["# Capacity model", "",
           "_Generated by `bench/capacity.py` from `bench/results/latest.json` "
           f"({meta.get('mode', '?')} run of {meta.get('date', '?')}, commit {meta.get('commit', '?')}, "
           f"on {meta.get('cores', '?')} cores of {meta.get('cpu_model', '?')}). Do not edit: "
           "run `make bench` (or `make bench-quick`) and this file is rewritten._", "",
           "Every number below is a measured rate or ratio from that run, multiplied out to the "
           "seeds' volumes. Where a figure was not measured (a component not on main yet, a "
           "service that did not start), the row says so instead of guessing. The rates are per "
           "core of the benchmark machine (a shared 2-core VM, see the load average in "
           "`bench/results/latest.md`): on dedicated modern servers expect them to be higher, "
           "so read the core counts as upper bounds for this software. Cores are provisioned for "
           "the peak (3x the average, as seed 002 assumes); storage for the average.", "",
           "## Measured inputs", "",
           "| quantity | figure | value |", "|---|---|---|"]
    for label, name, val, unit in used:
        out.append(f"| {label} | `{name}` | {fmt_n(val, unit)} |")
    missing = [n for n in ("agent.mb_s_per_cpu", "collector.kafka.mb_s_per_core", "kafka.broker_mb_s_per_core",
                           "indexer.parse.events_s_per_core", "e2e.scaled.cpu_s_per_gb.indexer",
                           "opensearch.index_mb_s_per_core", "opensearch.size_ratio",
                           "archive.parquet.size_ratio", "store.ingest_mb_s_per_core", "store.size_ratio")
               if v(n) is None]
    for n in missing:
        why = (figs.get(n) or {}).get("skipped", "not in this run")
        out.append(f"| — | `{n}` | not measured: {why} |")
    out.append("")

    for c in cases:
        avg = c["bytes_day"] / DAY            # bytes/s
        peak = avg * c["peak"]
        avg_mb, peak_mb = avg / 1e6, peak / 1e6
        ev_avg, ev_peak = avg / record, peak / record
        per_host_mb = avg_mb / c["hosts"]
        # Indexer cores: the end-to-end CPU per GB when measured (decode, parse,
        # mask, sink encoding, HTTP), else the parse stage alone (a lower bound).
        if e2e_idx is not None:
            idx_cores = peak / 1e9 * e2e_idx
            idx_src = "`e2e.scaled.cpu_s_per_gb.indexer`"
        else:
            idx_cores = div(ev_peak, rate["parse"])
            idx_src = "`indexer.parse.events_s_per_core` (parse stage only: a lower bound)"
        os_cores = mul(div(peak_mb, rate["os"]), 1 + c["replicas"])
        hot_os = mul(c["bytes_day"], size["os"], 1 + c["replicas"], c["hot_days"])
        hot_store = mul(c["bytes_day"], size["store"], c["hot_days"])
        arch_ratio, arch_src = size["parquet"], "`archive.parquet.size_ratio`"
        if arch_ratio is None and size["zstd3"] is not None:
            arch_ratio, arch_src = size["zstd3"], ("`baseline.zstd3_file.size_ratio` as a stand-in "
                                                   "(the archive writer was not measured)")
        cold = mul(c["bytes_day"], arch_ratio, c["cold_days"])
        kafka_disk = mul(avg, size["bus"], size["zstd3"], 3, c["kafka_hours"] * 3600)
        os_write = mul(peak_mb, size["os"], 1 + c["replicas"])
        kafka_write = mul(peak_mb, size["bus"], size["zstd3"], 3)
        out += [f"## {c['name']}", "",
                f"Average {fmt_n(avg_mb, 'MB/s')} ({fmt_n(ev_avg, 'records/s')} of {record:.0f} B), "
                f"peak {fmt_n(peak_mb, 'MB/s')}; {c['hosts']:,} hosts, "
                f"{fmt_n(per_host_mb * 1e3, 'KB/s')} per host on average.", "",
                "| component | measured rate | needed at peak | how |", "|---|---|---|---|",
                f"| agents (all hosts) | {fmt_n(rate['agent'], 'MB per CPU-s')} | "
                f"{fmt_n(div(peak_mb, rate['agent']), 'cores')} in total, "
                f"{fmt_n(mul(div(per_host_mb * c['peak'], rate['agent']), 100), '% of a core')} per host | "
                "peak MB/s / `agent.mb_s_per_cpu` |",
                f"| collectors | {fmt_n(rate['collector'], 'MB/s per core')} | "
                f"{fmt_n(div(peak_mb, rate['collector']), 'cores')} | peak MB/s / `collector.kafka.mb_s_per_core` |",
                f"| Kafka brokers (RF 3) | {fmt_n(rate['kafka'], 'MB/s per core')} | "
                f"{fmt_n(mul(div(peak_mb, rate['kafka']), 3), 'cores')} | "
                "peak MB/s x 3 replicas / `kafka.broker_mb_s_per_core` (a single RF-1 broker measured) |",
                f"| indexers | see how | {fmt_n(idx_cores, 'cores')} | {idx_src} |",
                f"| OpenSearch data nodes (1 replica) | {fmt_n(rate['os'], 'MB/s per core')} | "
                f"{fmt_n(os_cores, 'cores')} | peak MB/s x 2 copies / `opensearch.index_mb_s_per_core` |",
                f"| or: embedded store (no replica) | {fmt_n(rate['store'], 'MB/s per core')} | "
                f"{fmt_n(div(peak_mb, rate['store']), 'cores')} | peak MB/s / `store.ingest_mb_s_per_core` |",
                "",
                "| storage | size | how |", "|---|---|---|",
                f"| OpenSearch hot tier, {c['hot_days']} days, 1 replica | {fmt_bytes(hot_os)} | "
                f"raw/day x `opensearch.size_ratio` x 2 x {c['hot_days']} |",
                f"| or: embedded store, {c['hot_days']} days | {fmt_bytes(hot_store)} | "
                f"raw/day x `store.size_ratio` x {c['hot_days']} |",
                f"| Kafka, {c['kafka_hours']} h, RF 3 | {fmt_bytes(kafka_disk)} | "
                "avg bytes/s x bus bytes per raw byte x zstd -3 ratio x 3 x retention |",
                f"| object storage (archive), {c['cold_days']} days | {fmt_bytes(cold)} | "
                f"raw/day x {arch_src} x {c['cold_days']} |",
                f"| disk writes at peak | OpenSearch {fmt_n(os_write, 'MB/s')}, Kafka {fmt_n(kafka_write, 'MB/s')} "
                f"(before merges and compaction) | = {fmt_n(div(os_write, disk_mb_s), 'disks')} + "
                f"{fmt_n(div(kafka_write, disk_mb_s), 'disks')} writing at this machine's "
                f"{fmt_n(disk_mb_s, 'MB/s')} |",
                "",
                "What the seed estimated:", ""]
        out += [f"- {k}: {t}" for k, t in c["seed"]]
        # Compare where both exist.
        cmp_rows = []
        if hot_os is not None and c["bytes_day"] == 10 * TB:
            cmp_rows.append(f"- hot tier: the seed's 210 TB (1.5x raw, 2 copies, 7 days) vs {fmt_bytes(hot_os)} "
                            f"from the measured {size['os']:.2f}x raw")
        if hot_os is not None and c["bytes_day"] == 10 * PB:
            cmp_rows.append(f"- hot tier: the seed's 70 PB counts raw bytes once; with the measured "
                            f"{size['os']:.2f}x and a replica it is {fmt_bytes(hot_os)}")
        if cold is not None:
            cmp_rows.append(f"- archive: {arch_ratio:.2f}x raw measured ({arch_src}) vs the seed's "
                            f"{'5-10x smaller (0.1-0.2x)' if c['bytes_day'] == 10 * PB else 'snapshots, size not given'}")
        if os_cores is not None:
            cmp_rows.append(f"- OpenSearch indexing is the dominant cost: {fmt_n(os_cores, 'cores')} at peak on "
                            "this machine's per-core rate, against "
                            f"{fmt_n(div(peak_mb, rate['store']), 'cores')} for the embedded store "
                            "(which builds block blooms instead of a full inverted index): the seed's "
                            "\"index only WARN/ERROR, archive the rest\" triage (004) divides the first "
                            "figure by the share of INFO/DEBUG it keeps out.")
        if cmp_rows:
            out += ["", "Against the measurements:", ""] + cmp_rows
        out.append("")
    out += ["## Formulas", "",
            "- cores = bytes/s at peak / (measured MB per CPU-second of that daemon); no headroom added.",
            "- storage = raw bytes/day x measured bytes-on-disk per raw byte x copies x days.",
            "- disks = MB/s written at peak / this machine's sequential write + fdatasync rate "
            "(`limits.disk_write_mb_s`); capacity per disk is left to the hardware chosen.",
            "- Kafka keeps the collector's event JSON (`collector.spool.bus_bytes_per_raw_byte` x raw) "
            "compressed by the producer with zstd (taken at the zstd -3 file ratio).", ""]
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    with open(dst, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turns the raw output of a bench run into latest.md, latest.csv and latest.png.

    report.py --mode full|quick --kdir KERNEL_TREE --out RESULTS_DIR RUN_DIR

RUN_DIR is ktests/run.sh's --out: it holds one bench-rN.tar.gz per round (fio JSON,
/proc/stat samples, negotiated parameters; see ktests/bench/lib.sh). Medians are
taken over rounds per job x initiator. Exits 1, after writing what it has, if any
cell of the table is missing (the only check `make bench-quick` makes: nothing
about speed). Standard library only; the chart needs gnuplot.
"""
import argparse
import csv
import datetime
import glob
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile

INITS = [("rs", "iscsi_rs"), ("oi", "open-iscsi"), ("loop", "tcm_loop")]
JOBS = ["randread-4k-qd32", "randread-4k-qd1", "randwrite-4k-qd32", "read-1m-qd8", "write-1m-qd8"]
DIGEST_JOBS = ["randread-4k-qd32", "read-1m-qd8"]
USER_HZ = 100


def rows():
    """(row label, job, metric, digest?) in table order."""
    out = []
    for job in JOBS:
        if job.startswith("randread"):
            out += [(f"{job} IOPS", job, "iops", False),
                    (f"{job} mean lat (µs)", job, "lat_mean", False),
                    (f"{job} p99 lat (µs)", job, "lat_p99", False)]
        elif "4k" in job:
            out.append((f"{job} IOPS", job, "iops", False))
        else:
            out.append((f"{job} MB/s", job, "mbps", False))
    for job in DIGEST_JOBS:
        metric = "iops" if "4k" in job else "mbps"
        out.append((f"{job} +CRC32C {'IOPS' if metric == 'iops' else 'MB/s'}", job, metric, True))
    return out


def load_round(path, samples, params, env):
    """Reads one bench-rN.tar.gz into samples[(tag_init, job, round)] = metrics."""
    with tarfile.open(path) as tar:
        files = {os.path.basename(m.name): tar.extractfile(m).read().decode(errors="replace")
                 for m in tar.getmembers() if m.isfile()}
    cpu = {}
    for name, text in files.items():
        m = re.fullmatch(r"cpu-r(\d+)-(\w+)-(.+)\.txt", name)
        if m:
            f = text.split()
            if len(f) == 6:
                b1, _, u1, b2, _, u2 = (float(x) for x in f)
                cpu[(m.group(2), m.group(3), int(m.group(1)))] = ((b2 - b1) / USER_HZ, u2 - u1)
    for name, text in files.items():
        m = re.fullmatch(r"fio-r(\d+)-(\w+)-(.+)\.json", name)
        if m:
            rnd, init, job = int(m.group(1)), m.group(2), m.group(3)
            try:
                # fio may print notes before the JSON object.
                j = json.loads(text[text.index("{"):])["jobs"][0]
            except (ValueError, KeyError, IndexError):
                continue
            d = j["write"] if j["write"]["io_bytes"] > j["read"]["io_bytes"] else j["read"]
            if d["iops"] <= 0:
                continue
            pct = d.get("clat_ns", {}).get("percentile", {})
            s = {"iops": d["iops"], "mbps": d["bw_bytes"] / 1e6,
                 "lat_mean": d["lat_ns"]["mean"] / 1000,
                 "lat_p99": pct.get("99.000000", float("nan")) / 1000}
            busy, wall = cpu.get((init, job, rnd), (0, 0))
            if wall > 0:
                s["cpu_us"] = busy / wall / d["iops"] * 1e6
            samples[(init, job, rnd)] = s
        m = re.fullmatch(r"params-r\d+-(\w+)\.txt", name) or re.fullmatch(r"params-(lio)\.txt", name)
        if m and m.group(1) not in params:
            params[m.group(1)] = dict(
                (k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in text.splitlines()) if _)
        if name == "env.txt" and not env:
            env.update((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in text.splitlines()) if _)


def fmt(v, metric):
    if v is None:
        return "—"
    if metric == "iops":
        return f"{v:,.0f}"
    if metric == "cpu_us":
        return f"{v:.1f}"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def ratio(a, b):
    return a / b if a is not None and b else None


# iscsi_rs sysfs name -> iSCSI key, as iscsiadm -P 3 prints it.
RS_KEYS = {"header_digest": "HeaderDigest", "data_digest": "DataDigest",
           "max_recv_data_segment_length": "MaxRecvDataSegmentLength",
           "max_xmit_data_segment_length": "MaxXmitDataSegmentLength",
           "first_burst_length": "FirstBurstLength", "max_burst_length": "MaxBurstLength",
           "initial_r2t": "InitialR2T", "immediate_data": "ImmediateData",
           "max_outstanding_r2t": "MaxOutstandingR2T"}
PARAM_ORDER = ["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength", "MaxXmitDataSegmentLength",
               "FirstBurstLength", "MaxBurstLength", "InitialR2T", "ImmediateData", "MaxOutstandingR2T",
               "can_queue", "device/queue_depth", "queue/nr_requests", "queue/max_sectors_kb",
               "queue/max_hw_sectors_kb", "queue/scheduler"]


def param_table(params):
    cols = [("rs", "iscsi_rs"), ("rsdig", "iscsi_rs +digests"), ("oi", "open-iscsi"),
            ("oidig", "open-iscsi +digests"), ("loop", "tcm_loop"), ("lio", "LIO target (tpg param)")]
    norm = {}
    for tag, _ in cols:
        p = params.get(tag, {})
        norm[tag] = {RS_KEYS.get(k, k): v for k, v in p.items()} if tag.startswith("rs") else p
    lines = ["| parameter | " + " | ".join(n for _, n in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for key in PARAM_ORDER:
        vals = [norm[t].get(key, "") for t, _ in cols]
        if any(vals):
            lines.append(f"| {key} | " + " | ".join(v or "·" for v in vals) + " |")
    return "\n".join(lines)


def plot(out_dir, table, title):
    """Throughput relative to open-iscsi (left) and 4k read latency (right)."""
    if not shutil.which("gnuplot"):
        print("report: gnuplot missing, no chart", file=sys.stderr)
        return
    dat = os.path.join(out_dir, "latest.dat")
    lat = os.path.join(out_dir, "latest-lat.dat")
    with open(dat, "w") as f, open(lat, "w") as g:
        for label, _, metric, _, med in table:
            oi = med.get("oi")
            if metric in ("iops", "mbps"):
                vals = [ratio(med.get(k), oi) for k, _ in INITS]
                name = label.rsplit(" ", 1)[0].replace("+CRC32C", "+dig")
                f.write(f'"{name}" ' + " ".join("?" if v is None else f"{v:.3f}" for v in vals) + "\n")
            else:
                name = label.replace(" lat (µs)", "").replace("randread-", "")
                g.write(f'"{name}" ' + " ".join("?" if med.get(k) is None else f"{med[k]:.1f}"
                                                for k, _ in INITS) + "\n")
    script = f"""
set terminal pngcairo size 1400,600 font ",10" noenhanced
set output "{os.path.join(out_dir, 'latest.png')}"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key below horizontal
set rmargin 6
set grid ytics
set multiplot layout 1,2 title "{title}"
set title "throughput relative to open-iscsi (log scale, higher is better)"
set xtics rotate by -30 left
set logscale y 2
set yrange [*:*]
plot "{dat}" using 2:xtic(1) title "iscsi_rs" lc rgb "#d9541e", \\
     "" using 3 title "open-iscsi" lc rgb "#4c72b0", \\
     "" using 4 title "tcm_loop" lc rgb "#7f7f7f"
set title "4 KiB random read latency, µs (log scale, lower is better)"
set logscale y 10
plot "{lat}" using 2:xtic(1) title "iscsi_rs" lc rgb "#d9541e", \\
     "" using 3 title "open-iscsi" lc rgb "#4c72b0", \\
     "" using 4 title "tcm_loop" lc rgb "#7f7f7f"
unset multiplot
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("report: gnuplot failed:\n" + r.stderr, file=sys.stderr)
    for p in (dat, lat):
        os.remove(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="full")
    ap.add_argument("--kdir", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("run_dir")
    a = ap.parse_args()
    samples, params, env = {}, {}, {}
    tars = sorted(glob.glob(os.path.join(a.run_dir, "bench-r*.tar.gz")))
    for t in tars:
        load_round(t, samples, params, env)
    rounds = sorted({r for _, _, r in samples})
    os.makedirs(a.out, exist_ok=True)

    table, missing = [], []
    for label, job, metric, digest in rows():
        med, cpu = {}, {}
        for key, name in INITS:
            if digest and key == "loop":
                continue
            tag = key + "dig" if digest else key
            vals = [samples[(tag, job, r)][metric] for r in rounds if (tag, job, r) in samples]
            cvals = [samples[(tag, job, r)]["cpu_us"] for r in rounds
                     if "cpu_us" in samples.get((tag, job, r), {})]
            if vals:
                med[key] = statistics.median(vals)
            else:
                missing.append(f"{label} / {name}")
            if cvals:
                cpu[key] = statistics.median(cvals)
        table.append((label, job, metric, cpu, med))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu_model = ""
    try:
        cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    quick = a.mode == "quick"
    md = io.StringIO()
    w = md.write
    w("# iscsi-rs bench: iscsi_rs vs open-iscsi vs tcm_loop\n\n")
    if quick:
        w("> **Quick run** (`make bench-quick`: one round of 5 s jobs). It proves the bench works;"
          " its numbers are too short and too few to compare initiators. Run `make bench` for those.\n\n")
    w(f"- date: {now}; mode: {a.mode}, {len(rounds)} round(s) of {env.get('runtime', '?')} s jobs"
      f" after a {env.get('ramp', '?')} s ramp, initiators interleaved (order rotates per round)\n")
    w(f"- guest kernel: {env.get('kernel', '?')} — flavour **bench** (no KASAN/lockdep/kmemleak)"
      f"{', tree ' + os.path.basename(a.kdir) if a.kdir else ''}\n")
    w(f"- guest: {env.get('cpus', '?')} vCPUs, {int(env.get('mem_kb', '0') or 0) // 1024} MiB, QEMU TCG"
      f" (no KVM) on {os.cpu_count()} host CPUs ({cpu_model or platform.machine()})\n")
    w(f"- target: LIO, {env.get('backstore', '?')}, portal 127.0.0.1:3260 in the same guest;"
      f" {env.get('fio', 'fio')}, direct=1, ioengine=libaio, one job per test; {env.get('iscsiadm', '')}\n")
    w("- all three paths share the guest CPUs with the target, so CPU µs/IO is the whole"
      " guest's busy time (initiator + LIO + fio) per I/O in the measured window\n\n")
    w("## Results (medians over rounds)\n\n")
    w("Ratios are iscsi_rs / other: above 1 is better for IOPS and MB/s, below 1 is better for latency.\n\n")
    w("| job / metric | iscsi_rs | open-iscsi | tcm_loop | rs/open-iscsi | rs/tcm_loop |"
      " CPU µs/IO rs | oi | loop |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for label, job, metric, cpu, med in table:
        digest = "CRC32C" in label
        loop = "n/a" if digest else fmt(med.get("loop"), metric)
        r1, r2 = ratio(med.get("rs"), med.get("oi")), ratio(med.get("rs"), med.get("loop"))
        c = [fmt(cpu.get(k), "cpu_us") if metric in ("iops", "mbps") else "" for k, _ in INITS]
        if digest:
            c[2] = "n/a"
        w(f"| {label} | {fmt(med.get('rs'), metric)} | {fmt(med.get('oi'), metric)} | {loop} | "
          f"{'—' if r1 is None else f'{r1:.2f}'} | {'n/a' if digest else ('—' if r2 is None else f'{r2:.2f}')} | "
          + " | ".join(c) + " |\n")

    # The goals, reported (never asserted).
    def m(label, key):
        return next((t[4].get(key) for t in table if t[0] == label), None)
    goals = [
        ("4k randread QD32 IOPS ≥ 1.3× open-iscsi", ratio(m("randread-4k-qd32 IOPS", "rs"), m("randread-4k-qd32 IOPS", "oi")), 1.3, True),
        ("4k randread QD32 IOPS ≥ 0.8× tcm_loop", ratio(m("randread-4k-qd32 IOPS", "rs"), m("randread-4k-qd32 IOPS", "loop")), 0.8, True),
        ("1M seq read MB/s ≥ 1.1× open-iscsi", ratio(m("read-1m-qd8 MB/s", "rs"), m("read-1m-qd8 MB/s", "oi")), 1.1, True),
        ("1M seq write MB/s ≥ 1.1× open-iscsi", ratio(m("write-1m-qd8 MB/s", "rs"), m("write-1m-qd8 MB/s", "oi")), 1.1, True),
        ("4k QD1 mean latency ≤ 0.85× open-iscsi", ratio(m("randread-4k-qd1 mean lat (µs)", "rs"), m("randread-4k-qd1 mean lat (µs)", "oi")), 0.85, False),
        ("digests on: 4k QD32 ≥ 0.9× own digest-off", ratio(m("randread-4k-qd32 +CRC32C IOPS", "rs"), m("randread-4k-qd32 IOPS", "rs")), 0.9, True),
        ("digests on: 1M read ≥ 0.9× own digest-off", ratio(m("read-1m-qd8 +CRC32C MB/s", "rs"), m("read-1m-qd8 MB/s", "rs")), 0.9, True),
    ]
    w("\n## Issue 7 goals (reported, not asserted)\n\n| goal | measured | met |\n|---|---:|---|\n")
    for name, v, lim, higher in goals:
        met = "—" if v is None else ("yes" if (v >= lim if higher else v <= lim) else "**no**")
        w(f"| {name} | {'—' if v is None else f'{v:.2f}×'} | {met} |\n")
    if quick:
        w("\n(quick run: the goal column is not meaningful)\n")

    w("\n## Negotiated parameters (first round)\n\n")
    w(param_table(params) + "\n\n")
    w("iscsi_rs values are its host's sysfs attributes, open-iscsi's come from"
      " `iscsiadm -m session -P 3`; block-layer rows from /sys/block/sdX.\n\n")
    w("## Every round\n\n`latest.csv` has one line per round, job and initiator; raw fio JSON stays in the"
      f" run directory (`{os.path.relpath(a.run_dir)}/bench-rN.tar.gz`).\n")
    if missing:
        w("\n## Missing\n\n" + "".join(f"- {x}\n" for x in missing))
    w("\n![chart](latest.png)\n")
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write(md.getvalue())

    with open(os.path.join(a.out, "latest.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["round", "initiator", "job", "iops", "mbps", "lat_mean_us", "lat_p99_us", "cpu_us_per_io"])
        for (init, job, rnd), s in sorted(samples.items(), key=lambda x: (x[0][2], x[0][0], x[0][1])):
            cw.writerow([rnd, init, job, f"{s['iops']:.0f}", f"{s['mbps']:.1f}", f"{s['lat_mean']:.1f}",
                         f"{s['lat_p99']:.1f}", f"{s['cpu_us']:.2f}" if "cpu_us" in s else ""])
    plot(a.out, table, f"iscsi-rs bench ({a.mode}, {len(rounds)} round(s), {env.get('cpus', '?')} vCPUs TCG, {now})")

    print(md.getvalue().split("## Issue 7 goals")[0])
    if not tars:
        print(f"report: no bench-r*.tar.gz in {a.run_dir}", file=sys.stderr)
        return 1
    if missing:
        print("report: table incomplete, missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Turns the raw output of a bench run into latest.md, latest.csv, latest.png and
latency-cdf.png.

    report.py --mode full|quick --kdir KERNEL_TREE --out RESULTS_DIR RUN_DIR

RUN_DIR is ktests/run.sh's --out: it holds one bench-rN.tar.gz per round (fio json+,
CPU snapshots, negotiated parameters; see ktests/bench/lib.sh). Per job x path the
table shows the median over rounds with min-max beside it. Latencies are fio's
total latency (`lat_ns`: submission + completion), never `clat` alone. Exits 1,
after writing what it has, if any cell of the table is missing (the only check
`make bench-quick` makes: nothing about speed). Standard library only; the charts
need gnuplot.
"""
import argparse
import collections
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

# rs2c: iscsi_rs with `--connections 2` (MC/S, issue 16), no digest variant.
PATHS = [("rs", "iscsi_rs"), ("rs2c", "iscsi_rs, 2 connections"), ("oi", "open-iscsi"), ("nvme", "nvme-tcp"),
         ("loop", "tcm_loop")]
COLOURS = {"rs": "#d9541e", "rs2c": "#f2a541", "oi": "#4c72b0", "nvme": "#55a868", "loop": "#7f7f7f"}
# -2j: the same job with fio numjobs=2 (each job at that iodepth, on its own half
# of the disk, group_reporting); every path runs them (lib.sh's BENCH_JOBS).
JOBS = ["randread-4k-qd32", "randread-4k-qd32-2j", "randread-4k-qd1", "randwrite-4k-qd32", "read-1m-qd8",
        "read-1m-qd8-2j", "write-1m-qd8"]
DIGEST_JOBS = ["randread-4k-qd32", "read-1m-qd8"]
DIGEST_PATHS = ("rs", "oi")  # only these iSCSI paths also run with CRC32C digests
CDF_JOBS = ["randread-4k-qd1", "randread-4k-qd32"]
CPU_JOBS = ["randread-4k-qd32", "randread-4k-qd32-2j", "randread-4k-qd1", "read-1m-qd8", "read-1m-qd8-2j",
            "write-1m-qd8"]
# Ratio columns of the results table: (numerator, denominator) paths.
RATIOS = [("rs", "oi"), ("rs2c", "oi"), ("rs", "nvme"), ("rs", "loop")]
USER_HZ = 100
SNAP_SECS = []  # how long each CPU snapshot took (its E line minus its uptime)

# Thread classes by comm (per-thread utime+stime from /proc/TID/stat).
THREAD_CLASSES = [
    ("fio", re.compile(r"fio$")),
    ("lio", re.compile(r"iscsi_(trx|ttx|np)$")),
    ("kw_hi", re.compile(r"kworker/\d+:\d+H")),
    ("kw_unbound", re.compile(r"kworker/u\d+:\d+")),
    ("kw", re.compile(r"kworker/\d+:\d+")),
    ("ksoftirqd", re.compile(r"ksoftirqd/\d+$")),
]
# What runs in which class, per path (Linux 6.12 sources and src/sys/helpers.c):
# - iscsi_rs: its I/O work items on a WQ_HIGHPRI bound workqueue (kw_hi); LIO
#   receives and submits in iscsi_trx (direct submission: target core, iblock and
#   brd run there), completes through target_completion (bound, kw) and sends in
#   iscsi_ttx.
# - open-iscsi: transmit on the iscsi_q_N workqueue (WQ_UNBOUND, kw_unbound), receive
#   in softirq (iscsi_sw_tcp_data_ready); the LIO side as above.
# - tcm_loop: queued submission (target_submission) and completion
#   (target_completion), both bound workqueues (kw): the target side.
# - nvme-tcp: nvme_tcp_wq (host) and nvmet_tcp_wq (target) are both WQ_HIGHPRI bound
#   workqueues, served by the same per-CPU kworker/N:MH pool: not separable by thread.
ROLES = {
    "rs": {"init": ["kw_hi"], "target": ["lio", "kw"], "shared": []},
    "rs2c": {"init": ["kw_hi"], "target": ["lio", "kw"], "shared": []},
    "oi": {"init": ["kw_unbound"], "target": ["lio", "kw"], "shared": []},
    "loop": {"init": [], "target": ["kw"], "shared": []},
    "nvme": {"init": [], "target": [], "shared": ["kw_hi"]},
}
CPU_COLS = [("cpu_us", "busy"), ("threads_us", "all threads"), ("fio_us", "fio"), ("init_us", "initiator threads"),
            ("target_us", "target threads"), ("shared_us", "shared (initiator+target) threads"),
            ("softirq_us", "softirq (any context)"), ("other_us", "other threads"), ("ctxt", "ctx switches")]


def classify(comm):
    for name, rx in THREAD_CLASSES:
        if rx.match(comm):
            return name
    return "other"


def parse_snap(text):
    """bench_snap output -> (uptime, CPUs, cpu fields, ctxt, {tid: (comm, ticks)})."""
    up, ncpu, cpu, ctxt, threads = None, None, None, None, {}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if up is None and len(f) == 1:
            up = float(f[0])
        elif f[0] == "N" and len(f) == 2:
            ncpu = int(f[1])
        elif f[0] == "cpu":
            cpu = [int(x) for x in f[1:9]]
        elif f[0] == "ctxt":
            ctxt = int(f[1])
        elif f[0] == "T" and len(f) == 4:
            threads[f[1]] = (f[2], int(f[3]))
        elif f[0] == "E" and len(f) == 2 and up is not None:
            SNAP_SECS.append(float(f[1]) - up)
    return up, ncpu, cpu, ctxt, threads


def cpu_split(s1, s2, iops):
    """Per-I/O CPU figures (µs) of the window between two snapshots.

    Under TCG the guest loses timer ticks (a quick run counted ~30 % fewer
    /proc/stat ticks than CPUs x wall time), so tick samples are used only for
    ratios: busy is CPUs x wall - idle - iowait (NO_HZ keeps idle in ns), softirq
    is busy x the softirq share of the busy ticks. Thread figures are utime+stime,
    which /proc/TID/stat scales to the scheduler's exact runtime."""
    (u1, n1, c1, x1, t1), (u2, n2, c2, x2, t2) = parse_snap(s1), parse_snap(s2)
    if None in (u1, u2, n2, c1, c2, x1, x2) or u2 <= u1 or iops <= 0:
        return {}
    if any(c == "fio" and tid not in t2 for tid, (c, _) in t1.items()):
        print("report: fio exited inside a CPU window; its CPU figures dropped", file=sys.stderr)
        return {}
    wall = u2 - u1
    ios = iops * wall
    d = [b - a for a, b in zip(c1, c2)]  # user nice system idle iowait irq softirq steal
    busy = max(n2 * wall - (d[3] + d[4]) / USER_HZ, 0)
    ticks = d[0] + d[1] + d[2] + d[5] + d[6] + d[7]
    out = {"cpu_us": busy / ios * 1e6, "busy_ticks_us": ticks / USER_HZ / ios * 1e6,
           "softirq_us": busy * d[6] / ticks / ios * 1e6 if ticks else 0.0,
           "ctxt": (x2 - x1) / ios}
    cls = {}
    for tid, (comm, t) in t2.items():
        # A thread born in the window counts from zero; one that died is lost.
        delta = t - t1[tid][1] if tid in t1 else t
        k = classify(comm)
        cls[k] = cls.get(k, 0) + max(delta, 0)
    us = 1e6 / USER_HZ / ios
    for k, _ in THREAD_CLASSES + [("other", None)]:
        out[k + "_us"] = cls.get(k, 0) * us
    out["threads_us"] = sum(cls.values()) * us
    return out


def add_roles(s, path):
    r = ROLES[path[:-3] if path.endswith("dig") else path]
    for role in ("init", "target", "shared"):
        s[role + "_us"] = sum(s.get(k + "_us", 0) for k in r[role])
    used = {k for v in r.values() for k in v} | {"fio", "ksoftirqd"}
    s["other_us"] = sum(s.get(k + "_us", 0) for k, _ in THREAD_CLASSES + [("other", None)] if k not in used)
    s["fio_us"] = s.get("fio_us", 0)


def load_round(path, samples, bins, params, env, placement, rs_conns):
    """Reads one bench-rN.tar.gz into samples[(path, job, round)] = metrics, and
    rs_conns[(path, round)] = iscsi_rs's "connections: UP of ASKED"."""
    with tarfile.open(path) as tar:
        files = {os.path.basename(m.name): tar.extractfile(m).read().decode(errors="replace")
                 for m in tar.getmembers() if m.isfile()}
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
            lat = d.get("lat_ns", {})
            pct = lat.get("percentile", {})
            s = {"iops": d["iops"], "mbps": d["bw_bytes"] / 1e6,
                 "lat_mean": lat.get("mean", float("nan")) / 1000,
                 "lat_p50": pct.get("50.000000", float("nan")) / 1000,
                 "lat_p99": pct.get("99.000000", float("nan")) / 1000,
                 "lat_p999": pct.get("99.900000", float("nan")) / 1000,
                 "clat_mean": d.get("clat_ns", {}).get("mean", float("nan")) / 1000,
                 "slat_mean": d.get("slat_ns", {}).get("mean", float("nan")) / 1000}
            s1, s2 = files.get(f"snap-r{rnd}-{init}-{job}-1.txt"), files.get(f"snap-r{rnd}-{init}-{job}-2.txt")
            if s1 and s2:
                s.update(cpu_split(s1, s2, d["iops"]))
                if "cpu_us" in s:
                    add_roles(s, init)
            samples[(init, job, rnd)] = s
            if job in CDF_JOBS and not init.endswith("dig"):
                # Pooled over rounds: fio's log-linear histogram of total latency.
                h = bins.setdefault((init, job), {})
                for k, v in lat.get("bins", {}).items():
                    h[int(k)] = h.get(int(k), 0) + v
        m = re.fullmatch(r"params-r(\d+)-(rs\w*)\.txt", name)
        if m:
            c = re.search(r"^connections: (.*)$", text, re.M)
            rs_conns[(m.group(2), int(m.group(1)))] = c.group(1).strip() if c else "?"
        m = re.fullmatch(r"params-r\d+-(\w+)\.txt", name) or re.fullmatch(r"params-(lio)\.txt", name)
        if m and m.group(1) not in params:
            params[m.group(1)] = dict(
                (k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in text.splitlines()) if _)
        if name == "env.txt" and not env:
            env.update((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in text.splitlines()) if _)
        if name == "placement.txt" and not placement:
            placement.update((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in text.splitlines()) if _)


def fmt(v, metric):
    if v is None or v != v:
        return "—"
    if metric == "iops":
        return f"{v:,.0f}"
    if metric == "ctxt":
        return f"{v:.2f}"
    if metric.endswith("_us"):
        return f"{v:.1f}" if v < 1000 else f"{v:,.0f}"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def rows():
    """(row label, job, metric, digest?) in table order."""
    out = []
    for job in JOBS:
        if job.startswith("randread"):
            out += [(f"{job} IOPS", job, "iops", False),
                    (f"{job} mean total lat (µs)", job, "lat_mean", False),
                    (f"{job} p50 total lat (µs)", job, "lat_p50", False),
                    (f"{job} p99 total lat (µs)", job, "lat_p99", False)]
        elif "4k" in job:
            out.append((f"{job} IOPS", job, "iops", False))
        else:
            out.append((f"{job} MB/s", job, "mbps", False))
    for job in DIGEST_JOBS:
        metric = "iops" if "4k" in job else "mbps"
        out.append((f"{job} +CRC32C {'IOPS' if metric == 'iops' else 'MB/s'}", job, metric, True))
    return out


# iscsi_rs sysfs name -> iSCSI key, as iscsiadm -P 3 prints it.
RS_KEYS = {"header_digest": "HeaderDigest", "data_digest": "DataDigest",
           "max_recv_data_segment_length": "MaxRecvDataSegmentLength",
           "max_xmit_data_segment_length": "MaxXmitDataSegmentLength",
           "first_burst_length": "FirstBurstLength", "max_burst_length": "MaxBurstLength",
           "initial_r2t": "InitialR2T", "immediate_data": "ImmediateData",
           "max_outstanding_r2t": "MaxOutstandingR2T"}
PARAM_ORDER = ["connections", "MaxConnections", "HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength",
               "MaxXmitDataSegmentLength", "FirstBurstLength", "MaxBurstLength", "InitialR2T", "ImmediateData", "MaxOutstandingR2T",
               "transport", "queue_count", "sqsize",
               "can_queue", "device/queue_depth", "queue/nr_requests", "queue/max_sectors_kb",
               "queue/max_hw_sectors_kb", "queue/scheduler"]


def param_table(params):
    cols = [("rs", "iscsi_rs"), ("rsdig", "iscsi_rs +digests"), ("rs2c", "iscsi_rs, 2 connections"),
            ("oi", "open-iscsi"), ("oidig", "open-iscsi +digests"), ("nvme", "nvme-tcp"), ("loop", "tcm_loop"),
            ("lio", "LIO target (tpg param)")]
    norm = {}
    for tag, _ in cols:
        p = params.get(tag, {})
        norm[tag] = {RS_KEYS.get(k, k): v for k, v in p.items()} if tag.startswith("rs") else p
    mq = sorted({k for p in norm.values() for k in p if k.startswith("mq/")},
                key=lambda k: int(re.sub(r"\D", "", k) or 0))
    lines = ["| parameter | " + " | ".join(n for _, n in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for key in PARAM_ORDER + mq:
        vals = [norm[t].get(key, "") for t, _ in cols]
        if any(vals):
            lines.append(f"| {key} | " + " | ".join(v or "·" for v in vals) + " |")
    return "\n".join(lines)


def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("report: gnuplot failed:\n" + r.stderr, file=sys.stderr)


def q(v):
    return "?" if v is None or v != v else f"{v:.4g}"


def plot(out_dir, table, title):
    """Throughput relative to open-iscsi (left) and 4 KiB read total latency
    (right); bars are medians, error bars the min and max over rounds."""
    dat = os.path.join(out_dir, "latest.dat")
    lat = os.path.join(out_dir, "latest-lat.dat")
    with open(dat, "w") as f, open(lat, "w") as g:
        for label, job, metric, digest, stats in table:
            if metric in ("iops", "mbps"):
                oi = stats.get("oi", (None,))[1] if "oi" in stats else None
                name = label.rsplit(" ", 1)[0].replace("+CRC32C", "+dig")
                cells = []
                for k, _ in PATHS:
                    lo, med, hi = stats.get(k, (None, None, None))
                    cells += [q(ratio(med, oi)), q(ratio(lo, oi)), q(ratio(hi, oi))]
                f.write(f'"{name}" ' + " ".join(cells) + "\n")
            elif metric in ("lat_mean", "lat_p99") and job.startswith("randread-4k"):
                name = job.replace("randread-4k-", "") + (" mean" if metric == "lat_mean" else " p99")
                cells = []
                for k, _ in PATHS:
                    lo, med, hi = stats.get(k, (None, None, None))
                    cells += [q(med), q(lo), q(hi)]
                g.write(f'"{name}" ' + " ".join(cells) + "\n")

    def series(src):
        return ", \\\n     ".join(
            f'"{src if i == 0 else ""}" using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}{":xtic(1)" if i == 0 else ""}'
            f' title "{n}" lc rgb "{COLOURS[k]}"' for i, (k, n) in enumerate(PATHS))
    gnuplot(f"""
set terminal pngcairo size 1800,640 font ",10" noenhanced
set output "{os.path.join(out_dir, 'latest.png')}"
set datafile missing "?"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.85 border -1
set key below horizontal
set rmargin 6
set grid ytics
set multiplot layout 1,2 title "{title}"
set title "throughput relative to open-iscsi's median (log scale, higher is better; bars min-max over rounds)"
set xtics rotate by -30 left
set logscale y 2
plot {series(dat)}
set title "4 KiB random read total latency (submit + completion), µs (log, lower is better)"
set logscale y 10
plot {series(lat)}
unset multiplot
""")
    for p in (dat, lat):
        os.remove(p)


def plot_cdf(out_dir, bins, title):
    """Total-latency CDF (top) and tail, 1 - CDF (bottom), of the 4 KiB random
    reads at QD1 and QD32, from fio's latency histograms pooled over rounds."""
    files, plots = [], {}
    for job in CDF_JOBS:
        cur = []
        for k, name in PATHS:
            h = bins.get((k, job))
            if not h:
                continue
            total = sum(h.values())
            fn = os.path.join(out_dir, f"cdf-{k}-{job}.dat")
            acc = 0
            with open(fn, "w") as f:
                for ns in sorted(h):
                    acc += h[ns]
                    # 1 - F of the slowest bucket is 0: off a log axis, so left out.
                    tail = "?" if acc >= total else f"{1 - acc / total:.3e}"
                    f.write(f"{ns / 1000:.3f} {acc / total:.6f} {tail}\n")
            files.append(fn)
            cur.append((fn, name, COLOURS[k]))
        plots[job] = cur
    if not files:
        return

    def p(job, col):
        return ", \\\n     ".join(f'"{fn}" using 1:{col} with steps lw 2 lc rgb "{c}" title "{n}"'
                                   for fn, n, c in plots[job]) or "NaN notitle"
    script = [f"""
set terminal pngcairo size 1400,900 font ",10" noenhanced
set output "{os.path.join(out_dir, 'latency-cdf.png')}"
set datafile missing "?"
set key bottom right
set grid xtics ytics mxtics
set logscale x 10
set xlabel "total latency (submit + completion), µs"
set multiplot layout 2,2 title "{title}"
"""]
    for job in CDF_JOBS:
        script.append(f'set title "{job}: CDF"\nset ylabel "fraction of I/Os"\nunset logscale y\n'
                      f'set yrange [0:1]\nset key bottom right\nplot {p(job, 2)}\n')
    for job in CDF_JOBS:
        script.append(f'set title "{job}: tail (1 - CDF)"\nset ylabel "fraction slower"\nset logscale y 10\nset format y "1e%T"\n'
                      f'set yrange [*:1]\nset key top right\nplot {p(job, 3)}\n')
    script.append("unset multiplot\n")
    gnuplot("".join(script))
    for fn in files:
        os.remove(fn)


def spread(stats, key, metric, rounds):
    """'median <sub>min–max</sub>' (just the median with one round)."""
    if key not in stats:
        return "—"
    lo, med, hi = stats[key]
    if rounds < 2:
        return fmt(med, metric)
    return f"{fmt(med, metric)} <sub>{fmt(lo, metric)}–{fmt(hi, metric)}</sub>"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="full")
    ap.add_argument("--kdir", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("run_dir")
    a = ap.parse_args()
    samples, bins, params, env, placement, rs_conns = {}, {}, {}, {}, {}, {}
    tars = sorted(glob.glob(os.path.join(a.run_dir, "bench-r*.tar.gz")))
    for t in tars:
        load_round(t, samples, bins, params, env, placement, rs_conns)
    rounds = sorted({r for _, _, r in samples})
    os.makedirs(a.out, exist_ok=True)

    def over_rounds(tag, job, metric):
        return [samples[(tag, job, r)][metric] for r in rounds
                if metric in samples.get((tag, job, r), {}) and samples[(tag, job, r)][metric] == samples[(tag, job, r)][metric]]

    table, missing = [], []
    for label, job, metric, digest in rows():
        stats = {}
        for key, name in PATHS:
            if digest and key not in DIGEST_PATHS:
                continue
            vals = over_rounds(key + "dig" if digest else key, job, metric)
            if vals:
                stats[key] = (min(vals), statistics.median(vals), max(vals))
            else:
                missing.append(f"{label} / {name}")
        table.append((label, job, metric, digest, stats))
    # CPU per I/O: median over rounds of every split column, per job x path.
    cpu = {}
    for job in JOBS:
        for key, name in PATHS:
            for tag in (key, key + "dig"):
                for col, _ in CPU_COLS:
                    vals = over_rounds(tag, job, col)
                    if vals:
                        cpu[(tag, job, col)] = statistics.median(vals)
            if (key, job, "cpu_us") not in cpu:
                missing.append(f"{job} CPU per I/O / {name}")

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu_model = ""
    try:
        cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    irqtime = "?"
    try:
        irqtime = "yes" if "CONFIG_IRQ_TIME_ACCOUNTING=y\n" in open(os.path.join(a.kdir, ".config")).read() else "no"
    except OSError:
        pass
    quick = a.mode == "quick"
    n = len(rounds)
    md = io.StringIO()
    w = md.write
    w("# iscsi-rs bench: iscsi_rs (1 and 2 connections) vs open-iscsi vs nvme-tcp vs tcm_loop\n\n")
    if quick:
        w("> **Quick run** (`make bench-quick`: one round of 2 s jobs). It proves the bench works;"
          " its numbers are too short and too few to compare initiators. Run `make bench` for those.\n\n")
    w(f"- date: {now}; mode: {a.mode}, {n} round(s) of {env.get('runtime', '?')} s jobs"
      f" after a {env.get('ramp', '?')} s ramp, paths interleaved (order rotates per round)\n")
    w(f"- guest kernel: {env.get('kernel', '?')} — flavour **bench** (no KASAN/lockdep/kmemleak)"
      f"{', tree ' + os.path.basename(a.kdir) if a.kdir else ''}\n")
    w(f"- guest: {env.get('cpus', '?')} vCPUs, {int(env.get('mem_kb', '0') or 0) // 1024} MiB, QEMU TCG"
      f" (no KVM) on {os.cpu_count()} host CPUs ({cpu_model or platform.machine()})\n")
    w(f"- device: **one** {env.get('backstore', '?')}: every path reads and writes the same RAM disk"
      " (filled once at boot, so reads touch real pages)\n")
    w("- paths: iscsi_rs and open-iscsi (`iscsi_tcp`) to LIO's iSCSI target on 127.0.0.1:3260;"
      " nvme-tcp to the kernel's nvmet-tcp target on 127.0.0.1:4420; tcm_loop, a local SCSI disk"
      " on the same LIO backstore (no network: the ceiling of the LIO path). All in the same guest.\n")
    w("- **iscsi_rs, 2 connections**: iscsi_rs with `--connections 2` (MC/S: one TCP connection per blk-mq"
      " hardware queue; LIO's TPG allows MaxConnections=2), otherwise as iscsi_rs. open-iscsi runs one"
      " connection (it has no MC/S), nvme-tcp one I/O queue per CPU\n")
    w(f"- {env.get('fio', 'fio')}, direct=1, ioengine=libaio, one fio job per test except the **-2j** rows:"
      " numjobs=2 (two jobs, each at the iodepth named, each on its own half of the disk, summed with"
      f" group_reporting); fio unpinned in every row; {env.get('iscsiadm', '')}\n\n")
    w(f"## Results (median{' and min–max over rounds' if n > 1 else ''})\n\n")
    w("Latencies are **total** latency (fio `lat`: submission + completion). Ratios are of medians,"
      " iscsi_rs / other (rs: one connection, rs2c: two): above 1 is better for IOPS and MB/s, below 1"
      " is better for latency.\n\n")
    short = {"rs": "rs", "rs2c": "rs2c", "oi": "open-iscsi", "nvme": "nvme-tcp", "loop": "tcm_loop"}
    w("| job / metric | " + " | ".join(nm for _, nm in PATHS) + " | "
      + " | ".join(f"{short[x]}/{short[y]}" for x, y in RATIOS) + " |\n"
      "|---|" + "---:|" * (len(PATHS) + len(RATIOS)) + "\n")

    def med(stats, k):
        return stats[k][1] if k in stats else None
    for label, job, metric, digest, stats in table:
        cells = [spread(stats, k, metric, n) if (not digest or k in DIGEST_PATHS) else "n/a" for k, _ in PATHS]
        rats = []
        for x, y in RATIOS:
            if digest and (x not in DIGEST_PATHS or y not in DIGEST_PATHS):
                rats.append("n/a")
            else:
                r = ratio(med(stats, x), med(stats, y))
                rats.append("—" if r is None else f"{r:.2f}")
        w(f"| {label} | " + " | ".join(cells + rats) + " |\n")

    # The goals, reported (never asserted).
    def m(label, key):
        return next((med(t[4], key) for t in table if t[0] == label), None)
    qd32, qd1 = "randread-4k-qd32 IOPS", "randread-4k-qd1 mean total lat (µs)"
    goals = [
        ("4 KiB randread QD32 IOPS ≥ 1.3× open-iscsi", m(qd32, "rs"), m(qd32, "oi"), "iops", 1.3, True),
        ("4 KiB randread QD32 IOPS ≥ 0.9× nvme-tcp", m(qd32, "rs"), m(qd32, "nvme"), "iops", 0.9, True),
        ("1 MiB seq read MB/s ≥ 1.1× open-iscsi", m("read-1m-qd8 MB/s", "rs"), m("read-1m-qd8 MB/s", "oi"), "mbps", 1.1, True),
        ("1 MiB seq write MB/s ≥ 1.1× open-iscsi", m("write-1m-qd8 MB/s", "rs"), m("write-1m-qd8 MB/s", "oi"), "mbps", 1.1, True),
        ("4 KiB QD1 mean total latency ≤ 0.85× open-iscsi", m(qd1, "rs"), m(qd1, "oi"), "lat_mean", 0.85, False),
        ("CRC32C digests: 4 KiB QD32 IOPS ≥ 0.9× own digest-off", m("randread-4k-qd32 +CRC32C IOPS", "rs"), m(qd32, "rs"), "iops", 0.9, True),
        ("CRC32C digests: 1 MiB read MB/s ≥ 0.9× own digest-off", m("read-1m-qd8 +CRC32C MB/s", "rs"), m("read-1m-qd8 MB/s", "rs"), "mbps", 0.9, True),
    ]
    w("\n## Issue 14 goals (reported, not asserted; medians)\n\n"
      "| goal | iscsi_rs | reference | ratio | met |\n|---|---:|---:|---:|---|\n")
    for name, v, ref, metric, lim, higher in goals:
        r = ratio(v, ref)
        met = "—" if r is None else ("met" if (r >= lim if higher else r <= lim) else "**not met**")
        w(f"| {name} | {fmt(v, metric)} | {fmt(ref, metric)} | {'—' if r is None else f'{r:.2f}×'} | {met} |\n")
    # Issue 16's goals, in its words; the 1 MiB read goal is measured on both
    # read rows (one fio job and two), always iscsi_rs with 2 connections.
    r1m, r1m2, qd32_2 = "read-1m-qd8 MB/s", "read-1m-qd8-2j MB/s", "randread-4k-qd32-2j IOPS"
    goals16 = [
        ("1 MiB sequential read ≥ 1.5× open-iscsi", f"{r1m} (1 job)", m(r1m, "rs2c"), m(r1m, "oi"), "mbps", 1.5),
        ("1 MiB sequential read ≥ 1.5× open-iscsi", f"{r1m2} (2 jobs)", m(r1m2, "rs2c"), m(r1m2, "oi"), "mbps", 1.5),
        ("4 KiB random read QD32 with 2 jobs ≥ 1.3× open-iscsi", qd32_2, m(qd32_2, "rs2c"), m(qd32_2, "oi"),
         "iops", 1.3),
    ]
    w("\n## Issue 16 goals (reported, not asserted; medians)\n\n"
      "iscsi_rs with 2 connections against open-iscsi (one connection) on the same row; for reference the"
      " same ratio with iscsi_rs on one connection.\n\n"
      "| goal | row | iscsi_rs, 2 connections | open-iscsi | ratio | met | iscsi_rs (1 connection) / open-iscsi |\n"
      "|---|---|---:|---:|---:|---|---:|\n")
    for name, row, v, ref, metric, lim in goals16:
        r = ratio(v, ref)
        met = "—" if r is None else ("met" if r >= lim else "**not met**")
        r1 = ratio(m(row.split(" (")[0], "rs"), ref)
        w(f"| {name} | {row} | {fmt(v, metric)} | {fmt(ref, metric)} | {'—' if r is None else f'{r:.2f}×'} | {met}"
          f" | {'—' if r1 is None else f'{r1:.2f}×'} |\n")
    c2 = {r: c for (t, r), c in rs_conns.items() if t == "rs2c"}
    w("\nConnections up on the 2-connection session (`iscsictl list`), per round: "
      + (", ".join(f"r{r} {c2[r]}" for r in sorted(c2)) or "none recorded")
      + ("; a round without 2 of 2 ran none of its jobs" if any(c != "2 of 2" for c in c2.values()) else "") + "\n")
    if quick:
        w("\n(quick run: the goal columns are not meaningful)\n")

    w("\n## CPU placement\n\n")
    w(f"- guest CPUs: {placement.get('cpus', '?')}; fio: {placement.get('fio_cpus_allowed', '?')}\n")
    w(f"- LIO iSCSI `cpus_allowed_list` (the iscsi fabric's, inherited by iscsi_trx/iscsi_ttx):"
      f" {placement.get('lio_cpus_allowed_list', '?') or '?'}")
    conns = []
    for tag, nm in (("rs", "iscsi_rs"), ("rsdig", "iscsi_rs +digests"), ("rs2c", "iscsi_rs, 2 connections"),
                    ("oi", "open-iscsi"), ("oidig", "open-iscsi +digests")):
        # One pair per connection: count them, two connections may share a CPU.
        aff = collections.Counter(f"{k.split()[1]} on CPU {v}" for k, v in params.get(tag, {}).items()
                                  if k.startswith("thread "))
        aff = [f"{'' if c == 1 else f'{c}× '}{x}" for x, c in sorted(aff.items())]
        conns.append(f"{nm}: {', '.join(aff) if aff else '?'}")
    w("; LIO pins each connection's iscsi_trx/iscsi_ttx pair to one CPU of it (first round: "
      + "; ".join(conns) + ")\n")
    w("- nvme-tcp: one I/O queue per CPU, each with an `io_cpu` from the blk-mq map (the hctx's first"
      f" CPU; `wq_unbound`={placement.get('nvme_tcp_wq_unbound', '?')}); nvmet-tcp runs a queue's"
      " io_work on the CPU the socket's packets arrive on (`sk_incoming_cpu`); neither is pinned further\n")
    w("- blk-mq queue → CPU lists per path are in the parameter table below (`mq/N cpu_list`)\n\n")

    w("## Guest CPU per I/O\n\n")
    snap_note = ""
    if SNAP_SECS:
        window = max(int(env.get("runtime", "0") or 0) - 2, 0)
        snap_note = (f"Each snapshot took at most {max(SNAP_SECS):.2f} s (median"
                     f" {statistics.median(SNAP_SECS):.2f} s) of a window of about {window} s. ")
    w("Measured in the guest over each job's measured window (after fio's ramp, two seconds before its"
      " end) from two snapshots of `/proc/stat` and of every thread's `/proc/TID/stat`, divided by the"
      " I/Os fio completed in the window (IOPS × window):\n\n"
      "- **busy**: CPUs × window − idle − iowait (idle is exact, NO_HZ accounts it in ns). Not the sum"
      " of `/proc/stat`'s busy ticks: under TCG the guest loses timer ticks (the CSV keeps that figure"
      " as `busy_ticks_us_per_io` for comparison)\n"
      "- **all threads** and the thread columns: utime+stime of the threads, which the kernel scales to"
      " each thread's exact scheduler runtime; grouped by thread name:\n"
      "  - **fio**: the application, including the syscalls' submission path (`queuecommand`, inline"
      " sends) and the completions it reaps\n"
      "  - **initiator threads**: iscsi_rs's I/O work items (WQ_HIGHPRI kworkers); open-iscsi's"
      " transmit workqueue (`iscsi_q_N`, unbound kworkers)\n"
      "  - **target threads**: LIO's `iscsi_trx`/`iscsi_ttx` (direct submission: target core, iblock"
      " and brd run in `iscsi_trx`) plus bound kworkers (`target_completion`; for tcm_loop also"
      " `target_submission`, so tcm_loop's target runs there and in fio)\n"
      "  - **shared**: nvme-tcp's host (`nvme_tcp_wq`) and target (`nvmet_tcp_wq`) work items run in"
      " the same WQ_HIGHPRI kworker pool; thread accounting cannot split them\n"
      "  - **other threads**: everything else (rcu, the bench's own shell)\n"
      "- **softirq**: busy × the softirq share of `/proc/stat`'s busy ticks, whichever thread it"
      " interrupted (TCP receive of both ends on loopback, block completion). Without"
      f" `CONFIG_IRQ_TIME_ACCOUNTING` ({irqtime} here) a thread's runtime includes the softirqs that ran"
      " on top of it, so softirq overlaps the thread columns (ksoftirqd is only counted here)\n"
      "- **ctx switches**: `/proc/stat` ctxt delta per I/O (exact)\n\n"
      + snap_note +
      "Attribution is by thread, not by code: fio's kernel time holds the initiator's submit path,"
      " and the split is only as clean as the thread list above. Under TCG the vCPUs are host"
      " threads, so these are emulated-CPU times: compare paths, not absolute values.\n\n")
    for job in CPU_JOBS:
        w(f"**{job}** (µs per I/O; ctx switches per I/O)\n\n| path | " + " | ".join(c for _, c in CPU_COLS)
          + " |\n|---|" + "---:|" * len(CPU_COLS) + "\n")
        tags = [(k, nm) for k, nm in PATHS] + [(k + "dig", nm + " +CRC32C") for k, nm in PATHS
                                               if k in DIGEST_PATHS and job in DIGEST_JOBS]
        for tag, nm in tags:
            if (tag, job, "cpu_us") not in cpu:
                continue
            vals = []
            for col, _ in CPU_COLS:
                v = cpu.get((tag, job, col))
                k = tag[:-3] if tag.endswith("dig") else tag
                if col in ("init_us", "target_us", "shared_us") and not ROLES[k][col[:-3]]:
                    vals.append("·")
                else:
                    vals.append(fmt(v, "ctxt" if col == "ctxt" else "x_us"))
            w(f"| {nm} | " + " | ".join(vals) + " |\n")
        w("\n")

    w("## Negotiated parameters (first round)\n\n")
    w(param_table(params) + "\n\n")
    w("iscsi_rs values are its host's sysfs attributes, open-iscsi's come from"
      " `iscsiadm -m session -P 3`, nvme-tcp's from /sys/class/nvme; block-layer rows from"
      " /sys/block/DEV.\n\n")
    w("## Every round\n\n`latest.csv` has one line per round, job and path (latencies total, CPU columns"
      " as above, µs per I/O); raw fio JSON stays in the run directory"
      f" (`{os.path.relpath(a.run_dir)}/bench-rN.tar.gz`).\n")
    if missing:
        w("\n## Missing\n\n" + "".join(f"- {x}\n" for x in missing))
    w("\n![chart](latest.png)\n\n![total-latency CDF](latency-cdf.png)\n")
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write(md.getvalue())

    cols = ["iops", "mbps", "lat_mean", "lat_p50", "lat_p99", "lat_p999", "clat_mean", "slat_mean",
            "cpu_us", "busy_ticks_us", "threads_us", "softirq_us", "fio_us", "lio_us", "kw_us", "kw_hi_us", "kw_unbound_us",
            "ksoftirqd_us", "init_us", "target_us", "shared_us", "other_us", "ctxt"]
    names = ["iops", "mbps", "lat_mean_us", "lat_p50_us", "lat_p99_us", "lat_p999_us", "clat_mean_us",
             "slat_mean_us", "cpu_us_per_io", "busy_ticks_us_per_io", "all_threads_us_per_io", "softirq_us_per_io", "fio_us_per_io", "lio_threads_us_per_io",
             "kworker_us_per_io", "kworker_highpri_us_per_io", "kworker_unbound_us_per_io",
             "ksoftirqd_us_per_io", "initiator_threads_us_per_io", "target_threads_us_per_io",
             "shared_threads_us_per_io", "other_threads_us_per_io", "ctxt_per_io"]
    with open(os.path.join(a.out, "latest.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["round", "initiator", "job"] + names)
        for (init, job, rnd), s in sorted(samples.items(), key=lambda x: (x[0][2], x[0][0], x[0][1])):
            row = [rnd, init, job]
            for c in cols:
                v = s.get(c)
                row.append("" if v is None or v != v else (f"{v:.0f}" if c == "iops" else
                                                            f"{v:.3f}" if c == "ctxt" else f"{v:.2f}"))
            cw.writerow(row)
    if shutil.which("gnuplot"):
        title = f"iscsi-rs bench ({a.mode}, {n} round(s), {env.get('cpus', '?')} vCPUs TCG, {now})"
        plot(a.out, table, title)
        plot_cdf(a.out, bins, title + ", pooled over rounds")
    else:
        print("report: gnuplot missing, no charts", file=sys.stderr)

    print(md.getvalue().split("## CPU placement")[0])
    if not tars:
        print(f"report: no bench-r*.tar.gz in {a.run_dir}", file=sys.stderr)
        return 1
    if missing:
        print("report: table incomplete, missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

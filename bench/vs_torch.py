#!/usr/bin/python3
"""spirt's architectures against PyTorch on one machine, in one run.

Run by bench/vs-torch.sh (which builds spirt and installs python3-torch);
see that script for the options. Every row trains the MLP 784-128-10 on
Fashion-MNIST with SGD for the same epochs and evaluates the whole test set
every --eval-every iterations (evaluation time is not training time). Each
run is a child process whose CPU (user + system of it and every process it
waited for) comes from getrusage. With --rounds R every row runs R times,
the order reversed every other round, and the table shows medians.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name, kind, settings: the rows of the table, in order.
ROWS = [
    ("torch-1", "PyTorch, one process", {"torch": 1}),
    ("torch-ddp", "PyTorch DDP, W processes (gloo)", {"torch": "W"}),
    ("single", "spirt --arch single", {"arch": "single"}),
    ("spirt-http", "SPIRT, W peers, HTTP functions", {"arch": "spirt", "transport": "http"}),
    ("spirt-inproc", "SPIRT, W peers, --transport inproc", {"arch": "spirt", "transport": "inproc"}),
    ("mlless", "MLLESS, W workers, HTTP", {"arch": "mlless", "transport": "http"}),
    ("scatter-reduce", "ScatterReduce, W workers, HTTP", {"arch": "scatter-reduce", "transport": "http"}),
    ("all-reduce", "AllReduce, W workers, HTTP", {"arch": "all-reduce", "transport": "http"}),
]


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, what):
    """Runs cmd; returns (stdout, CPU seconds of its whole process tree)."""
    c0 = cpu_children()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu = cpu_children() - c0
    if p.returncode != 0:
        sys.stderr.write(f"vs-torch: {what} failed (exit {p.returncode}):\n{p.stderr[-3000:]}\n")
        sys.exit(1)
    return p.stdout, cpu


def first_at(history, target):
    for h in history:
        if h.get("test_accuracy", -1) >= target:
            return h["t"]
    return None


def run_torch(a, procs):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "train_torch.py"), "--model", "mlp",
           "--epochs", str(a.epochs), "--batch", str(a.batch), "--lr", str(a.lr),
           "--eval-every", str(a.eval_every), "--target", str(a.target), "--init", "spirt",
           "--threads", str(a.torch_threads), "--samples", str(a.train_samples or 60000)]
    if procs > 1:
        cmd += ["--ddp", str(procs)]
    out, cpu = run(cmd, f"train_torch.py ({procs} process(es))")
    r = json.loads(out.strip().splitlines()[-1])
    m = r["ms_per_iteration"]
    where = (f"{m['total']:.2f} ms/it: forward {m['forward']:.2f}, backward"
             f"{' + allreduce' if procs > 1 else ''} {m['backward']:.2f}, step {m['step']:.2f}")
    return {"epoch": r["epoch_seconds"], "acc": r["test_accuracy"],
            "to_target": first_at(r["history"], a.target), "cpu": cpu,
            "iterations": r["iterations"], "where": where,
            "best": max(h["test_accuracy"] for h in r["history"])}


def run_spirt(a, arch, transport):
    with tempfile.TemporaryDirectory(prefix="spirt-vs-torch-") as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [os.path.join(a.build, "bin", "spirt"), "train", "--arch", arch, "--model", "mlp",
               "--hidden", "128", "--batch", str(a.batch), "--lr", str(a.lr),
               "--epochs", str(a.epochs), "--eval-every", str(a.eval_every),
               "--train-samples", str(a.train_samples), "--quiet", "--report", report]
        if arch != "single":
            cmd += ["--workers", str(a.workers), "--transport", transport]
        _, cpu = run(cmd, f"spirt train --arch {arch}")
        with open(report) as f:
            r = json.load(f)
    d = r.get("details", {})
    ms = 1e3 * r["train_seconds"] / max(r["iterations"], 1)
    where = f"{ms:.2f} ms/it"
    tp = d.get("time_per_iteration_ms")
    if tp:
        where += (f": compute {tp['compute']:.2f}, communication {tp['communication']:.2f}, "
                  f"sync {tp['synchronization']:.2f}, update {tp['update']:.2f}")
    acc_points = [h["test_accuracy"] for h in r["history"] if "test_accuracy" in h]
    return {"epoch": r["train_seconds"] / max(r["epochs"], 1), "acc": r["test_accuracy"],
            "to_target": first_at(r["history"], a.target), "cpu": cpu,
            "iterations": r["iterations"], "where": where, "report_cpu": d.get("cpu"),
            "setup": r["setup_seconds"], "best": max(acc_points) if acc_points else 0}


def run_row(a, name, settings):
    if "torch" in settings:
        return run_torch(a, a.workers if settings["torch"] == "W" else 1)
    return run_spirt(a, settings["arch"], settings.get("transport", "http"))


def median_of(results, key):
    vals = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--target", type=float, default=0.80)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--train-samples", type=int, default=0)
    ap.add_argument("--rows", default="all")
    a = ap.parse_args()
    names = [r[0] for r in ROWS]
    want = names if a.rows == "all" else a.rows.split(",")
    for w in want:
        if w not in names:
            sys.stderr.write(f"vs-torch: no row '{w}' (rows: {', '.join(names)})\n")
            return 2
    rows = [r for r in ROWS if r[0] in want]
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                      if l.startswith("model name")), platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu_model}; load average at start "
          f"{os.getloadavg()[0]:.1f}")
    print(f"MLP 784-128-10, Fashion-MNIST ({a.train_samples or 60000} training samples), "
          f"batch {a.batch} per worker, SGD lr {a.lr}, {a.epochs} epoch(s), {a.workers} workers "
          f"where distributed; test accuracy every {a.eval_every} iterations; PyTorch "
          f"{a.torch_threads} thread(s) per process, spirt's init; {a.rounds} round(s)")
    results = {r[0]: [] for r in rows}
    t0 = time.time()
    for rnd in range(a.rounds):
        for name, _, settings in (rows if rnd % 2 == 0 else rows[::-1]):
            results[name].append(run_row(a, name, settings))
    table = {}
    for name, _, _ in rows:
        rs = results[name]
        m = {k: median_of(rs, k) for k in ("epoch", "acc", "to_target", "cpu", "best")}
        m["reached"] = sum(r["to_target"] is not None for r in rs)
        m["where"] = rs[len(rs) // 2]["where"]
        m["report_cpu"] = rs[len(rs) // 2].get("report_cpu")
        m["iterations"] = rs[0]["iterations"]
        table[name] = m
    ddp = table.get("torch-ddp", {}).get("epoch")
    target = f"time to {a.target:.2f} (s)"
    print()
    print(f"| run | epoch (s) | test accuracy | {target} | ratio to DDP | CPU (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, label, _ in rows:
        m = table[name]
        label = label.replace("W", str(a.workers))
        if m["to_target"] is None:
            to = f"not reached (best {m['best']:.4f})"
        else:
            to = f"{m['to_target']:.2f}"
            if m["reached"] < a.rounds:
                to += f" ({m['reached']}/{a.rounds} rounds)"
        ratio = f"{m['epoch'] / ddp:.2f}" if ddp else "-"
        print(f"| {label} | {m['epoch']:.2f} | {m['acc']:.4f} | {to} | {ratio} | {m['cpu']:.2f} |")
    print()
    print("where the time goes (training time per iteration; spirt: summed step wall time "
          "by category):")
    for name, label, _ in rows:
        m = table[name]
        print(f"  {label.replace('W', str(a.workers)):40s} {m['iterations']:5d} it  {m['where']}")
    if "spirt-http" in table and "single" in table:
        s, p = table["single"], table["spirt-http"]
        print()
        print(f"CPU of the whole run (every process, set-up included; getrusage of the child): "
              f"SPIRT {p['cpu']:.2f} s, single {s['cpu']:.2f} s: SPIRT/single "
              f"{p['cpu'] / s['cpu']:.2f}x (goal <= 3x)")
        c = p["report_cpu"]
        if c:
            print(f"  SPIRT's details.cpu: per iteration {c['total']:.2f} ms (driver "
                  f"{c['driver']:.2f}, functions {c.get('functions', 0):.2f}, redis "
                  f"{c.get('redis', 0):.2f}, nats {c.get('nats', 0):.2f}); set-up "
                  f"{c['setup_ms'] / 1e3:.2f} s, whole run {c['whole_run_ms'] / 1e3:.2f} s "
                  f"= {c['whole_run_ms'] / 1e3 / s['cpu']:.2f}x single")
    print(f"\n(all runs: {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

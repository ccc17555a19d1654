#!/usr/bin/python3
"""Averaging a float32 tensor across N processes with PyTorch's gloo
allreduce on 127.0.0.1: the reference of bench/exchange.sh.

Runs this script once per rank (--procs N, default 4). For each size every
rank fills its tensor, then per repetition: barrier, all_reduce (sum), divide
by N, so every rank ends with the mean (checked). A repetition's time is
from the first rank's start to the last rank's end (CLOCK_MONOTONIC is
one clock for every process of the machine). Prints one JSON line per size:
    {"path": "gloo", "n": N, "peers": P, "ms": [per repetition ...]}
Run with Debian's python3 (python3-torch):
    /usr/bin/python3 bench/allreduce_torch.py --sizes 1000000,10000000 --reps 10
"""
import argparse
import json
import sys
import time

from train_torch import spawn_ranks  # beside this script


def rank_main(args):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}",
                            rank=args.rank, world_size=args.procs)
    for n in [int(s) for s in args.sizes.split(",")]:
        base = torch.arange(n, dtype=torch.float32).remainder_(2001).mul_(1e-3)
        expect = base + (args.procs - 1) / 2.0
        t0, t1 = [], []
        for r in range(args.warmup + args.reps):
            x = base + float(args.rank)
            dist.barrier()
            a = time.monotonic()
            dist.all_reduce(x)
            x.div_(args.procs)
            b = time.monotonic()
            if r >= args.warmup:
                t0.append(a)
                t1.append(b)
            if not torch.allclose(x, expect, rtol=1e-5, atol=1e-5):
                print(f"allreduce_torch: rank {args.rank} did not end with the mean",
                      file=sys.stderr)
                return 1
        starts = torch.tensor(t0, dtype=torch.float64)
        ends = torch.tensor(t1, dtype=torch.float64)
        dist.all_reduce(starts, op=dist.ReduceOp.MIN)
        dist.all_reduce(ends, op=dist.ReduceOp.MAX)
        if args.rank == 0:
            ms = [round(1e3 * (e - s), 4) for s, e in zip(starts.tolist(), ends.tolist())]
            print(json.dumps({"path": "gloo", "n": n, "peers": args.procs, "ms": ms}),
                  flush=True)
    dist.destroy_process_group()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--sizes", default="1000000,10000000", help="float32 elements, comma-separated")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.procs < 1 or args.reps < 1 or args.warmup < 0:
        ap.error("--procs and --reps must be positive, --warmup >= 0")
    if args.rank >= 0:
        return rank_main(args)
    return spawn_ranks(args.procs)


if __name__ == "__main__":
    sys.exit(main())

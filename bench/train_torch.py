#!/usr/bin/python3
"""PyTorch reference for spirt's training throughput.

Trains the same models as spirt's src/ml on Fashion-MNIST -- the MLP
784-128-10 and the LeNet-style CNN (conv5x5x6 pad 2 + ReLU + maxpool2,
conv5x5x16 + ReLU + maxpool2, FC 120, FC 84, FC 10) -- with plain SGD on
minibatches gathered in the order of a random permutation (as spirt does),
and prints one JSON line per model:
    {"model": "mlp", "samples_per_second": ...}

Run with Debian's python3 (python3-torch), e.g.
    /usr/bin/python3 bench/train_torch.py --model mlp --samples 60000

Threads: torch runs its intra-op work on --threads OpenMP threads (default
2). Its linear layers call OpenBLAS, whose own thread pool would then fight
torch's threads for the same cores (measured on 2 cores: MLP 18k instead of
165k samples/s, CNN 7k instead of 23k), so OpenBLAS is pinned to
--openblas-threads (default 1) before torch loads. Both settings are
echoed in the JSON.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(np, path):
    """Reads a (possibly gzip-compressed) unsigned-byte IDX file."""
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def find(dirname, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}[.gz] not found in {dirname} "
                            "(install dataset-fashion-mnist or set SPIRT_DATA_DIR)")


def load_train(np, torch, dirname):
    x = read_idx(np, find(dirname, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(np, find(dirname, "train-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(y)


def make_model(nn, kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
    raise ValueError(f"unknown model {kind}")


def bench(torch, kind, x, y, samples, batch, lr, warmup=20):
    from torch import nn
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = make_model(nn, kind)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    per_epoch = n // batch
    steps = max(1, samples // batch)
    perm = torch.randperm(n, generator=gen)

    def step(i):
        nonlocal perm
        k = i % per_epoch
        if k == 0 and i > 0:
            perm = torch.randperm(n, generator=gen)
        idx = perm[k * batch:(k + 1) * batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(warmup + i)
    elapsed = time.perf_counter() - t0
    return steps * batch / elapsed, float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["mlp", "cnn", "all"], default="all")
    ap.add_argument("--samples", type=int, default=60000,
                    help="training samples to time (default: one epoch)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--openblas-threads", type=int, default=1,
                    help="OpenBLAS threads under torch's linear layers")
    ap.add_argument("--data", default=os.environ.get("SPIRT_DATA_DIR", DEFAULT_DIR))
    args = ap.parse_args()
    if args.batch <= 0 or args.samples <= 0 or args.threads <= 0 or args.openblas_threads <= 0:
        ap.error("--batch, --samples and the thread counts must be positive")

    # OpenBLAS sizes its pool when it loads (with numpy or torch): set first.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.openblas_threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    try:
        x, y = load_train(np, torch, args.data)
    except (OSError, ValueError) as e:
        print(f"train_torch: {e}", file=sys.stderr)
        return 1
    kinds = ["mlp", "cnn"] if args.model == "all" else [args.model]
    for kind in kinds:
        sps, loss = bench(torch, kind, x, y, args.samples, args.batch, args.lr)
        print(json.dumps({"model": kind, "samples_per_second": round(sps, 1),
                          "batch": args.batch, "threads": args.threads,
                          "openblas_threads": args.openblas_threads,
                          "torch": torch.__version__, "final_loss": round(loss, 4)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

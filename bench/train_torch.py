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

With --epochs E it trains E whole epochs instead (bench/vs-torch.sh): full
batches only, a new permutation per epoch, the test accuracy on the whole
test set every --eval-every iterations and at each epoch end (evaluation
time is not training time), and prints one JSON line with the epoch time,
the accuracy curve and the time to --target accuracy. --init spirt draws
the weights as spirt does (He normal, Xavier normal for the last layer,
zero biases); inputs are standardized as spirt's are (one mean and
deviation over all training pixels). --ddp N runs N processes (this script again, one per rank)
under DistributedDataParallel over gloo on 127.0.0.1: every epoch each
rank takes every N-th sample of the same permutation (DistributedSampler's
sharding, remainder dropped), batch --batch per rank, gradients averaged
by DDP's allreduce; rank 0 evaluates while the others wait.

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


def load_test(np, torch, dirname):
    x = read_idx(np, find(dirname, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(np, find(dirname, "t10k-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(y)


def spirt_init(torch, model):
    """spirt's src/ml/layers.c dense_Init: He normal for hidden layers,
    Xavier normal for the last, zero biases."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for i, m in enumerate(linears):
            fo, fi = m.weight.shape
            std = (2.0 / fi) ** 0.5 if i + 1 < len(linears) else (2.0 / (fi + fo)) ** 0.5
            m.weight.normal_(0.0, std)
            m.bias.zero_()


def accuracy(torch, model, xt, yt):
    correct = 0
    with torch.no_grad():
        for off in range(0, xt.shape[0], 1000):
            out = model(xt[off:off + 1000])
            correct += int((out.argmax(1) == yt[off:off + 1000]).sum())
    return correct / xt.shape[0]


def train_epochs(torch, args, rank, world):
    """Whole epochs with evaluation points; rank 0 returns the result."""
    from torch import nn
    import torch.distributed as dist
    np = sys.modules["numpy"]
    x, y = load_train(np, torch, args.data)
    xt, yt = load_test(np, torch, args.data)
    # spirt's dataset_Standardize: one mean and deviation over every
    # training pixel (of the whole set), applied to both splits.
    mean, std = x.double().mean(), x.double().std(unbiased=False)
    x, xt = ((x - mean) / std).float(), ((xt - mean) / std).float()
    x, y = x[:args.samples], y[:args.samples]
    if args.test_samples:
        xt, yt = xt[:args.test_samples], yt[:args.test_samples]
    torch.manual_seed(args.seed)
    model = make_model(nn, args.model)
    if args.init == "spirt":
        spirt_init(torch, model)
    net = model
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}",
                                rank=rank, world_size=world)
        net = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    per_rank = x.shape[0] // world
    iters = per_rank // args.batch
    history, phase = [], [0.0, 0.0, 0.0]  # forward+loss, backward (+allreduce), step
    train_s, it = 0.0, 0

    def evaluate():
        nonlocal train_s
        acc = accuracy(torch, model, xt, yt) if rank == 0 else 0.0
        if world > 1:
            dist.barrier()
        history.append({"t": train_s, "iteration": it, "test_accuracy": acc})
        return acc

    acc = 0.0
    for epoch in range(args.epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        mine = perm[rank::world][:per_rank]
        t0 = time.perf_counter()
        for k in range(iters):
            idx = mine[k * args.batch:(k + 1) * args.batch]
            a = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            b = time.perf_counter()
            loss.backward()
            c = time.perf_counter()
            opt.step()
            phase[0] += b - a
            phase[1] += c - b
            phase[2] += time.perf_counter() - c
            it += 1
            if args.eval_every and it % args.eval_every == 0 and k + 1 < iters:
                train_s += time.perf_counter() - t0
                evaluate()
                t0 = time.perf_counter()
        train_s += time.perf_counter() - t0
        acc = evaluate()
    if world > 1:
        dist.destroy_process_group()
    reached = [p["t"] for p in history if p["test_accuracy"] >= args.target]
    return {"model": args.model, "processes": world, "batch_per_process": args.batch,
            "threads": args.threads, "epochs": args.epochs, "iterations": it,
            "train_seconds": train_s, "epoch_seconds": train_s / args.epochs,
            "test_accuracy": acc, "target": args.target,
            "time_to_target": reached[0] if reached else None,
            "ms_per_iteration": {"forward": 1e3 * phase[0] / max(it, 1),
                                 "backward": 1e3 * phase[1] / max(it, 1),
                                 "step": 1e3 * phase[2] / max(it, 1),
                                 "total": 1e3 * train_s / max(it, 1)},
            "history": history, "torch": torch.__version__}


def spawn_ranks(n):
    """Runs this program (sys.argv) once per rank, adding --rank R and the
    --port of rank 0's gloo rendezvous on 127.0.0.1; rank 0's output is the
    answer. Also used by allreduce_torch.py."""
    import socket
    import subprocess
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:],
                               "--rank", str(r), "--port", str(port)],
                              stdout=subprocess.PIPE if r == 0 else subprocess.DEVNULL)
             for r in range(n)]
    out = procs[0].communicate()[0]
    codes = [p.wait() for p in procs]
    if any(codes):
        name = os.path.basename(sys.argv[0])
        print(f"{name}: a rank failed (exit statuses {codes})", file=sys.stderr)
        return 1
    sys.stdout.write(out.decode())
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["mlp", "cnn", "all"], default="all")
    ap.add_argument("--samples", type=int, default=60000,
                    help="training samples to time (default: one epoch); with --epochs, "
                    "the first N training samples")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--openblas-threads", type=int, default=1,
                    help="OpenBLAS threads under torch's linear layers")
    ap.add_argument("--data", default=os.environ.get("SPIRT_DATA_DIR", DEFAULT_DIR))
    ap.add_argument("--epochs", type=int, default=0,
                    help="train whole epochs with evaluation points (default: throughput)")
    ap.add_argument("--eval-every", type=int, default=25,
                    help="--epochs: test accuracy every N iterations (0: epoch ends only)")
    ap.add_argument("--target", type=float, default=0.80,
                    help="--epochs: the accuracy whose time is reported")
    ap.add_argument("--test-samples", type=int, default=0, help="--epochs: first N (0: all)")
    ap.add_argument("--init", choices=["torch", "spirt"], default="torch",
                    help="--epochs: torch's default init, or spirt's")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ddp", type=int, default=0,
                    help="--epochs: N processes under DistributedDataParallel (gloo)")
    ap.add_argument("--rank", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch <= 0 or args.samples <= 0 or args.threads <= 0 or args.openblas_threads <= 0:
        ap.error("--batch, --samples and the thread counts must be positive")
    if args.epochs < 0 or args.eval_every < 0 or args.ddp < 0 or args.test_samples < 0:
        ap.error("--epochs, --eval-every, --ddp and --test-samples must be >= 0")
    if (args.ddp or args.epochs) and args.model == "all":
        args.model = "mlp"
    if args.ddp and not args.epochs:
        ap.error("--ddp needs --epochs")
    if args.ddp > 1 and args.rank < 0:
        return spawn_ranks(args.ddp)

    # OpenBLAS sizes its pool when it loads (with numpy or torch): set first.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.openblas_threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    if args.epochs:
        try:
            r = train_epochs(torch, args, max(args.rank, 0), max(args.ddp, 1))
        except (OSError, ValueError) as e:
            print(f"train_torch: {e}", file=sys.stderr)
            return 1
        if args.rank <= 0:
            print(json.dumps(r), flush=True)
        return 0
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

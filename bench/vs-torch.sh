#!/usr/bin/env bash
# spirt against PyTorch: the MLP 784-128-10 on Fashion-MNIST, batch 64 per
# worker, SGD lr 0.05, one epoch, every row in the same run on this machine:
# PyTorch in one process and under DDP (gloo, one process per worker),
# spirt --arch single, SPIRT over HTTP functions and in-process, MLLESS,
# ScatterReduce and AllReduce over HTTP. Prints a table of epoch time, test
# accuracy, the time to reach 0.80 test accuracy (both sides evaluate every
# N iterations; evaluation time is not training time), the ratio of each
# epoch time to DDP's and the CPU of each whole run; then where the time goes
# per row and the CPU of the whole SPIRT run against single's (goal <= 3x).
#   bench/vs-torch.sh [--eval-every N (25)] [--epochs E (1)] [--workers W (4)]
#                     [--batch B (64)] [--lr LR (0.05)] [--target ACC (0.80)]
#                     [--rounds R (1): each row R times, order alternating; medians]
#                     [--torch-threads T (1): intra-op threads per torch process]
#                     [--train-samples N (0 = all)] [--rows LIST (all): a subset of
#                     torch-1,torch-ddp,single,spirt-http,spirt-inproc,mlless,
#                     scatter-reduce,all-reduce]
# Installs python3-torch from Debian when /usr/bin/python3 cannot import torch.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
eval_every=25 epochs=1 workers=4 batch=64 lr=0.05 target=0.80 rounds=1 threads=1 samples=0 rows=all
bench_options --eval-every=eval_every --epochs=epochs --workers=workers --batch=batch --lr=lr \
  --target=target --rounds=rounds --torch-threads=threads --train-samples=samples \
  --rows=rows -- "$@"
bench_build bin/spirt
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "$bench_name: installing python3-torch for the reference" >&2
  apt-get install -y -qq python3-torch >/dev/null
fi
exec /usr/bin/python3 "$root/bench/vs_torch.py" --build "$build" --eval-every "$eval_every" \
  --epochs "$epochs" --workers "$workers" --batch "$batch" --lr "$lr" --target "$target" \
  --rounds "$rounds" --torch-threads "$threads" --train-samples "$samples" --rows "$rows"

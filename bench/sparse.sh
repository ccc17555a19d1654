#!/usr/bin/env bash
# Sparse models on a hashed LibSVM file from `spirt datagen sparse`: for
# logreg and svm, single-process training (total batch workers x batch) and
# `--arch spirt`, `all-reduce` and `scatter-reduce` with WORKERS workers, as a user runs them
# (every step its own function process, real Redis and NATS).
#   bench/sparse.sh [--rows N] [--dim D] [--nnz K] [--workers W] [--batch B]
#                   [--epochs E] [--lr LR]
# Prints one line per model and architecture: test accuracy (and the Bayes
# accuracy of the file), bytes per worker per iteration, time per epoch.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
rows=60000 dim=1048576 nnz=24 workers=4 batch=64 epochs=3 lr=1
bench_options --rows=rows --dim=dim --nnz=nnz --workers=workers --batch=batch \
  --epochs=epochs --lr=lr -- "$@"
bench_build bin/spirt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

data=$tmp/hashed.svm.gz
bayes=$("$build/bin/spirt" datagen sparse --out "$data" --rows "$rows" --dim "$dim" \
  --nnz "$nnz" | awk '$1 == "bayes_accuracy" {print $2}')
echo "sparse: $rows rows, dimension $dim, ~$nnz features a row, Bayes accuracy $bayes"

field() {
  /usr/bin/python3 -c "import json,sys
r = json.load(open(sys.argv[1])); d = r.get('details', {})
v = {'acc': r['test_accuracy'], 'epoch_s': r['train_seconds'] / r['epochs'],
     'bytes': d.get('bytes_per_worker_per_iteration', 0)}[sys.argv[2]]
print(f'{v:.4f}' if sys.argv[2] == 'acc' else f'{v:.0f}' if sys.argv[2] == 'bytes' else f'{v:.2f}')" "$1" "$2"
}

for model in logreg svm; do
  "$build/bin/spirt" train --arch single --model "$model" --dataset "$data" \
    --batch $((workers * batch)) --epochs "$epochs" --lr "$lr" --quiet \
    --report "$tmp/single.json" >/dev/null
  for arch in spirt all-reduce scatter-reduce; do
    "$build/bin/spirt" train --arch "$arch" --workers "$workers" --model "$model" \
      --dataset "$data" --batch "$batch" --epochs "$epochs" --lr "$lr" --quiet \
      --report "$tmp/$arch.json" >/dev/null
  done
  for arch in single spirt all-reduce scatter-reduce; do
    bytes=-   # one process moves nothing
    if [ "$arch" != single ]; then bytes=$(field "$tmp/$arch.json" bytes); fi
    printf '%-6s %-14s accuracy %s   bytes/worker/iteration %8s   s/epoch %s\n' "$model" \
      "$arch" "$(field "$tmp/$arch.json" acc)" \
      "$bytes" \
      "$(field "$tmp/$arch.json" epoch_s)"
  done
done

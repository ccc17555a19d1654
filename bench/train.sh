#!/usr/bin/env bash
# Training throughput: spirt (single process) against a PyTorch reference of
# the same model, data, batch and learning rate, in the same run.
#   bench/train.sh [--samples N]   (default 30000 training samples)
# Prints one line per model: spirt samples/s, torch samples/s and the ratio.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
samples=30000
bench_options --samples=samples -- "$@"
bench_build bin/spirt
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "bench/train.sh: installing python3-torch for the reference"
  apt-get install -y -qq python3-torch >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for model in mlp cnn; do
  "$build/bin/spirt" train --arch single --model "$model" --hidden 128 --batch 64 --lr 0.05 \
    --epochs 1 --train-samples "$samples" --test-samples 1000 --quiet \
    --report "$tmp/$model.json" >/dev/null
  spirt_sps=$(/usr/bin/python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['samples_per_second']))" "$tmp/$model.json")
  torch_sps=$(/usr/bin/python3 "$root/bench/train_torch.py" --model "$model" --samples "$samples" \
    | /usr/bin/python3 -c "import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])['samples_per_second']))")
  ratio=$(/usr/bin/python3 -c "print(f'{$spirt_sps/$torch_sps:.2f}')")
  printf '%-4s batch 64: spirt %8s samples/s   torch %8s samples/s   spirt/torch %s\n' \
    "$model" "$spirt_sps" "$torch_sps" "$ratio"
done

#!/usr/bin/env bash
# Test accuracy of SPIRT under Byzantine peers: each attack (none, sign-flip,
# gaussian, label-flip) x each aggregation rule (mean, trimmed-mean, median,
# krum, multi-krum), as a markdown table. 5 peers, the last F attack;
# MLP on the first 12000 Fashion-MNIST training samples, full test set.
#   bench/byzantine.sh [--workers N] [--attackers-count F] [--epochs E]
#                      [--attack-scale K] [--attack-sigma S] [--seed N]
#                      [--lr RATE] [--batch B] [--transport inproc|http]
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
workers=5 attackers=1 epochs=4 batch=64 scale=4 sigma=1 seed=42 lr=0.02 transport=inproc
bench_options --workers=workers --attackers-count=attackers --epochs=epochs \
  --attack-scale=scale --attack-sigma=sigma --seed=seed --lr=lr --batch=batch \
  --transport=transport -- "$@"
bench_build bin/spirt
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

rules="mean trimmed-mean median krum multi-krum"
attacks="none sign-flip gaussian label-flip"
for attack in $attacks; do
  for rule in $rules; do
    args=(train --arch spirt --workers "$workers" --minibatches 1 --batch "$batch"
          --train-samples 12000 --test-samples 0 --epochs "$epochs"
          --optimizer momentum --lr "$lr" --seed "$seed" --transport "$transport"
          --aggregator "$rule" --trim "$attackers" --byzantine "$attackers"
          --quiet --report "$dir/$attack-$rule.json")
    if [ "$attack" != none ]; then
      args+=(--attack "$attack" --attackers-count "$attackers"
             --attack-scale "$scale" --attack-sigma "$sigma")
    fi
    # A diverged run (non-finite gradients) is a result too: no report.
    "$build/bin/spirt" "${args[@]}" >"$dir/$attack-$rule.log" 2>&1 || true
  done
done

python3 - "$dir" "$workers" "$attackers" "$scale" "$sigma" "$epochs" "$lr" "$batch" <<'PY'
import json, os, sys
d, workers, f, scale, sigma, epochs, lr, batch = sys.argv[1:]
rules = ["mean", "trimmed-mean", "median", "krum", "multi-krum"]
attacks = ["none", "sign-flip", "gaussian", "label-flip"]
def acc(a, r):
    p = os.path.join(d, f"{a}-{r}.json")
    return json.load(open(p))["test_accuracy"] if os.path.exists(p) else None
print(f"SPIRT, {workers} peers, the last {f} attacking (sign-flip x-{scale}, "
      f"gaussian sigma {sigma}), MLP, batch {batch}, SGD momentum 0.9 lr {lr}, {epochs} epochs of 12000 "
      f"Fashion-MNIST samples, test accuracy on 10000")
print()
print("| attack | " + " | ".join(rules) + " |")
print("|---" * (len(rules) + 1) + "|")
clean = {r: acc("none", r) for r in rules}
for a in attacks:
    cells = []
    for r in rules:
        x = acc(a, r)
        if x is None:
            cells.append("failed")
        elif a == "none":
            cells.append(f"{x:.4f}")
        else:
            cells.append(f"{x:.4f} ({100 * (x - clean[r]):+.1f})" if clean[r] is not None
                         else f"{x:.4f}")
    print(f"| {a} | " + " | ".join(cells) + " |")
print()
print("(in parentheses: points against the same rule without attack)")
PY

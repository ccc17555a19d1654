#!/usr/bin/env bash
# Time per SPIRT iteration, split into its steps: MLP on Fashion-MNIST with
# N peers and M minibatches each (default N=4, M=2), every step an HTTP
# function process, real redis-servers (module loaded) and nats-server.
#   bench/spirt.sh [--workers N] [--minibatches M] [--batch B] [--epochs E]
#                  [--train-samples N (default all)] [--transport http|inproc]
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
workers=4 minibatches=2 epochs=1 transport=http batch=32 samples=0
bench_options --workers=workers --minibatches=minibatches --epochs=epochs --batch=batch \
  --train-samples=samples --transport=transport -- "$@"
bench_build bin/spirt
report=$(mktemp --suffix=.json)
trap 'rm -f "$report"' EXIT
"$build/bin/spirt" train --arch spirt --workers "$workers" --minibatches "$minibatches" \
  --batch "$batch" --epochs "$epochs" --train-samples "$samples" --lr 0.1 --transport "$transport" --quiet \
  --report "$report" >/dev/null
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d, s = r["details"], r["details"]["steps"]
def ms(step, key="wall_ms"):
    return s.get(step, {}).get(key, 0.0)
rows = [
    ("compute (minibatch fetch + gradients)", ms("minibatch") + ms("gradient")),
    ("in-DB average", ms("average")),
    ("sync wait (notify + barrier)", ms("notify") + ms("barrier")),
    ("peer fetch", ms("aggregate", "transfer_ms")),
    ("aggregate", ms("aggregate") - ms("aggregate", "transfer_ms")),
    ("update (in DB)", ms("update")),
]
total = sum(v for _, v in rows)
print(f"SPIRT, {r['workers']} peers x {r['minibatches']} minibatches of {r['batch']}, "
      f"{d['transport']}, tensor math {d['tensor_math']}")
print(f"{r['iterations']} iterations in {r['train_seconds']:.2f} s, "
      f"test accuracy {r['test_accuracy']:.4f}")
for name, v in rows:
    print(f"  {name:40s} {v:8.2f} ms  ({100 * v / total:5.1f} %)")
print(f"  {'total per iteration':40s} {total:8.2f} ms")
grad = ms("gradient", "compute_ms") / max(r["minibatches"], 1)
print(f"  gradient computation inside the gradient function: {ms('gradient', 'compute_ms'):.2f} ms "
      f"of CPU over {r['minibatches']} parallel invocation(s)")
outside = 1 - (ms("gradient", "compute_ms") / r["minibatches"]) / total
print(f"share of the iteration spent outside gradient computation: {100 * outside:.1f} %")
print(f"bytes moved per worker per iteration: {d['bytes_per_worker_per_iteration'] / 1e6:.2f} MB")
PY

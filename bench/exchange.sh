#!/usr/bin/env bash
# Gradient exchange: averaging N float32 across P peers through spirt's
# store, every peer ending with the mean, next to a gloo allreduce of the
# same size among P processes (PyTorch, allreduce_torch.py), in the same run.
#   spirt       each peer PUTs its tensor into its own Redis, fetches every
#               peer's from that peer's Redis (store_GetTensorsInto), averages
#               (kern_Mean) and PUTs the mean into its own Redis
#   all-reduce  each peer PUTs into the shared Redis, SPIRT.AVG there, every
#               peer GETs the mean
# P peer threads of bin/bench-exchange (exchange.c: the public store API only)
# against P peer redis-servers and a shared one (spirt module loaded, one ACL
# user whose password is only in 0600 files), started here on loopback.
# Rounds alternate the order (C, torch; then torch, C); medians over every
# repetition of every round.
#   bench/exchange.sh [--sizes N,N (1000000,10000000)] [--peers P (4)]
#                     [--reps R (10 per round)] [--rounds K (2)]
# Prints, per size, the median ms of each path and its ratio to gloo's.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
sizes=1000000,10000000 peers=4 reps=10 rounds=2
bench_options --sizes=sizes --peers=peers --reps=reps --rounds=rounds -- "$@"
bench_build lib/spirt_redis.so bin/bench-exchange
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "$bench_name: installing python3-torch for the reference" >&2
  apt-get install -y -qq python3-torch >/dev/null
fi

bench_workdir
# The password lives in 0600 files only: the servers' configs and the one
# bench-exchange reads (as src/driver/server_conf.c writes the runner's).
password=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s\n' "$password" >"$bench_work/redis-password")
users=("user default off" "user spirt on >$password ~* &* +@all")
module="loadmodule \"$build/lib/spirt_redis.so\""

peer_list="" port=""
for p in $(seq 0 $((peers - 1))); do
  bench_redis "peer-$p" port "${users[@]}" "$module"
  peer_list+="${peer_list:+,}127.0.0.1:$port"
done
bench_redis shared port "${users[@]}" "$module"
shared="127.0.0.1:$port"

results=$bench_work/results.jsonl
run_c() {
  local n
  for n in ${sizes//,/ }; do
    "$build/bin/bench-exchange" --peers "$peer_list" --shared "$shared" --user spirt \
      --password-file "$bench_work/redis-password" --n "$n" --reps "$reps" >>"$results"
  done
}
run_torch() {
  /usr/bin/python3 "$root/bench/allreduce_torch.py" --procs "$peers" --sizes "$sizes" \
    --reps "$reps" >>"$results"
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then run_c; run_torch; else run_torch; run_c; fi
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average $(cut -d' ' -f1 /proc/loadavg)"
/usr/bin/python3 - "$results" "$peers" "$reps" "$rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peers, reps, rounds = sys.argv[2], sys.argv[3], sys.argv[4]
print(f"averaging float32 across {peers} peers, every peer ends with the mean; "
      f"median of {reps} x {rounds} repetitions (rounds alternate the order)")
print()
print("| floats | path | median ms | min ms | ratio to gloo |")
print("| ---: | --- | ---: | ---: | ---: |")
for n in sorted({r["n"] for r in rows}):
    ms = {}
    for r in rows:
        if r["n"] == n:
            ms.setdefault(r["path"], []).extend(r["ms"])
    gloo = statistics.median(ms["gloo"]) if "gloo" in ms else None
    for path, label in (("gloo", "gloo allreduce (torch)"), ("spirt", "SPIRT (own Redis, fetch peers, mean)"),
                        ("all-reduce", "AllReduce (shared Redis, SPIRT.AVG)")):
        if path not in ms:
            continue
        med = statistics.median(ms[path])
        ratio = f"{med / gloo:.2f}" if gloo else "-"
        print(f"| {n} | {label} | {med:.2f} | {min(ms[path]):.2f} | {ratio} |")
PY

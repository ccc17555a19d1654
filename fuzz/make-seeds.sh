#!/usr/bin/env bash
# Writes the seed corpora fuzz/corpus/<harness>/ (small, hand-made inputs
# that reach each parser's main paths). Safe to run again; scripts/fuzz.sh
# runs it when a seed directory is missing. Only printf and gzip are needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus"

seed() { # seed HARNESS NAME  (content on stdin)
  mkdir -p "$corpus/$1"
  cat >"$corpus/$1/$2"
}

# --- fuzz_wire: 24-byte header + payload. The harness recomputes the CRC
# itself, so the seeds carry a zero checksum.
hdr() { # hdr DTYPE_BYTE COUNT_BYTE EXTRA_BYTE
  printf '%b' "SPT\\001\\001\\000\\x$1\\000\\x$2" '\000\000\000\000\000\000\000' \
    '\000\000\000\000' "\\x$3" '\000\000\000'
}
{ hdr 01 03 00; printf '\000\000\200\077\000\000\000\100\000\000\300\177'; } | seed fuzz_wire f32-nan
{ hdr 01 02 00; printf '\000\000\200\077\000\000\000\300'; } | seed fuzz_wire f32
hdr 01 00 00 | seed fuzz_wire f32-empty
{ hdr 02 05 00; printf 'abcde'; } | seed fuzz_wire u8
{ hdr 03 01 00; printf '\007\000\000\000'; } | seed fuzz_wire i32
{ hdr 04 02 0a; printf '\001\000\000\000\000\000\200\077\011\000\000\000\000\000\000\300'; } |
  seed fuzz_wire sparse

# --- fuzz_job_json: the job object of a step request.
job='{"id":"fz","arch":"spirt","model":"mlp","hidden":[16,8],"dataset":"fashion-mnist","train_samples":600,"test_samples":100,"workers":2,"minibatches":2,"epochs":1,"batch":32,"optimizer":"sgd","lr":0.05,"momentum":0.9,"weight_decay":0.0001,"aggregator":"trimmed-mean","trim":1,"byzantine":1,"seed":"42","significance":0.01,"sync_timeout_ms":30000}'
printf '%s' "$job" | seed fuzz_job_json full
printf '{}' | seed fuzz_job_json empty
printf '{"arch":"mlless","model":"logreg","optimizer":"adam","aggregator":"krum","seed":"18446744073709551615"}' |
  seed fuzz_job_json kinds
printf '{"model":"cnn","hidden":[],"lr":1e-3,"batch":65536,"workers":256}' | seed fuzz_job_json limits

# --- fuzz_step_request: whole request bodies.
printf '{"job":%s,"shape":[1,28,28,10],"iteration":3,"epoch":1,"peer":1,"m":0,"live":[1,0]}' "$job" |
  seed fuzz_step_request spirt
printf '{"job":{"id":"x","model":"cnn"},"shape":[1,28,28,10],"timeout_ms":500,"dataset_reload":true,"source":"0"}' |
  seed fuzz_step_request cnn
printf '{"job":{},"iteration":0,"peer":0,"significance":0.5,"minibatches":4}' |
  seed fuzz_step_request minimal
# Addresses are refused (they come from the function's configuration).
printf '{"job":{},"iteration":0,"peer":0,"peers":["127.0.0.1:6379"],"shared":"[::1]:6379","nats":"nats://h:1"}' |
  seed fuzz_step_request addresses

# --- fuzz_idx: 2-byte big-endian length of the image file, the image file,
# then the label file. Two 2x2 images, labels 3 and 7.
idx_images() { printf '\000\000\010\003\000\000\000\002\000\000\000\002\000\000\000\002\000\177\200\377\001\002\003\004'; }
idx_labels() { printf '\000\000\010\001\000\000\000\002\003\007'; }
{ printf '\000\030'; idx_images; idx_labels; } | seed fuzz_idx raw
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
idx_images | gzip -n9 >"$tmp/i.gz"
idx_labels | gzip -n9 >"$tmp/l.gz"
len=$(wc -c <"$tmp/i.gz")
{ printf '%b' "\\x$(printf %02x $((len >> 8)))\\x$(printf %02x $((len & 255)))"; cat "$tmp/i.gz" "$tmp/l.gz"; } |
  seed fuzz_idx gzip

# --- fuzz_libsvm
printf '1 1:0.5 3:1\n-1 2:0.25 4:-3e2\n+1 1:1\n' | seed fuzz_libsvm binary
printf '# header comment\n0 1:1 qid:3 2:2\n\n2 4:1e3 # trailing\r\n1 3:0.125' | seed fuzz_libsvm multiclass
printf '3 2:1\n0 1:0.5\n' | gzip -n9 | seed fuzz_libsvm gzip

# --- fuzz_csv
printf 'a,b,label\n1,2,0\n3,4,1\n' | seed fuzz_csv header
printf '0, 1.5 ,2e-3,-4\r\n1,0,0,0\n\n2,1,1,1' | seed fuzz_csv first-label
printf '0.5,0.25,1\n0.75,0,0\n' | gzip -n9 | seed fuzz_csv gzip

# --- fuzz_http: raw requests as a client sends them.
crlf() { sed 's/$/\r/'; }
printf 'GET /healthz HTTP/1.1\nHost: fn\n\n' | crlf | seed fuzz_http healthz
printf 'GET /readyz HTTP/1.1\nHost: fn\n\nGET /metrics HTTP/1.1\nHost: fn\n\n' | crlf |
  seed fuzz_http pipelined
printf 'HEAD / HTTP/1.1\nHost: fn\nK-Kubelet-Probe: queue\n\n' | crlf | seed fuzz_http probe
printf 'PUT /healthz HTTP/1.0\n\n' | crlf | seed fuzz_http method
printf 'GET /nowhere?x=1 HTTP/1.1\nHost: fn\n\n' | crlf | seed fuzz_http notfound
body='{"a":1,"fail":4}'
{ printf 'POST / HTTP/1.1\nHost: fn\nAuthorization: Bearer fuzz-token\nContent-Type: application/json\nContent-Length: %d\n\n' ${#body} | crlf; printf '%s' "$body"; } |
  seed fuzz_http post
body='{"data":[1,2,3]}'
{ printf 'POST / HTTP/1.1\nHost: fn\nAuthorization: Bearer fuzz-token\nce-id: 1\nce-type: t\nce-source: s\nce-specversion: 1.0\nTransfer-Encoding: chunked\n\n' | crlf; printf '%x\r\n%s\r\n0\r\n\r\n' ${#body} "$body"; } |
  seed fuzz_http cloudevent-chunked
printf 'POST / HTTP/1.1\nHost: fn\nAuthorization: Bearer wrong\nContent-Length: 2\n\n{}' | crlf |
  seed fuzz_http unauthorized
printf 'POST / HTTP/1.1\nHost: fn\nAuthorization: Bearer fuzz-token\nContent-Length: 4096\n\n{"big":' | crlf |
  seed fuzz_http too-large
echo "seeds written under $corpus"

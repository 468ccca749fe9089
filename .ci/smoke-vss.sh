#!/usr/bin/env bash
# Smoke-run the compiled binary end to end: `up` a VSS on free-ish ports in a temp dir, put a
# file, get it back byte-exact, check status, stop the VSS with SIGTERM.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
dir="$(mktemp -d)"
base=$(( 20000 + RANDOM % 20000 ))
export MICTLANX_ROUTERS="127.0.0.1:$((base + 1))" MICTLANX_SPM="127.0.0.1:$base"
"$bin" up --data "$dir/vss" --port "$base" > "$dir/up.log" 2>&1 &
up_pid=$!
cleanup() { kill -TERM "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 100); do grep -q "VSS is up" "$dir/up.log" && break; sleep 0.2; done
grep -q "VSS is up" "$dir/up.log" || { cat "$dir/up.log"; exit 1; }
head -c 3000000 /dev/urandom > "$dir/in.bin"
"$bin" put smoke/in.bin "$dir/in.bin" --chunk-size 256KiB
"$bin" get smoke/in.bin -o "$dir/out.bin"
cmp "$dir/in.bin" "$dir/out.bin"
"$bin" status --json | grep -q '"state":"up"'
set +e
"$bin" get smoke/missing -o "$dir/none" 2>/dev/null; code=$?
set -e
[ "$code" -eq 4 ] || { echo "get of a missing ball must exit 4, got $code"; exit 1; }
echo "smoke: put/get through a local VSS ok"

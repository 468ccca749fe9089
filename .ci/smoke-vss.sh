#!/usr/bin/env bash
# Smoke-run the compiled binary end to end, as the README's quick start does: `up` a VSS with its
# default data dir (./.mictlanx, TLS and an admin key) in a temp dir, then, from that dir and with
# no credentials flags, put a file, get it back byte-exact, check status; stop it with SIGTERM.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
dir="$(mktemp -d)"
base=$(( 20000 + RANDOM % 20000 ))
export MICTLANX_ROUTERS="127.0.0.1:$((base + 1))" MICTLANX_SPM="127.0.0.1:$base"
unset MICTLANX_CREDENTIALS MICTLANX_ACCESS_KEY MICTLANX_SECRET_KEY MICTLANX_CA
cd "$dir"   # the CLI finds ./.mictlanx/credentials.json by itself from here
"$bin" up --port "$base" > "$dir/up.log" 2>&1 &
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
[ "$(stat -c %a "$dir/.mictlanx/credentials.json")" = 600 ] || { echo "credentials.json must be mode 0600"; exit 1; }
echo "smoke: put/get through a local VSS with TLS and keys, no flags, ok"

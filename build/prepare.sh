#!/usr/bin/env bash
# Installs what kv2 needs on a Debian machine, and only what is missing:
#   build/prepare.sh build   Debian's etcd and bubblewrap (both embedded into ./kv2: bwrap is the task
#                            sandbox), a C compiler (the executor's step launcher is compiled into
#                            ./kv2), then the npm packages
#   build/prepare.sh test    the same, plus Chromium (browser tests)
# As root it installs with apt-get; otherwise it says what to install and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-build}"

missing=()
[ -n "${KV2_ETCD_BINARY:-}" ] || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
[ -n "${KV2_ETCDCTL_BINARY:-}" ] || [ -x /usr/bin/etcdctl ] || missing+=(etcd-client)
command -v "${CC:-cc}" >/dev/null || missing+=(gcc)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -n "${KV2_BWRAP_BINARY:-}" ] || [ -x /usr/bin/bwrap ] || missing+=(bubblewrap)
if [ "$purpose" = test ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v zip >/dev/null || missing+=(zip)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "[prepare] installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[prepare] missing Debian packages: ${missing[*]}" >&2
    echo "[prepare] install them (sudo apt-get install ${missing[*]}) and run this again" >&2
    exit 1
  fi
fi

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[prepare] installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

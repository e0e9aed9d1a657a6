#!/usr/bin/env bash
# Makes sure the Dockerfile's base images (debian:bookworm-slim, node:20-bookworm) are in the engine's
# image store: there already, else pulled, else made here when no registry answers (Debian's debootstrap
# with this machine's apt mirror, and this machine's Node 20 with its npm). Made images stay in the
# engine's store, so the next run skips all of this.
#   test/container/base-images.sh docker|podman
# With podman, containers.conf (CONTAINERS_CONF) carries the runtime and ulimits this machine needs.
set -euo pipefail
engine="${1:?usage: base-images.sh docker|podman}"
# How long one pull may try before the image is made locally instead.
PULL_TIMEOUT_S="${KV2_BASE_PULL_TIMEOUT_S:-120}"
SLIM=docker.io/library/debian:bookworm-slim
NODE=docker.io/library/node:20-bookworm

# The recipe's version, labelled on the images made here: an image made by an older recipe is made again
# (one pulled from a registry has no such label and is kept).
RECIPE=2
LABEL=org.kv2.base-images

log() { echo "[base-images] $*"; }
have() {
  "$engine" image inspect "$1" >/dev/null 2>&1 || return 1
  local made
  made="$("$engine" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true)"
  [ -z "$made" ] || [ "$made" = "<no value>" ] || [ "$made" = "$RECIPE" ] || { log "$1: made by an older recipe ($made), making it again"; return 1; }
}

work="$(mktemp -d /tmp/kv2-base-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list), else deb.debian.org.
mirror_of() { # $1: the archive's last path element, debian or debian-security
  local found
  found="$(grep -hsv '^\s*#' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    | grep -oE "https?://[^ ]+/$1/?( |\$)" | head -1 | tr -d ' ' || true)"
  echo "${found%/}"
}

make_slim() {
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  local mirror security rootfs="$work/rootfs"
  mirror="$(mirror_of debian)"; mirror="${mirror:-http://deb.debian.org/debian}"
  security="$(mirror_of debian-security)"; security="${security:-http://deb.debian.org/debian-security}"
  log "making $SLIM with debootstrap from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # What makes the official slim image slim: no docs, man pages or locales, no apt caches or lists.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda}/* "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/cache/debconf/*-old
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  : >"$rootfs/etc/machine-id"
  tar --numeric-owner -C "$rootfs" -c . | "$engine" import --change 'CMD ["bash"]' --change "LABEL $LABEL=$RECIPE" - "$SLIM" >/dev/null
}

make_node() {
  local node npm
  node="$(command -v node || true)"
  [ -n "$node" ] && [[ "$("$node" --version)" == v20.* ]] || { log "cannot make $NODE: this machine has no Node 20 (node --version: $("$node" --version 2>&1))" >&2; exit 1; }
  npm="$(dirname "$(readlink -f "$(command -v npm)")")/.."
  # The official image (buildpack-deps) has gcc and the C library's headers; kv2's build compiles its step launcher with them.
  log "making $NODE from $SLIM, Debian's ca-certificates, gcc and libc6-dev, and this machine's Node $("$node" --version) and npm"
  mkdir -p "$work/node"
  cp "$node" "$work/node/node"
  cp -a "$(readlink -f "$npm")" "$work/node/npm"
  cat >"$work/node/Dockerfile" <<EOF
FROM $SLIM
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libstdc++6 gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
LABEL $LABEL=$RECIPE
CMD ["node"]
EOF
  "$engine" build -q -t "$NODE" "$work/node" >/dev/null 2>"$work/node-build.log" || { tail -20 "$work/node-build.log" >&2; exit 1; }
}

ensure() { # $1: image, $2: the function that makes it
  if have "$1"; then log "$1: in the image store"; return; fi
  if timeout "$PULL_TIMEOUT_S" "$engine" pull -q "$1" >/dev/null 2>"$work/pull.log"; then log "$1: pulled"; return; fi
  log "$1: no registry has it ($(tail -1 "$work/pull.log" | cut -c1-160))"
  local started=$SECONDS
  "$2"
  log "$1: made in $((SECONDS - started)) s"
}

ensure "$SLIM" make_slim
ensure "$NODE" make_node

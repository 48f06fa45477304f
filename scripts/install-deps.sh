#!/usr/bin/env bash
# Installs the Debian packages capsule's tests, benchmarks and demo need — only those missing.
# Used by .ci/run and scripts/demo.sh; safe to run again.
set -euo pipefail

section() { printf '\n==== %s ====\n' "$*"; }

section "system packages"
apt_updated=false
apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  if [ "$apt_updated" = false ]; then
    "${sudo[@]}" apt-get update -qq
    apt_updated=true
  fi
  echo "installing: $*"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
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
echo "postgres: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
echo "redis:    $(redis-server --version | head -1)"
echo "ceph:     $(ceph --version | head -1)"
echo "node:     $(node --version)"
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
echo "promtool: $(promtool --version 2>&1 | head -1)"


#!/usr/bin/env bash
# The capsule container image, built and run without Docker or a registry (docs/design.md §13, docs/adr/0010):
#
#   scripts/image.sh build          base image (debootstrap, cached) + the capsule image, with buildah
#   scripts/image.sh check          exit 0 when buildah can run here; otherwise print why and exit 3
#   scripts/image.sh inspect        the built image's id, size and config as JSON (exit 4 when it is not built)
#   scripts/image.sh run [--env NAME]... -- COMMAND [ARG]...
#                                   run COMMAND in the image as a Kubernetes pod would: the image's user, a
#                                   read-only root, a fresh tmpfs at /tmp, the host's network (to reach test
#                                   servers on 127.0.0.1). --env passes a variable's value from this environment.
#
# Needs root (buildah with --storage-driver vfs --isolation chroot). The base rootfs is cached in
# $CAPSULE_IMAGE_CACHE (default /var/cache/capsule-image-base) and rebuilt when CAPSULE_IMAGE_REFRESH_BASE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_NAME="docker.io/library/debian:trixie-slim"
BASE_SUITE="trixie"
MIRROR="${CAPSULE_IMAGE_MIRROR:-http://deb.debian.org/debian}"
IMAGE="${CAPSULE_IMAGE:-localhost/capsule:ci}"
CACHE="${CAPSULE_IMAGE_CACHE:-/var/cache/capsule-image-base}"
# A storage root of our own: vfs must not meet another driver's layers in the default root.
STORAGE=(--root "${CAPSULE_IMAGE_STORAGE:-/var/lib/capsule-image/storage}" --runroot /run/capsule-image
  --storage-driver vfs)
export BUILDAH_ISOLATION=chroot

say() { printf '[image] %s\n' "$*" >&2; }
bah() { buildah "${STORAGE[@]}" "$@"; }

# Why buildah cannot run here, or nothing.
why_not() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "not root (buildah with vfs storage and chroot isolation needs root)"
  elif ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
    if ! command -v apt-get >/dev/null; then
      echo "buildah or debootstrap missing and no apt-get to install them"
    fi
  elif ! unshare --mount true 2>/dev/null; then
    echo "cannot create a mount namespace (unshare --mount failed)"
  fi
}

install_tools() {
  command -v buildah >/dev/null && command -v debootstrap >/dev/null && return
  say "installing buildah and debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah debootstrap >/dev/null ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends buildah debootstrap >/dev/null; }
}

# The upstream base's name, made locally: no registry is reachable, so a debootstrapped minbase rootfs slimmed
# the way the official -slim images are (no docs, man pages or translations; no apt lists) stands in for it.
build_base() {
  local tarball="$CACHE/$BASE_SUITE-minbase.tar"
  if [[ "${CAPSULE_IMAGE_REFRESH_BASE:-}" == 1 ]]; then
    rm -f "$tarball"
    bah rmi -f "$BASE_NAME" >/dev/null 2>&1 || true
  fi
  if bah inspect --type image "$BASE_NAME" >/dev/null 2>&1; then
    say "base $BASE_NAME: cached in buildah storage"
    return
  fi
  mkdir -p "$CACHE"
  if [[ ! -s "$tarball" ]]; then
    local root="$CACHE/rootfs.$$"
    rm -rf "$root"
    say "base: debootstrap --variant=minbase $BASE_SUITE from $MIRROR"
    debootstrap --variant=minbase "$BASE_SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
      { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
      >"$root/etc/dpkg/dpkg.cfg.d/docker"
    printf '%s\n' 'Acquire::Languages "none";' 'APT::Install-Recommends "false";' \
      'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
      >"$root/etc/apt/apt.conf.d/docker-clean"
    find "$root/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
      "$root"/var/log/* "$root"/dev/*
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  else
    say "base: rootfs cached in $tarball"
  fi
  local ctr mnt
  ctr=$(bah from --name "capsule-base-$$" scratch)
  mnt=$(bah mount "$ctr")
  tar -C "$mnt" --numeric-owner -xf "$tarball"
  bah umount "$ctr" >/dev/null
  bah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --os linux --arch amd64 "$ctr"
  bah commit --quiet --rm "$ctr" "$BASE_NAME" >/dev/null
  say "base $BASE_NAME: committed"
}

build_image() {
  local version revision
  version=$(node -p 'require("./package.json").version')
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  say "building $IMAGE (capsule $version, $revision)"
  # The host's extra CA bundle (a TLS-intercepting proxy to the npm registry) goes in as a build secret.
  local ca=()
  [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -r "${NODE_EXTRA_CA_CERTS}" ]] && ca=(--secret "id=ca,src=$NODE_EXTRA_CA_CERTS")
  # No --layers: with vfs every cached step is a full copy of the root (17 steps of a 350 MB image, ~6 GB per
  # build); without it, each stage is committed once.
  bah build --pull=never --isolation chroot -f Dockerfile -t "$IMAGE" "${ca[@]}" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
  local id
  id=$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE")
  say "built $IMAGE: ${id:0:12}"
  # What earlier builds left: run containers of older images, working containers of failed builds, and the
  # images nothing names any more.
  bah containers --format '{{.ContainerName}}' | grep -E -e '-working-container$' -e '^capsule-run-' |
    grep -v "^capsule-run-${id:0:12}$" | xargs -r buildah "${STORAGE[@]}" rm >/dev/null || true
  bah rmi --prune >/dev/null 2>&1 || true
}

inspect_image() {
  bah inspect --type image "$IMAGE" >/dev/null 2>&1 || { echo "image $IMAGE is not built" >&2; exit 4; }
  local mnt
  mnt=$(bah mount "$(run_container)")
  CAPSULE_IMAGE_SIZE=$(du -sb "$mnt" | cut -f1)
  export CAPSULE_IMAGE_SIZE
  bah inspect --type image "$IMAGE" | node -e '
    let text = ""; process.stdin.on("data", (c) => (text += c)).on("end", () => {
      const i = JSON.parse(text), c = i.OCIv1.config ?? {};
      console.log(JSON.stringify({ id: i.FromImageID, user: c.User, entrypoint: c.Entrypoint, cmd: c.Cmd,
        env: c.Env, labels: c.Labels, sizeBytes: Number(process.env.CAPSULE_IMAGE_SIZE) }));
    });'
}

# The container every run uses for this image id: its root is mounted read-only for each command, so nothing a
# command does can change it and one copy of the (vfs, full-copy) layers serves every run.
run_container() {
  local id name
  id=$(bah inspect --type image --format '{{.FromImageID}}' "$IMAGE")
  name="capsule-run-${id:0:12}"
  mkdir -p /run/capsule-image
  exec 9>"/run/capsule-image/$name.lock"
  flock 9
  if ! bah inspect --type container "$name" >/dev/null 2>&1; then
    bah containers --format '{{.ContainerName}}' | grep '^capsule-run-' | xargs -r buildah "${STORAGE[@]}" rm >/dev/null
    bah from --pull=never --name "$name" "$IMAGE" >/dev/null
  fi
  flock -u 9
  echo "$name"
}

# Each call's mounts live in a private mount namespace and go with it.
run_in_image() {
  local pass=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --env) pass+=("$2"); shift 2 ;;
      --) shift; break ;;
      *) echo "image.sh run: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [[ $# -gt 0 ]] || { echo "image.sh run: no command after --" >&2; exit 2; }
  bah inspect --type image "$IMAGE" >/dev/null 2>&1 || { echo "image $IMAGE is not built" >&2; exit 4; }
  local mnt user
  mnt=$(bah mount "$(run_container)")
  user=$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")
  local image_env=()
  mapfile -t image_env < <(bah inspect --type image --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
  # The command's environment is the image's plus the named variables; values travel in the environment, never
  # on a command line, so secrets stay out of `ps`.
  local keep=" ${pass[*]} "
  while read -r name; do
    [[ "$keep" == *" $name "* ]] || unset "$name" 2>/dev/null || true
  done < <(compgen -e)
  local kv
  for kv in "${image_env[@]}"; do export "${kv?}"; done
  export CAPSULE_IMAGE_ROOT="$mnt" CAPSULE_IMAGE_USER="${user:-0:0}"
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    r=$CAPSULE_IMAGE_ROOT u=$CAPSULE_IMAGE_USER
    unset CAPSULE_IMAGE_ROOT CAPSULE_IMAGE_USER
    mount --bind "$r" "$r" && mount -o remount,bind,ro "$r"
    mount -t tmpfs -o mode=1777,size=1g tmpfs "$r/tmp"
    mount --rbind /dev "$r/dev"
    mount -t proc proc "$r/proc"
    mount --bind /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
    exec chroot --userspec="$u" "$r" /usr/bin/env --chdir=/tmp "$@"
  ' image-run "$@"
}

case "${1:-}" in
  check)
    reason=$(why_not)
    if [[ -n "$reason" ]]; then echo "$reason"; exit 3; fi
    ;;
  build)
    reason=$(why_not)
    if [[ -n "$reason" ]]; then echo "image build skipped: $reason" >&2; exit 3; fi
    install_tools
    mkdir -p /run/capsule-image
    exec 8>/run/capsule-image/build.lock
    flock 8
    t0=$(date +%s)
    build_base
    t1=$(date +%s)
    build_image
    t2=$(date +%s)
    say "timings: base $((t1 - t0))s, image $((t2 - t1))s"
    ;;
  inspect) inspect_image ;;
  run) shift; run_in_image "$@" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

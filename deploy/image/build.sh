#!/usr/bin/env bash
# Build the novarank image without a Docker engine: Debian's buildah (vfs storage, chroot
# isolation) on a base CI can make itself — a Debian bookworm rootfs from debootstrap —
# unless BASE names one you already have (e.g. docker.io/library/python:3.11-slim-bookworm).
#   deploy/image/build.sh [TAG]          (default localhost/novarank:dev)
# Needs: buildah, debootstrap (for the default base), the repo's .venv (for pip wheel).
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-localhost/novarank:dev}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "${BASE:-}" ]; then
  BASE=localhost/novarank-base:bookworm
  if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    echo "== base: debootstrap bookworm (python3.11)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$WORK/rootfs" http://deb.debian.org/debian >/dev/null
    ctr=$(buildah from scratch)
    cp -a "$WORK/rootfs/." "$(buildah mount "$ctr")/"
    buildah umount "$ctr" >/dev/null
    buildah commit -q "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
  fi
fi
echo "== wheels: the versions in constraints.txt"
mkdir "$WORK/ctx"
.venv/bin/pip wheel -q -c constraints.txt -w "$WORK/ctx/wheels" .
# redis needs async-timeout below Python 3.11.3 (Debian bookworm has 3.11.2); pinned too
.venv/bin/pip download -q --no-deps -c constraints.txt -d "$WORK/ctx/wheels" async-timeout
cp deploy/image/Containerfile "$WORK/ctx/"
echo "== image $TAG on $BASE"
buildah bud -q --format docker --build-arg BASE="$BASE" -t "$TAG" "$WORK/ctx" >/dev/null
echo "$TAG"

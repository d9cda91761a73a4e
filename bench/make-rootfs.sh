#!/bin/bash
# Builds two realistic root filesystem images for benchmarks: v1 (Debian bookworm minbase) and
# v2 (v1 plus a few packages and a changed file), each a 640 MiB ext4 image.
# Usage: bench/make-rootfs.sh OUTDIR        (root, debootstrap, network access to Debian)
set -euo pipefail
out=${1:?usage: make-rootfs.sh OUTDIR}
mkdir -p "$out"
cd "$out"
if [[ ! -d tree-v1 ]]; then
  debootstrap --variant=minbase bookworm tree-v1 >debootstrap.log 2>&1
fi
if [[ ! -d tree-v2 ]]; then
  cp -a tree-v1 tree-v2
  mount --bind /proc tree-v2/proc 2>/dev/null || true
  chroot tree-v2 /bin/sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl ca-certificates libubootenv-tool >/dev/null 2>&1' \
    || echo "warning: installing packages in tree-v2 failed" >&2
  umount tree-v2/proc 2>/dev/null || true
  echo "product-version=2" > tree-v2/etc/product-release
  chroot tree-v2 /bin/sh -c 'apt-get clean' || true
fi
for v in v1 v2; do
  [[ -f rootfs-$v.ext4 ]] && continue
  mke2fs -q -t ext4 -d tree-$v -L rootfs -U 11111111-2222-3333-4444-555555555555 \
    -E root_owner=0:0 rootfs-$v.ext4 640M
done
ls -la rootfs-*.ext4

#!/bin/bash
# Benchmarks a delta install on the device: a real Debian root filesystem (v1, 640 MiB) runs
# from partition A (a loop device mounted read-only as / in a private mount namespace, entered
# with chroot), and `mender-update install` rebuilds v2 on partition B from A and a delta
# artifact made by `mender-artifact delta`; next to it, the full v2 artifact installed the same
# way. Prints artifact sizes, install time and peak RSS, and checks B holds v2. Not a test.
# Usage: bench/delta-install.sh [V1.ext4 V2.ext4]   (as root; e2fsprogs, grub-common)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
v1=${1:-} v2=${2:-}
if [[ -z $v1 ]]; then
  bench/make-rootfs.sh target/bench-rootfs >/dev/null
  v1=target/bench-rootfs/rootfs-v1.ext4 v2=target/bench-rootfs/rootfs-v2.ext4
fi
v1=$(readlink -f "$v1") v2=$(readlink -f "$v2")
cargo build --release -j2 --bin mender-update --bin mender-artifact >/dev/null 2>&1
ma=$root/target/release/mender-artifact
work=$(mktemp -d "$root/target/bench-delta-XXXXXX")
loops=()
cleanup() {
  umount "$work/m" 2>/dev/null || true
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/m" "$work/mnt" "$work/bin" "$work/data/mender"
# Each image gets the mount points and the boot-environment location the device uses; the
# artifacts are made from the images as they will be on the partitions.
for v in v1 v2; do
  src=$v1; [[ $v == v2 ]] && src=$v2
  cp --sparse=always "$src" "$work/$v.ext4"
  mount -o loop "$work/$v.ext4" "$work/m"
  mkdir -p "$work/m/data" "$work/m/opt/mender" "$work/m/var/lib/mender"
  echo "ENV_DIR=/data/grubenv" > "$work/m/etc/mender_grubenv.config"
  umount "$work/m"
done
size=$(stat -c %s "$work/v2.ext4")
"$ma" write rootfs-image -f "$work/v1.ext4" -t bench -n bench-v1 -o "$work/v1.mender" --no-progress
"$ma" write rootfs-image -f "$work/v2.ext4" -t bench -n bench-v2 -o "$work/data/v2.mender" --no-progress
/usr/bin/time -f "%e %M" -o "$work/gen" \
  "$ma" delta "$work/v1.mender" "$work/data/v2.mender" -o "$work/data/delta.mender" >/dev/null
cp "$root/target/release/mender-update" "$work/bin/"
truncate -s $((size + (16 << 20))) "$work/a.img" "$work/b.img"
dd if="$work/v1.ext4" of="$work/a.img" bs=4M conv=notrunc,sparse status=none
A=$(losetup -f --show "$work/a.img"); loops+=("$A")
B=$(losetup -f --show "$work/b.img"); loops+=("$B")
NA=${A##*[!0-9]}
printf '{"RootfsPartA": "%s", "RootfsPartB": "%s"}\n' "$A" "$B" > "$work/data/mender.conf"
echo "device_type=bench" > "$work/data/mender/device_type"
for i in 1 2; do
  d=$work/data/grubenv/mender_grubenv$i; mkdir -p "$d"
  grub-editenv "$d/env" create
  grub-editenv "$d/env" set mender_boot_part="$NA" upgrade_available=0 bootcount=0
  grub-editenv "$d/lock" create; grub-editenv "$d/lock" set editing=0
done
cp -a "$work/data/grubenv" "$work/grubenv.saved"
v1sum=$(sha256sum "$work/v1.ext4" | cut -d' ' -f1)
"$ma" write bootstrap-artifact -n bench-v1 -t bench -p "rootfs-image.checksum:$v1sum" \
  -o "$work/bootstrap.mender" >/dev/null

reset() {
  rm -rf "$work/data/grubenv" "$work/data/mender/mender-store"* "$work/data/mender/modules"
  cp -a "$work/grubenv.saved" "$work/data/grubenv"
  cp "$work/bootstrap.mender" "$work/data/mender/"
  dd if=/dev/zero of="$B" bs=1M count=16 status=none
  sync; echo 3 > /proc/sys/vm/drop_caches
}
install() { # artifact on /data: prints "seconds peak-KiB"
  MNT=$work/mnt DATA=$work/data BIN=$work/bin DEV=$A /usr/bin/time -f "%e %M" -o "$work/time" \
    unshare -m --propagation private sh -ec '
    mount -o ro,noload "$DEV" "$MNT"; mount --rbind /dev "$MNT/dev"; mount -t proc proc "$MNT/proc"
    mount --bind "$DATA" "$MNT/data"; mount --bind "$DATA/mender" "$MNT/var/lib/mender"
    mount --bind "$BIN" "$MNT/opt/mender"
    exec chroot "$MNT" /opt/mender/mender-update -c /data/mender.conf install "$1" >"$DATA/out" 2>&1' \
    sh "$1" || { echo "install $1 failed" >&2; cat "$work/data/out" >&2; exit 1; }
  cmp -n "$size" "$work/v2.ext4" "$B" >/dev/null || { echo "partition B does not hold v2" >&2; exit 1; }
  cat "$work/time"
}
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

reset; read -r ds dk < <(install /data/delta.mender)
reset; read -r fs fk < <(install /data/v2.mender)
read -r gs gk < "$work/gen"
echo "v1 -> v2, $((size >> 20)) MiB images"
echo
echo "| install of v2 on the device | artifact | time | peak RSS |"
echo "|---|---|---|---|"
printf '| delta (mender-artifact delta: %.1f s, %.0f MiB peak) | %s | %.2f s | %.1f MiB |\n' \
  "$gs" "$(awk -v k="$gk" 'BEGIN { print k / 1024 }')" "$(mib "$work/data/delta.mender")" "$ds" \
  "$(awk -v k="$dk" 'BEGIN { print k / 1024 }')"
printf '| full image, gzip | %s | %.2f s | %.1f MiB |\n' "$(mib "$work/data/v2.mender")" "$fs" \
  "$(awk -v k="$fk" 'BEGIN { print k / 1024 }')"

#!/bin/bash
# Benchmarks a rootfs-image A/B install: ours (`mender-update install`) against upstream's Go
# client 3.4 (`mender install`, rootfs-image built in) on the same upstream-written artifact
# (a 640 MiB Debian root filesystem, gzip), on the same sandboxed device: partition A is a loop
# device mounted as / in a private mount namespace and entered with chroot, partition B a loop
# device over a file, the boot environment U-Boot's through fw_setenv. Prints time,
# throughput and peak RSS; then ours again with read-compare-write over the same image, and
# ours onto a plain file as partition B. Not a test.
# Usage: bench/rootfs.sh [IMAGE.ext4]     (as root; needs mender-client, mender-artifact,
#                                          libubootenv-tool, e2fsprogs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for t in mender mender-artifact fw_setenv mkfs.ext4 losetup unshare; do
  command -v $t >/dev/null || { echo "missing $t (see scripts/test for the packages)" >&2; exit 1; }
done
image=${1:-}
if [[ -z $image ]]; then
  bench/make-rootfs.sh target/bench-rootfs >/dev/null
  image=target/bench-rootfs/rootfs-v1.ext4
fi
image=$(readlink -f "$image")
cargo build --release -j2 --bin mender-update >/dev/null 2>&1
work=$(mktemp -d "$root/target/bench-rootfs-XXXXXX")
loops=()
cleanup() { for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
size=$(stat -c %s "$image")
truncate -s 64M "$work/a.img"
truncate -s $((size + (16 << 20))) "$work/b.img"
A=$(losetup -f --show "$work/a.img"); loops+=("$A")
B=$(losetup -f --show "$work/b.img"); loops+=("$B")
NA=${A##*[!0-9]}
mkdir -p "$work/tree" "$work/data/mender" "$work/mnt" "$work/bin"
(
  cd "$work/tree"
  mkdir -p usr proc dev data tmp opt/mender var/lib/mender var/lock etc/mender
  ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
  printf '/data/uboot.env1 0x0000 0x4000\n/data/uboot.env2 0x0000 0x4000\n' > etc/fw_env.config
  echo "artifact_name=bench-0" > etc/mender/artifact_info
)
mkfs.ext4 -q -F -d "$work/tree" "$A"
echo "device_type=bench" > "$work/data/mender/device_type"
cfg=$work/fw_env.config
for i in 1 2; do
  head -c 16384 /dev/zero | tr '\0' '\377' > "$work/data/uboot.env$i"
  echo "$work/data/uboot.env$i 0x0000 0x4000" >> "$cfg"
done
printf 'bootcount=0\nbootlimit=1\nupgrade_available=0\nmender_boot_part=%s\nmender_boot_part_hex=%x\n' \
  "$NA" "$NA" > "$work/defaults"
fw_setenv -c "$cfg" -f "$work/defaults" bootcount 0 2>/dev/null
cp "$work/data/uboot.env1" "$work/env1.saved"; cp "$work/data/uboot.env2" "$work/env2.saved"
cp target/release/mender-update "$work/bin/"
mender-artifact write rootfs-image -f "$image" -t bench -n bench-1 -o "$work/data/bench.mender" >/dev/null 2>&1
art_size=$(stat -c %s "$work/data/bench.mender")

conf() { # partition B, read-compare-write
  printf '{"RootfsPartA": "%s", "RootfsPartB": "%s", "RootfsReadCompareWrite": %s}\n' "$A" "$1" "$2" \
    > "$work/data/mender.conf"
}
reset() {
  cp "$work/env1.saved" "$work/data/uboot.env1"; cp "$work/env2.saved" "$work/data/uboot.env2"
  rm -rf "$work/data/mender/mender-store"* "$work/data/mender/modules"
  sync; echo 3 > /proc/sys/vm/drop_caches
}
device() { # command... : runs on the device, prints "seconds peak-KiB"
  MNT=$work/mnt DATA=$work/data BIN=$work/bin DEV=$A unshare -m --propagation private sh -ec '
    mount "$DEV" "$MNT"; mount --bind /usr "$MNT/usr"; mount --rbind /dev "$MNT/dev"
    mount -t proc proc "$MNT/proc"; mount --bind "$DATA" "$MNT/data"
    mount --bind "$DATA/mender" "$MNT/var/lib/mender"; mount --bind "$BIN" "$MNT/opt/mender"
    exec chroot "$MNT" /usr/bin/time -f "%e %M" -o /data/time "$@" >"$DATA/out" 2>&1' sh "$@" \
    || { echo "failed: $*" >&2; cat "$work/data/out" >&2; exit 1; }
  cat "$work/data/time"
}
check() { # partition: the image must be on it
  cmp -n "$size" "$image" "$1" >/dev/null || { echo "partition $1 does not hold the image" >&2; exit 1; }
}
row() { # label seconds kib
  awk -v l="$1" -v s="$2" -v k="$3" -v n="$size" \
    'BEGIN { printf "| %s | %.2f s | %.0f MiB/s | %.0f MiB |\n", l, s, n / 1048576 / s, k / 1024 }'
}

echo "image $(basename "$image"): $((size >> 20)) MiB, artifact $((art_size >> 20)) MiB (gzip)"
echo
echo "| install rootfs-image | time | throughput | peak RSS |"
echo "|---|---|---|---|"
reset; conf "$B" false
read -r gs gk < <(device mender --config /data/mender.conf install /data/bench.mender)
check "$B"; row "upstream Go client 3.4, loop partition" "$gs" "$gk"
dd if=/dev/zero of="$B" bs=1M count=64 status=none
reset; conf "$B" false
read -r os ok < <(device /opt/mender/mender-update -c /data/mender.conf install /data/bench.mender)
check "$B"; row "ours, loop partition" "$os" "$ok"
reset; conf "$B" true
read -r rs rk < <(device /opt/mender/mender-update -c /data/mender.conf install /data/bench.mender)
check "$B"; row "ours, read-compare-write, image already there" "$rs" "$rk"
reset; conf /data/part99 false; : > "$work/data/part99"
read -r fs fk < <(device /opt/mender/mender-update -c /data/mender.conf install /data/bench.mender)
check "$work/data/part99"; row "ours, plain file as partition" "$fs" "$fk"
echo
awk -v g="$gs" -v o="$os" -v gk="$gk" -v ok="$ok" \
  'BEGIN { printf "ours vs upstream on the loop partition: %.2fx faster, %.2fx the peak RSS\n", g / o, ok / gk }'

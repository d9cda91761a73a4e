#!/bin/bash
# Benchmarks our binary delta against xdelta3 (-9 -B <source size>) and zstd --patch-from
# (-19 --long=31) on the same pair of root filesystem images, in one run: patch size,
# generation and apply time and peak RSS, with ratios to ours. Every applied image is compared
# with the target. Not a test: times depend on the machine.
# Usage: bench/delta.sh [OLD.ext4 NEW.ext4]   (default: builds bench images under target/bench-rootfs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for c in xdelta3 zstd; do
  command -v $c >/dev/null || { echo "install $c first (apt-get install xdelta3 zstd)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "install GNU time (package: time) first" >&2; exit 1; }
old=${1:-}
new=${2:-}
if [[ -z $old || -z $new ]]; then
  bench/make-rootfs.sh target/bench-rootfs >/dev/null
  old=target/bench-rootfs/rootfs-v1.ext4
  new=target/bench-rootfs/rootfs-v2.ext4
fi
old=$(realpath "$old")
new=$(realpath "$new")
target_dir=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -j2 --bin mender-artifact >/dev/null 2>&1
ours=$target_dir/release/mender-artifact
mkdir -p "$root/target"
work=$(mktemp -d "$root/target/bench-delta-XXXXXX")
trap 'rm -rf "$work"' EXIT
size=$(stat -c %s "$old")

# measure CMD...: runs once, prints "seconds peak_kib"
measure() {
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  cat "$work/t"
}
check() { cmp -s "$1" "$new" || { echo "$2: applied image differs from the target" >&2; exit 1; }; rm -f "$1"; }

declare -A psize gen_s gen_k app_s app_k
read -r gen_s[ours] gen_k[ours] < <(measure "$ours" delta --raw "$old" "$new" -o "$work/ours.patch")
read -r app_s[ours] app_k[ours] < <(measure "$ours" delta --apply "$old" "$work/ours.patch" -o "$work/out")
check "$work/out" ours
psize[ours]=$(stat -c %s "$work/ours.patch")

read -r gen_s[xdelta3] gen_k[xdelta3] < <(measure xdelta3 -e -9 -f -B "$size" -s "$old" "$new" "$work/x.vcdiff")
read -r app_s[xdelta3] app_k[xdelta3] < <(measure xdelta3 -d -f -B "$size" -s "$old" "$work/x.vcdiff" "$work/out")
check "$work/out" xdelta3
psize[xdelta3]=$(stat -c %s "$work/x.vcdiff")

read -r gen_s[zstd] gen_k[zstd] < <(measure zstd -q -f -19 --long=31 --patch-from="$old" "$new" -o "$work/z.zst")
read -r app_s[zstd] app_k[zstd] < <(measure zstd -q -f -d --long=31 --patch-from="$old" "$work/z.zst" -o "$work/out")
check "$work/out" zstd
psize[zstd]=$(stat -c %s "$work/z.zst")

echo "source $(basename "$old") $size bytes, target $(basename "$new") $(stat -c %s "$new") bytes"
echo
echo "| tool | patch bytes | ours / tool | generate s | peak RSS MiB | apply s | apply peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for t in ours xdelta3 zstd; do
  printf "| %s | %s | %s | %s | %s | %s | %s |\n" "$t" "${psize[$t]}" \
    "$(awk "BEGIN{printf \"%.3f\", ${psize[ours]}/${psize[$t]}}")" \
    "${gen_s[$t]}" "$(awk "BEGIN{printf \"%.0f\", ${gen_k[$t]}/1024}")" \
    "${app_s[$t]}" "$(awk "BEGIN{printf \"%.1f\", ${app_k[$t]}/1024}")"
done

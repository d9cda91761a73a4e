#!/bin/bash
# Benchmarks our mender-artifact against upstream's (Debian's 3.9.0) on the same realistic
# root filesystem image, in one run: write time, size and peak RSS per compression, and
# read/validate time and peak RSS, with ratios. Not a test: numbers depend on the machine.
# Usage: bench/artifact.sh [IMAGE]     (default: builds bench images under target/bench-rootfs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v mender-artifact >/dev/null || { echo "install Debian's mender-artifact first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "install GNU time (package: time) first" >&2; exit 1; }
img=${1:-}
if [[ -z $img ]]; then
  bench/make-rootfs.sh target/bench-rootfs >/dev/null
  img=target/bench-rootfs/rootfs-v1.ext4
fi
cargo build --release -j2 --bin mender-artifact >/dev/null 2>&1
ours=$root/target/release/mender-artifact
up=$(command -v mender-artifact)
work=$(mktemp -d "$root/target/bench-XXXXXX")
trap 'rm -rf "$work"' EXIT

# measure OUTFILE CMD...: prints "seconds peak_kib" (best time of $REPS runs, its RSS)
measure() {
  local best="" rss=""
  for _ in $(seq "${REPS:-3}"); do
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
    read -r s k < "$work/t"
    if [[ -z $best ]] || awk "BEGIN{exit !($s < $best)}"; then best=$s; rss=$k; fi
  done
  echo "$best $rss"
}
ratio() { awk "BEGIN{ if ($2 > 0) printf \"%.2f\", $1 / $2; else print \"-\" }"; }
mib() { awk "BEGIN{ printf \"%.1f\", $1 / 1048576 }"; }

size=$(stat -c %s "$img")
echo "image: $img ($(mib "$size") MiB), $(nproc) cores"
printf "\n%-34s %9s %9s %10s %9s %9s\n" "write" "time s" "size MiB" "peak MiB" "speedup" "size x"
w() { # label tool compression reps
  local out="$work/$1.mender"
  read -r s k < <(REPS=$4 measure "$2" write rootfs-image -f "$img" -t bench -n bench-1 \
    --compression "$3" --no-progress -o "$out")
  echo "$s $k $(stat -c %s "$out")"
}
read -r ug_s ug_k ug_b < <(w up-gzip "$up" gzip 3)
read -r og_s og_k og_b < <(w ours-gzip "$ours" gzip 3)
read -r oz_s oz_k oz_b < <(w ours-zstd "$ours" zstd_better 3)
read -r ux_s ux_k ux_b < <(w up-lzma "$up" lzma 1)
read -r ox_s ox_k ox_b < <(w ours-lzma "$ours" lzma 1)
row() { printf "%-34s %9s %9s %10s %9s %9s\n" "$1" "$2" "$(mib "$3")" "$(awk "BEGIN{printf \"%.0f\", $4/1024}")" "$5" "$6"; }
row "upstream gzip" "$ug_s" "$ug_b" "$ug_k" "1.00" "1.00"
row "ours gzip" "$og_s" "$og_b" "$og_k" "$(ratio "$ug_s" "$og_s")" "$(ratio "$og_b" "$ug_b")"
row "ours zstd_better (vs upstream gzip)" "$oz_s" "$oz_b" "$oz_k" "$(ratio "$ug_s" "$oz_s")" "$(ratio "$oz_b" "$ug_b")"
row "upstream lzma" "$ux_s" "$ux_b" "$ux_k" "1.00" "1.00"
row "ours lzma" "$ox_s" "$ox_b" "$ox_k" "$(ratio "$ux_s" "$ox_s")" "$(ratio "$ox_b" "$ux_b")"
echo "peak memory, ours/upstream: gzip $(ratio "$og_k" "$ug_k"), lzma $(ratio "$ox_k" "$ux_k")"

printf "\n%-34s %9s %10s %9s\n" "read / validate (same artifact)" "time s" "peak MiB" "speedup"
for cmd in "read --no-progress" validate; do
  for art in up-gzip up-lzma; do
    read -r us uk < <(measure "$up" $cmd "$work/$art.mender")
    read -r os ok < <(measure "$ours" $cmd "$work/$art.mender")
    printf "%-34s %9s %10s %9s\n" "upstream ${cmd%% *} $art" "$us" "$(awk "BEGIN{printf \"%.0f\", $uk/1024}")" "1.00"
    printf "%-34s %9s %10s %9s\n" "ours ${cmd%% *} $art" "$os" "$(awk "BEGIN{printf \"%.0f\", $ok/1024}")" "$(ratio "$us" "$os")"
  done
done

# Our artifacts are decompressed on every core; the floor for gzip and zstd is SHA-256 of
# the payload, which is one chain: sha256sum of the image on the same machine (coreutils'
# own SHA-256), and OpenSSL's, which uses the CPU's SHA instructions where there are some.
read -r sha_s sha_k < <(measure sha256sum "$img")
read -r ossl_s ossl_k < <(measure openssl dgst -sha256 "$img")
printf "\n%-34s %9s %10s %9s %12s\n" "read / validate (our artifacts)" "time s" "peak MiB" "speedup" "x sha256sum"
printf "%-34s %9s %10s %9s %12s\n" "sha256sum of the image" "$sha_s" "$(awk "BEGIN{printf \"%.0f\", $sha_k/1024}")" "" "1.00"
printf "%-34s %9s %10s %9s %12s\n" "openssl dgst -sha256 of the image" "$ossl_s" "$(awk "BEGIN{printf \"%.0f\", $ossl_k/1024}")" "" "$(ratio "$ossl_s" "$sha_s")"
for cmd in "read --no-progress" validate; do
  read -r us uk < <(measure "$up" $cmd "$work/ours-gzip.mender")
  read -r ul ulk < <(measure "$up" $cmd "$work/up-lzma.mender")
  printf "%-34s %9s %10s %9s\n" "upstream ${cmd%% *} ours-gzip" "$us" "$(awk "BEGIN{printf \"%.0f\", $uk/1024}")" "1.00"
  for art in ours-gzip ours-zstd; do
    read -r os ok < <(measure "$ours" $cmd "$work/$art.mender")
    printf "%-34s %9s %10s %9s %12s\n" "ours ${cmd%% *} $art" "$os" "$(awk "BEGIN{printf \"%.0f\", $ok/1024}")" "$(ratio "$us" "$os")" "$(ratio "$os" "$sha_s")"
  done
  read -r ol olk < <(measure "$ours" $cmd "$work/ours-lzma.mender")
  printf "%-34s %9s %10s %9s\n" "upstream ${cmd%% *} up-lzma (its own)" "$ul" "$(awk "BEGIN{printf \"%.0f\", $ulk/1024}")" "1.00"
  printf "%-34s %9s %10s %9s\n" "ours ${cmd%% *} ours-lzma" "$ol" "$(awk "BEGIN{printf \"%.0f\", $olk/1024}")" "$(ratio "$ul" "$ol")"
done

# Flat memory on a large image: a 4 GiB sparse image with the real image inside it.
big="$work/big.img"
truncate -s 4G "$big"
dd if="$img" of="$big" bs=1M conv=notrunc status=none
printf "\n%-34s %9s %10s\n" "4 GiB image, ours" "time s" "peak MiB"
for c in gzip zstd_better none; do
  read -r s k < <(REPS=1 measure "$ours" write rootfs-image -f "$big" -t bench -n big --compression "$c" --no-progress -o "$work/big-$c.mender")
  printf "%-34s %9s %10s\n" "write $c" "$s" "$(awk "BEGIN{printf \"%.0f\", $k/1024}")"
  read -r s k < <(REPS=1 measure "$ours" validate "$work/big-$c.mender")
  printf "%-34s %9s %10s\n" "validate $c" "$s" "$(awk "BEGIN{printf \"%.0f\", $k/1024}")"
  rm -f "$work/big-$c.mender"
done

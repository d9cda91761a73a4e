#!/bin/bash
# Benchmarks `mender-update install` against upstream's Go client 3.4 (`mender install`,
# Debian's mender-client) on the same artifacts, from a file and from a loopback HTTP URL:
# time, throughput and peak RSS. Two artifacts of the same payload: upstream's (one gzip
# member, decompressed on one core by both) and ours (chunked gzip, which ours decompresses
# on every core). The payload goes to an update module that streams it to
# /dev/null, so the numbers are the installers', not the disk's. Not a test.
# Usage: bench/update.sh [PAYLOAD_FILE]   (root: the Go client runs in a mount namespace)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v mender >/dev/null || { echo "install Debian's mender-client first" >&2; exit 1; }
command -v mender-artifact >/dev/null || { echo "install Debian's mender-artifact first" >&2; exit 1; }
payload=${1:-}
if [[ -z $payload ]]; then
  bench/make-rootfs.sh target/bench-rootfs >/dev/null
  payload=target/bench-rootfs/rootfs-v1.ext4
fi
payload=$(readlink -f "$payload")
cargo build --release -j2 --bin mender-update --bin mender-artifact >/dev/null 2>&1
ours=$root/target/release/mender-update
work=$(mktemp -d "$root/target/bench-update-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work"/{conf,data/modules/v3,store,etc,art}
echo "device_type=bench" > "$work/store/device_type"
echo "artifact_name=base" > "$work/etc/artifact_info"
echo '{}' > "$work/conf/mender.conf"
# The Go client 3.4 has the modules dir built in (/usr/share/mender/modules/v3): the sink
# module goes there too, under a name no package uses.
sink=/usr/share/mender/modules/v3/bench-sink
cat > "$sink" <<'SH'
#!/bin/sh
case "$1" in
  Download)
    while true; do
      f=$(cat stream-next) || exit 1
      [ -z "$f" ] && break
      cat "$f" > /dev/null || exit 1
    done ;;
  SupportsRollback) echo Yes ;;
esac
exit 0
SH
chmod 755 "$sink"
cp "$sink" "$work/data/modules/v3/bench-sink"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work" "$sink"' EXIT
cp "$payload" "$work/art/payload.img"
mender-artifact write module-image -T bench-sink -t bench -n bench-1 -f "$work/art/payload.img" \
  -o "$work/upstream.mender" >/dev/null
"$root/target/release/mender-artifact" write module-image -T bench-sink -t bench -n bench-1 \
  -f "$work/art/payload.img" --no-progress -o "$work/ours.mender" >/dev/null
( cd "$work" && exec python3 -m http.server --bind 127.0.0.1 18080 >/dev/null 2>&1 ) &
sleep 1

run_ours() { # source
  rm -f "$work/store/standalone-state.json"
  /usr/bin/time -f "%e %M" -o "$work/t" env MENDER_CONF_DIR="$work/conf" MENDER_DATA_DIR="$work/data" \
    MENDER_DATASTORE_DIR="$work/store" "$ours" install "$1" >/dev/null 2>&1
  env MENDER_CONF_DIR="$work/conf" MENDER_DATA_DIR="$work/data" MENDER_DATASTORE_DIR="$work/store" \
    "$ours" rollback >/dev/null 2>&1 || true
  cat "$work/t"
}
run_go() { # source
  rm -rf "$work/godata"; mkdir -p "$work/godata"; cp "$work/store/device_type" "$work/godata/"
  unshare -m sh -c "mount --bind '$work/etc' /etc/mender && /usr/bin/time -f '%e %M' -o '$work/t' \
    mender --no-syslog --config '$work/conf/mender.conf' --data '$work/godata' install '$1' >/dev/null 2>&1; \
    mender --no-syslog --config '$work/conf/mender.conf' --data '$work/godata' rollback >/dev/null 2>&1" || true
  cat "$work/t"
}
psize=$(stat -c %s "$payload")
mbs() { awk "BEGIN{ printf \"%.0f\", $psize / 1048576 / $1 }"; }
printf "%-36s %8s %8s %10s %8s\n" "install" "time s" "MiB/s*" "peak MiB" "speedup"
for art in upstream ours; do
  echo "$art-written artifact: $(awk "BEGIN{printf \"%.1f\", $(stat -c %s "$work/$art.mender")/1048576}") MiB (gzip), payload $(basename "$payload")"
  for src in file url; do
    s=$([[ $src = file ]] && echo "$work/$art.mender" || echo "http://127.0.0.1:18080/$art.mender")
    read -r gt gk < <(run_go "$s")
    read -r ot ok < <(run_ours "$s")
    printf "%-36s %8s %8s %10s %8s\n" "  upstream 3.4 from $src" "$gt" "$(mbs "$gt")" "$((gk / 1024))" "1.00"
    printf "%-36s %8s %8s %10s %8s\n" "  ours from $src" "$ot" "$(mbs "$ot")" "$((ok / 1024))" \
      "$(awk "BEGIN{printf \"%.2f\", $gt / $ot}")"
  done
done
echo "stripped mender-update: $(stat -c %s "$ours") bytes"
echo "* payload MiB per second (uncompressed)"

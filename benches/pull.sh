#!/usr/bin/env bash
# Pull + unpack speed of benchbox's image module against the usual tools, in the same run:
# a ~100 MB, 5-layer image served by a local docker-registry is pulled and unpacked
#   (a) by benchbox (image::pull: parallel streamed downloads, verified, unpacked per layer), and
#   (b) by `skopeo copy docker://... oci:LAYOUT` followed by `umoci unpack` (the peer),
# each into a fresh store/layout, alternating, ROUNDS times; medians and the ratio a/b are
# printed (target: <= 1.0). Then the cost of `ensure` on an already cached image (what starting a
# cell costs) for the big image and for a tiny one: it must not grow with the image's size.
#
#   sudo benches/pull.sh [ROUNDS]          (default 3; needs docker-registry skopeo umoci busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
for tool in docker-registry skopeo umoci busybox; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install docker-registry skopeo umoci busybox-static" >&2; exit 2; }
done
work="$(mktemp -d /var/tmp/benchbox-pull.XXXXXX)"
reg_pid=""
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The measuring driver, built once (compilation is not measured).
cargo test --release --quiet --test image --no-run 2>/dev/null
driver="$(ls -t target/release/deps/image-* | grep -v '\.d$' | head -1)"

# A local registry on a free port (port 0: the registry logs the one it bound).
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: info}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: "127.0.0.1:0"}
YML
docker-registry serve "$work/registry.yml" >"$work/access.log" 2>"$work/registry.log" &
reg_pid=$!
for _ in $(seq 100); do
    addr="$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/registry.log" | head -1 | cut -d' ' -f3 || true)"
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$work/registry.log" >&2; exit 1; }

# The image: busybox, then four ~25 MB layers, each half incompressible (10 files of 1.25 MB)
# and half many small text files (2000 of ~6 KB), like real images' mix of binaries and sources.
umoci init --layout "$work/src" >/dev/null
umoci new --image "$work/src:big" >/dev/null
mkdir -p "$work/l0/bin" && cp /bin/busybox "$work/l0/bin/busybox" && ln -s busybox "$work/l0/bin/sh"
umoci insert --image "$work/src:big" "$work/l0" / >/dev/null
for i in 1 2 3 4; do
    d="$work/l$i/data$i"
    mkdir -p "$d/bin" "$d/src"
    for f in $(seq 10); do head -c 1310720 /dev/urandom >"$d/bin/blob$f"; done
    for f in $(seq 2000); do seq "$f" $((f + 1200)) >"$d/src/file$f.txt"; done
    umoci insert --image "$work/src:big" "$work/l$i" / >/dev/null
done
umoci new --image "$work/src:small" >/dev/null
umoci insert --image "$work/src:small" "$work/l0" / >/dev/null
for tag in big small; do
    skopeo copy -q --dest-tls-verify=false "oci:$work/src:$tag" "docker://$addr/bench/$tag:1"
done
size_mb=$(du -sm "$work/src" | cut -f1)

# Runs the driver; prints its BENCH line, or its whole output when it failed.
drive() {
    if ! env "$@" "$driver" --ignored --exact bench_driver --nocapture >"$work/driver.log" 2>&1; then
        cat "$work/driver.log" >&2
        exit 1
    fi
    grep '^BENCH' "$work/driver.log"
}
now() { date +%s.%N; }
bb=() peer=()
for r in $(seq "$rounds"); do
    rm -rf "$work/store" "$work/layout" "$work/bundle"
    out="$(drive BENCH_MODE=pull BENCH_REF="$addr/bench/big:1" BENCH_STORE="$work/store")"
    bb+=("$(sed 's/.*pull_seconds=\([0-9.]*\).*/\1/' <<<"$out")")
    t0=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$addr/bench/big:1" "oci:$work/layout:big"
    umoci unpack --image "$work/layout:big" "$work/bundle" >/dev/null
    t1=$(now)
    peer+=("$(printf '%.3f' "$(echo "$t1 - $t0" | bc)")")
    echo "round $r: benchbox ${bb[-1]} s, skopeo+umoci ${peer[-1]} s" >&2
done
unpacked_mb=$(du -sm "$work/store/layers" | cut -f1)
ensure_big="$(drive BENCH_MODE=ensure BENCH_N=500 BENCH_REF="$addr/bench/big:1" BENCH_STORE="$work/store" | cut -d= -f2)"
drive BENCH_MODE=pull BENCH_REF="$addr/bench/small:1" BENCH_STORE="$work/store" >/dev/null
ensure_small="$(drive BENCH_MODE=ensure BENCH_N=500 BENCH_REF="$addr/bench/small:1" BENCH_STORE="$work/store" | cut -d= -f2)"

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_bb=$(median "${bb[@]}")
m_peer=$(median "${peer[@]}")
echo "image: 5 layers, ${size_mb} MB compressed, ${unpacked_mb} MB unpacked; $rounds rounds, $(nproc) cores"
echo "pull+unpack  benchbox      median ${m_bb} s"
echo "pull+unpack  skopeo+umoci  median ${m_peer} s"
echo "ratio benchbox/peer: $(printf '%.2f' "$(echo "scale=4; $m_bb / $m_peer" | bc)") (target <= 1.0)"
echo "ensure on a cached image (median of 500): ${ensure_big} us (5 layers, ${unpacked_mb} MB), ${ensure_small} us (1 layer, 2 MB)"
echo "  (a few stats per layer and one small JSON read: it grows with the layer count, not the bytes)"

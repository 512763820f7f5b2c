#!/usr/bin/env bash
# The cost per invocation of the perf_event counters and the disturbance sampling, measured as
# paired differences: whole runs of /bin/true (500 invocations each, on a busybox rootfs)
# alternate between counters on, `counters = false`, and (with BASELINE) a build from before
# either existed, ROUNDS times (default 8), 2 s apart. A difference within one round shares
# the machine's state of that moment, so its median is steadier than a difference of medians
# (hyperfine runs all of one command, then all of the next).
#
#   BASELINE=/path/to/older/benchbox sudo -E benches/counters_cost.sh
#
# Target: counters and disturbance sampling together <= 0.3 ms per invocation.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-8}"
n=500
cargo build --release --quiet
bin="$PWD/target/release/benchbox"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source benches/true_rootfs.sh
true_rootfs "$work" on.toml "$n"
sed 's/^allow-failures = true$/allow-failures = true\ncounters = false/' "$work/on.toml" > "$work/off.toml"
cd "$work"
variants=(on off)
[[ -n "${BASELINE:-}" ]] && variants+=(base)
for _ in $(seq "$rounds"); do
    for v in "${variants[@]}"; do
        case $v in
            on) cmd=("$bin" run on.toml) ;;
            off) cmd=("$bin" run off.toml) ;;
            base) cmd=("$BASELINE" run on.toml) ;;
        esac
        sleep 2
        start=$(date +%s%N)
        BENCHBOX_SCRATCH="$work/scratch" "${cmd[@]}" --out "$work/out-$v" --resamples 100 >/dev/null 2>&1
        echo "$v $(( ($(date +%s%N) - start) / n ))" >> times
        rm -rf "$work/out-$v"
    done
done
python3 - "$n" <<'PY'
import statistics as st
d = {}
for line in open("times"):
    k, ns = line.split()
    d.setdefault(k, []).append(int(ns) / 1e6)
for k, v in d.items():
    print(f"{k:4}  median {st.median(v):6.3f} ms per invocation  ({' '.join(f'{x:.2f}' for x in v)})")
paired = lambda a, b: st.median([x - y for x, y in zip(d[a], d[b])])
print(f"counters (on - off, paired median): {paired('on', 'off'):+.3f} ms per invocation")
if "base" in d:
    print(f"disturbance and the rest (off - baseline): {paired('off', 'base'):+.3f} ms")
    print(f"both (on - baseline): {paired('on', 'base'):+.3f} ms (target <= 0.3 ms)")
PY

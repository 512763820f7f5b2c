#!/usr/bin/env bash
# The cost per invocation of the perf_event counters and the disturbance sampling, measured as
# paired differences: whole runs of /bin/true (500 invocations each, on a busybox rootfs)
# alternate between counters on, `counters = false`, and (with BASELINE) a build from before
# either existed, ROUNDS times (default 8), 2 s apart. A difference within one round shares
# the machine's state of that moment, so its median is steadier than a difference of medians
# (hyperfine runs all of one command, then all of the next). Each run's CPU time (user +
# system of benchbox and everything it started, from bash's `time`) is paired the same way: on
# a machine shared with other work it moves much less than the wall time.
#
#   BASELINE=/path/to/older/benchbox sudo -E benches/counters_cost.sh
#
# Target: counters and disturbance sampling together <= 0.3 ms per invocation. With BASELINE a
# build from before both, `on - baseline` is that cost; with the build before a change to
# either, it is the change.
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
TIMEFORMAT='%3U %3S'
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
        { time BENCHBOX_SCRATCH="$work/scratch" "${cmd[@]}" --out "$work/out-$v" --resamples 100 >/dev/null 2>&1; } 2> cpu
        echo "$v $(( ($(date +%s%N) - start) / n )) $(cat cpu)" >> times
        rm -rf "$work/out-$v"
    done
done
python3 - "$n" <<'PY'
import statistics as st
import sys
n = int(sys.argv[1])
wall, cpu = {}, {}
for line in open("times"):
    k, ns, user, system = line.split()
    wall.setdefault(k, []).append(int(ns) / 1e6)
    cpu.setdefault(k, []).append((float(user) + float(system)) * 1e3 / n)
for what, d in (("wall", wall), ("cpu", cpu)):
    print(f"{what} time per invocation:")
    for k, v in d.items():
        print(f"  {k:4}  median {st.median(v):6.3f} ms  ({' '.join(f'{x:.2f}' for x in v)})")
    def paired(a, b):
        diffs = sorted(x - y for x, y in zip(d[a], d[b]))
        q1, _, q3 = st.quantiles(diffs, n=4)
        return f"{st.median(diffs):+.3f} ms (quartiles {q1:+.3f} .. {q3:+.3f})"
    print(f"  counters (on - off, paired median): {paired('on', 'off')}")
    if "base" in d:
        print(f"  off - baseline: {paired('off', 'base')}")
        print(f"  on - baseline: {paired('on', 'base')}")
PY

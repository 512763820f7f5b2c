#!/usr/bin/env bash
# End-to-end cost per invocation of `/bin/true` through `benchbox run` on a rootfs directory,
# measured in the same hyperfine session beside a bare fork+exec of /bin/true and
# `unshare -m -p -f -i -u -n true` (namespaces without mounts, cgroups or measurement).
#
#   sudo benches/overhead.sh [INVOCATIONS]     (default 200)
#
# benchbox's figure is the whole `benchbox run` (start-up, matrix parsing, results files
# included) divided by the number of invocations. Targets: <= 10 ms per invocation and
# <= 3x the unshare figure.
#
#   BASELINE=/path/to/other/benchbox sudo -E benches/overhead.sh [INVOCATIONS]
#
# also runs another build of benchbox (say, the last release) in the same hyperfine session,
# right after this one, for a before/after comparison measured side by side. BENCHBOX=PATH
# measures that binary instead of building this tree (where cargo cannot build, such as the
# VM lane's read-only guest: `tests/vm/run --env "BENCHBOX=... BASELINE=..." 'benches/overhead.sh'`).
#
#   COUNTERS_OFF=1 sudo -E benches/overhead.sh [INVOCATIONS]
#
# also runs this build with `[run] counters = false` in the same session, for the cost of the
# perf_event counters (target: <= 0.3 ms per invocation).
#
#   RUNS=15 sudo -E benches/overhead.sh [INVOCATIONS]
#
# times each whole run RUNS times (default 5): differences of a few tenths of a millisecond per
# invocation need more than 5 on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200}"
source benches/binary.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source benches/true_rootfs.sh
true_rootfs "$work" m.toml "$n"
sed 's/^allow-failures = true$/allow-failures = true\ncounters = false/' "$work/m.toml" > "$work/off.toml"
cd "$work"
hyperfine --style basic -N --warmup 20 --runs "$n" --export-json bare.json '/bin/true' 'unshare -m -p -f -i -u -n true' >/dev/null
# A 2 s pause before each whole run lets the kernel finish tearing down the previous run's 200
# namespaces and cgroups (deferred work); what happens within one run is still counted.
commands=("$bin run m.toml --out $work/out --resamples 100")
if [[ -n "${BASELINE:-}" ]]; then
    commands+=("$BASELINE run m.toml --out $work/out-baseline --resamples 100")
fi
if [[ -n "${COUNTERS_OFF:-}" ]]; then
    commands+=("$bin run off.toml --out $work/out-off --resamples 100")
fi
BENCHBOX_SCRATCH="$work/scratch" hyperfine --style basic --warmup 1 --runs "${RUNS:-5}" --prepare 'sleep 2' --export-json bb.json \
    "${commands[@]}" >/dev/null
python3 - "$n" "${RUNS:-5}" <<'PY'
import json, sys
n = int(sys.argv[1])
bare = json.load(open("bare.json"))["results"]
bb = json.load(open("bb.json"))["results"][0]
true_ms = bare[0]["median"] * 1e3
unshare_ms = bare[1]["median"] * 1e3
bb_ms = bb["median"] * 1e3 / n
print(f"bare fork+exec /bin/true      median {true_ms:7.3f} ms")
print(f"unshare -m -p -f -i -u -n     median {unshare_ms:7.3f} ms")
print(f"benchbox run, per invocation  median {bb_ms:7.3f} ms  ({n} invocations per run, {sys.argv[2]} runs)")
print(f"ratio benchbox / unshare      {bb_ms / unshare_ms:5.2f}x   (target <= 3x)")
print(f"target <= 10 ms per invocation: {'met' if bb_ms <= 10 else 'NOT met'}")
results = json.load(open("bb.json"))["results"]
import os
if os.environ.get("COUNTERS_OFF"):
    off = results.pop()
    off_ms = off["median"] * 1e3 / n
    print(f"counters = false, per invocation median {off_ms:7.3f} ms")
    print(f"cost of the counters          {bb_ms - off_ms:+7.3f} ms per invocation (target <= 0.3 ms)")
if len(results) > 1:
    base_ms = results[1]["median"] * 1e3 / n
    print(f"baseline build, per invocation median {base_ms:7.3f} ms  ratio to unshare {base_ms / unshare_ms:5.2f}x")
    print(f"this build / baseline         {bb_ms / base_ms:5.2f}x")
PY

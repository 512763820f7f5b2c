#!/usr/bin/env bash
# What the end-of-run report costs a real run of 10,000 invocations: a run of 2 cells x RUNS
# (default 5,000) invocations of /bin/true on a busybox rootfs, then its end-of-run report
# (`benchbox report RUN --format all`, what `run` does after its last invocation) timed again
# with hyperfine on the finished run, and the sizes of what it wrote. The target: under 1 s.
#
#   sudo benches/end-of-run.sh
#
# Environment:
#   BENCHBOX=PATH    measure that binary instead of building this tree (`cargo build --release`)
#   BASELINE=PATH    also time another build's report of the same run, side by side
#   RUNS=5000        invocations per cell
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5000}"
for tool in hyperfine /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done
source benches/binary.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source benches/true_rootfs.sh
true_rootfs "$work" base.toml "$runs"
# Two cells: the same /bin/true, told apart by an axis it ignores.
{
    sed 's/^name = "overhead"$/name = "end-of-run"/' "$work/base.toml"
    printf '[matrix]\nside = ["a", "b"]\n'
} > "$work/matrix.toml"
sed -i 's|^command = \["/bin/true"\]$|command = ["/bin/true", "{side}"]|' "$work/matrix.toml"
cd "$work"
start=$(date +%s%N)
BENCHBOX_SCRATCH="$work/scratch" "$bin" run matrix.toml --out "$work/out" >/dev/null 2>run.err ||
    { cat run.err >&2; exit 1; }
echo "the run: $(( ($(date +%s%N) - start) / 1000000 )) ms for 2 x $runs invocations, its report included"
run_dir="$(readlink -f "$work/out/end-of-run/latest")"
commands=("$bin report $run_dir --format all")
[[ -n "${BASELINE:-}" ]] && commands+=("$BASELINE report $run_dir --format all")
hyperfine --warmup 1 --runs 5 --style none --export-json times.json "${commands[@]}" >/dev/null
python3 - <<'PY'
import json
for r in json.load(open("times.json"))["results"]:
    print(f"median {r['median'] * 1000:7.1f} ms (user {r['user'] * 1000:.0f} ms, system {r['system'] * 1000:.0f} ms)  {r['command']}")
PY
/usr/bin/time -f "one report: %e s wall, %U+%S s CPU, peak %M KiB" "$bin" report "$run_dir" --format all >/dev/null
du -k "$run_dir/runs.csv" "$run_dir/results.json" "$run_dir/report.html" "$run_dir/plots" |
    awk '{ n = split($2, part, "/"); printf "%-13s %8d kB\n", part[n], $1 }'

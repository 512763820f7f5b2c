#!/usr/bin/env bash
# What a trivial service adds per invocation: `benchbox run` of `/bin/true` on a busybox rootfs,
# alone and beside a busybox httpd service (`lifetime = "invocation"`, ready on its TCP port;
# and `lifetime = "cell"`), timed whole in one hyperfine session.
#
#   sudo benches/services.sh [INVOCATIONS]     (default 100)
#
# The per-invocation figures are the whole `benchbox run` divided by the number of
# invocations; "added" is the difference to the run without a service. The workload's own
# measured wall time is in each run's runs.csv: a service's start-up is never part of it, and
# the script prints its median too, to show it.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
source benches/binary.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/www" "$work/scratch"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in true sh httpd; do ln -s busybox "$work/rootfs/bin/$applet"; done
echo hello > "$work/rootfs/www/index.html"
matrix() { # NAME [SERVICE TOML]
    cat > "$work/$1.toml" <<TOML
name = "$1"
[environment]
rootfs = "./rootfs"
[limits]
cpus = "0"
memory = "64MiB"
[run]
command = ["/bin/true"]
warmup = 0
runs = $n
allow-failures = true
$2
TOML
}
service='
[services.web]
rootfs = "./rootfs"
command = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
ready = { tcp = 8080 }
stop-timeout = "1s"
limits = { cpus = "1", memory = "64MiB" }'
matrix alone ""
matrix per-invocation "$service"
matrix per-cell "$service
lifetime = \"cell\""
cd "$work"
BENCHBOX_SCRATCH="$work/scratch" hyperfine --style basic --warmup 1 --runs 5 --prepare 'sleep 2' --export-json bb.json \
    "$bin run alone.toml --out $work/out --resamples 100" \
    "$bin run per-invocation.toml --out $work/out --resamples 100" \
    "$bin run per-cell.toml --out $work/out --resamples 100" >/dev/null
python3 - "$n" "$work/out" <<'PY'
import csv, json, statistics, sys, pathlib
n, out = int(sys.argv[1]), pathlib.Path(sys.argv[2])
results = json.load(open("bb.json"))["results"]
names = ["alone", "per-invocation", "per-cell"]
per = {name: r["median"] * 1e3 / n for name, r in zip(names, results)}
for name in names:
    rows = list(csv.DictReader(open(out / name / "latest" / "runs.csv")))
    wall = statistics.median(float(r["wall_s"]) for r in rows if r["phase"] == "measure") * 1e3
    added = per[name] - per["alone"]
    print(f"{name:15} per invocation median {per[name]:7.3f} ms  added {added:+7.3f} ms  workload wall median {wall:6.3f} ms")
PY

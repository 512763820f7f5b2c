#!/usr/bin/env bash
# The whole `benchbox report RUN --format F` on large synthetic runs, per format (csv, bmf, tex,
# html, plots, all): wall time and peak RSS, each on a fresh copy of the run directory, printed
# as a Markdown table.
#
#   benches/report-formats.sh [ROWS...]        ROWS: 100k (default), 1m
#
# 100k is 20 cells x 5,000 invocations (the criterion bench's run), 1m is 100 x 10,000. The
# 10^6 size is measured only when asked (`benches/report-formats.sh 100k 1m`): before reports
# scaled it took well over 10 minutes for all formats. Each run is generated once by
# `examples/synthetic_run.rs` (the criterion bench's generator, seeded: same rows every time)
# into a temp dir, removed at the end; a 10^6-row run takes about 1.5 GB there, twice while a
# copy is measured.
#
# How a figure is measured: the first run of each (size, format) is under `/usr/bin/time -v`
# (wall time, maximum resident set size). When it took under FAST seconds, hyperfine then times
# HYPERFINE_RUNS more runs (each on a fresh copy, the copy not timed) and the time is their
# median; otherwise the command runs SLOW_RUNS times in all under `/usr/bin/time` (once only when
# the first run took over a minute) and the time and peak are the medians. A run that exceeds
# CAP seconds is killed and shown as "> CAP". Beside each wall time, the CPU time (user + system)
# of the same runs: on a shared machine it moves less than the wall time.
#
# Environment:
#   BENCHBOX=PATH    measure that binary instead of building this tree (`cargo build --release`)
#   BASELINE=PATH    also measure another build, each command right after this one's, in the
#                    same session, for a before/after side by side (its columns and the ratio)
#   FORMATS="..."    the formats to measure (default: csv bmf tex html plots all)
#   CAP=300          seconds before a run is killed
#   FAST=5 HYPERFINE_RUNS=10 SLOW_RUNS=3
#   KEEP=DIR         keep the generated runs in DIR (and reuse them on the next call)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(100k)
formats=(${FORMATS:-csv bmf tex html plots all})
cap="${CAP:-300}"
fast="${FAST:-5}"
hyperfine_runs="${HYPERFINE_RUNS:-10}"
slow_runs="${SLOW_RUNS:-3}"
for s in "${sizes[@]}"; do
    case "$s" in
        100k | 1m) ;;
        *) echo "usage: $0 [100k] [1m]   (unknown size: $s)" >&2; exit 2 ;;
    esac
done
for tool in /usr/bin/time hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done
cargo build --release --quiet --example synthetic_run
source benches/binary.sh
generator="$PWD/target/release/examples/synthetic_run"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
runs_dir="${KEEP:-$work/runs}"
mkdir -p "$runs_dir"
results="$work/results.tsv"
: >"$results"

# The fresh copy a measured command gets: what it overwrites (results.json, the reports) must
# not be the previous command's.
fresh() { rm -rf "$work/copy" && cp -a --reflink=auto "$1" "$work/copy"; }

# Bytes of what FORMAT writes in the run directory $work/copy (everything, for `all`).
output_bytes() {
    local f
    case "$1" in
        csv) f=results.csv ;; bmf) f=bencher.json ;; tex) f=table.tex ;;
        html) f=report.html ;; plots) f=plots ;; all) f=. ;;
    esac
    du -sb "$work/copy/$f" 2>/dev/null | cut -f1 || echo 0
}

# One run of BIN on a fresh copy of RUN under /usr/bin/time; prints "seconds kib cpu_seconds"
# or "cap".
timed_once() {
    local b=$1 run=$2 format=$3
    fresh "$run"
    local rc=0
    /usr/bin/time -v -o "$work/time.txt" timeout -s KILL "$cap" \
        "$b" report "$work/copy" --format "$format" >/dev/null 2>"$work/stderr.txt" || rc=$?
    if [[ $rc -eq 137 || $rc -eq 124 ]] || grep -q "Command terminated by signal 9" "$work/time.txt"; then
        echo cap
        return
    fi
    if [[ $rc -ne 0 ]]; then
        echo "error: $b report --format $format failed (exit $rc):" >&2
        cat "$work/stderr.txt" "$work/time.txt" >&2
        exit 1
    fi
    python3 - "$work/time.txt" <<'PY'
import sys
fields = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().rpartition(": ")
    fields[k] = v
wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall)))
cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
print(f"{secs:.3f} {fields['Maximum resident set size (kbytes)']} {cpu:.3f}")
PY
}

# Measures BIN (ROLE: this or baseline) on RUN with FORMAT; appends
# "rows format role seconds mib how out_bytes json_bytes cpu_seconds".
measure() {
    local role=$1 b=$2 run=$3 rows=$4 format=$5
    echo "  $format on $rows rows: $b" >&2
    local first
    first=$(timed_once "$b" "$run" "$format")
    if [[ $first == cap ]]; then
        printf '%s\t%s\t%s\tcap\t-\tkilled after %s s\t-\t-\t-\n' "$rows" "$format" "$role" "$cap" >>"$results"
        return
    fi
    local out json
    out=$(output_bytes "$format")
    json=$(du -sb "$work/copy/results.json" | cut -f1)
    read -r secs kib cpu <<<"$first"
    local how="1 run" times=("$secs") peaks=("$kib") cpus=("$cpu")
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$secs" "$fast"; then
        hyperfine --style none --runs "$hyperfine_runs" \
            --prepare "rm -rf '$work/copy' && cp -a --reflink=auto '$run' '$work/copy'" \
            --export-json "$work/hf.json" "$b report $work/copy --format $format" >/dev/null
        read -r secs cpu <<<"$(python3 -c "import json,sys; r = json.load(open(sys.argv[1]))['results'][0]; print('%.3f %.3f' % (r['median'], r['user'] + r['system']))" "$work/hf.json")"
        cpus=("$cpu")
        how="median of $hyperfine_runs (hyperfine)"
    elif python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 60 else 1)" "$secs" && [[ $slow_runs -gt 1 ]]; then
        local i r
        for ((i = 1; i < slow_runs; i++)); do
            r=$(timed_once "$b" "$run" "$format")
            [[ $r != cap ]] || break
            read -r s k c <<<"$r"
            times+=("$s")
            peaks+=("$k")
            cpus+=("$c")
        done
        how="median of ${#times[@]}"
    fi
    # Peak: the median of the /usr/bin/time runs (one, for a command hyperfine timed); CPU
    # time (user + system): hyperfine's mean, else the median of the runs.
    read -r secs kib cpu <<<"$(python3 - "$secs" "${#times[@]}" "${times[@]}" "${peaks[@]}" "${cpus[@]}" <<'PY'
import statistics, sys
secs, n = sys.argv[1], int(sys.argv[2])
times = [float(x) for x in sys.argv[3:3 + n]]
peaks = [float(x) for x in sys.argv[3 + n:3 + 2 * n]]
cpus = [float(x) for x in sys.argv[3 + 2 * n:]]
if n > 1:
    secs = "%.3f" % statistics.median(times)
print(secs, statistics.median(peaks), "%.3f" % statistics.median(cpus))
PY
)"
    local mib
    mib=$(python3 -c "import sys; print('%.0f' % (float(sys.argv[1]) / 1024))" "$kib")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rows" "$format" "$role" "$secs" "$mib" "$how" "$out" "$json" "$cpu" >>"$results"
}

for s in "${sizes[@]}"; do
    case "$s" in
        100k) cells=20 invocations=5000 ;;
        1m) cells=100 invocations=10000 ;;
    esac
    rows=$((cells * invocations))
    run="$runs_dir/run-$rows"
    if [[ ! -f "$run/results.json" ]]; then
        echo "generating $rows rows ($cells cells x $invocations) in $run" >&2
        "$generator" "$run" "$cells" "$invocations" >/dev/null
    fi
    for f in "${formats[@]}"; do
        measure this "$bin" "$run" "$rows" "$f"
        [[ -z "${BASELINE:-}" ]] || measure baseline "$BASELINE" "$run" "$rows" "$f"
    done
    rm -rf "$work/copy"
    # Only one size's run on disk at a time, unless kept.
    [[ -n "${KEEP:-}" ]] || rm -rf "$run"
done

python3 - "$results" "${BASELINE:-}" "$cap" <<'PY'
import sys
path, base, cap = sys.argv[1:4]
this = "this"
rows = {}
order = []
for line in open(path):
    n, fmt, role, secs, mib, how, out, json, cpu = line.rstrip("\n").split("\t")
    key = (int(n), fmt)
    if key not in rows:
        order.append(key)
        rows[key] = {}
    rows[key][role] = dict(secs=secs, mib=mib, how=how, out=out, json=json, cpu=cpu)

def t(m):
    if m["secs"] == "cap":
        return f"> {cap} s"
    return f"{float(m['secs']):.2f} s ({float(m['cpu']):.2f} s cpu)"

def mb(b):
    if b == "-":
        return "-"
    b = int(b)
    return f"{b / 1e6:.1f} MB" if b >= 1e6 else f"{b / 1e3:.1f} kB"

head = "| format | rows | time | peak MiB | output | results.json | measured |"
rule = "|---|---|---|---|---|---|---|"
if base:
    head += " baseline time | baseline peak MiB | baseline output | baseline measured | time ratio |"
    rule += "---|---|---|---|---|"
print(head)
print(rule)
for key in order:
    m = rows[key][this]
    line = f"| {key[1]} | {key[0]:,} | {t(m)} | {m['mib']} | {mb(m['out'])} | {mb(m['json'])} | {m['how']} |"
    if base:
        o = rows[key]["baseline"]
        ratio = "-"
        if m["secs"] != "cap" and o["secs"] != "cap":
            ratio = f"{float(m['secs']) / float(o['secs']):.3f}x"
        line += f" {t(o)} | {o['mib']} | {mb(o['out'])} | {o['how']} | {ratio} |"
    print(line)
PY

#!/usr/bin/env bash
# `benchbox history` over a large results tree: RUNS complete runs (default 1,000) of CELLS
# cells (20) with 5 metrics each (wall, CPU, peak memory and two custom ones), i.e. 100 series
# of RUNS points. Two cells step by +20% at the middle run, so the command also detects change
# points and reads the runs.csv of the runs around them for the steps' intervals. The tree is
# generated (seeded) into a temp dir, removed at the end, and `benchbox history` is timed with
# hyperfine (median of 10 runs after 2 warm-ups), plus its peak RSS once under /usr/bin/time.
#
#   benches/history.sh                  BENCHBOX=PATH: measure that binary (default: a release
#   RUNS=1000 CELLS=20 KEEP=DIR         build of this tree); KEEP: generate into DIR and keep it
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000}
CELLS=${CELLS:-20}
if [[ -z ${BENCHBOX:-} ]]; then
    cargo build --release --locked --quiet
    BENCHBOX=target/release/benchbox
fi
if [[ -n ${KEEP:-} ]]; then
    DIR=$KEEP
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d)
    trap 'rm -rf "$DIR"' EXIT
fi
if [[ ! -d $DIR/m ]]; then
    python3 - "$DIR/m" "$RUNS" "$CELLS" <<'EOF'
import json, os, random, sys
root, runs, cells = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
ids = ["%012x" % rng.getrandbits(48) for _ in range(cells)]
fixed = "wall_s,user_s,system_s,peak_memory_bytes,io_read_bytes,io_write_bytes,exit_code,signal,oom_killed,timed_out,throttled_s,rusage_user_s,rusage_system_s,max_rss_bytes,minor_faults,major_faults,voluntary_switches,involuntary_switches"
metrics = [{"name": "latency_ms", "unit": "ms", "better": "lower"}, {"name": "ops", "unit": "ops/s", "better": "higher"}]
def summary(values):
    s = sorted(values); m = s[len(s) // 2]
    return {"n": len(s), "mean": sum(s) / len(s), "median": m, "stddev": 0.0, "mad": 0.0, "mad_scaled": 0.0,
            "min": s[0], "max": s[-1], "p5": s[0], "p95": s[-1], "cv": 0.0, "mean_ci": None,
            "median_ci": {"lower": m * 0.98, "upper": m * 1.02}, "t_interval": None, "outliers": [], "warnings": []}
for r in range(runs):
    run_id = "2024%04dT000000Z" % r
    d = os.path.join(root, run_id); os.makedirs(d)
    day = "2024-01-01T00:00:00Z"
    rows, cell_docs = [], []
    for c, cid in enumerate(ids):
        step = 1.2 if c < 2 and r >= runs // 2 else 1.0
        base = 0.01 * (c + 1) * step
        vals = {k: [] for k in ["wall_s", "cpu_s", "peak_memory_bytes", "latency_ms", "ops"]}
        for i in range(5):
            w = base * rng.gauss(1, 0.02); u = w * 0.9; mem = 1e6 * (c + 1) * rng.gauss(1, 0.01)
            lat = 5 * step * rng.gauss(1, 0.02); ops = 1000 / step * rng.gauss(1, 0.02)
            for k, v in [("wall_s", w), ("cpu_s", u), ("peak_memory_bytes", mem), ("latency_ms", lat), ("ops", ops)]:
                vals[k].append(v)
            rows.append(f"{cid},c{c},measure,{i},{day},{w:.9f},{u:.6f},0.000000,{int(mem)},0,0,0,,false,false,0.000000,{u:.6f},0.000000,{int(mem)},1,0,1,1,{lat:.6f},{ops:.3f}")
        cell_docs.append({"id": cid, "label": f"c{c}", "slug": f"c{c}", "axes": [], "applied_limits": None,
                          "setup_error": None, "summary": {k: summary(v) for k, v in vals.items()},
                          "failures": 0, "warnings": []})
    doc = {"schema_version": 2, "tool": "benchbox", "tool_version": "0.1.0", "run_id": run_id, "status": "complete",
           "started_at": day, "finished_at": "2024-%02d-%02dT%02d:%02d:00Z" % (1 + r // 600, 1 + (r // 24) % 25, r % 24, r % 60),
           "command_line": [], "host": {}, "matrix_name": "m", "matrix_path": "envs/m.toml", "matrix_sha256": "0" * 64,
           "revision": {"id": "%040x" % rng.getrandbits(160), "commit_time": "2024-01-01T00:00:00Z".replace("01T00:00", "01T00:%02d" % (r % 60)).replace("2024-01-01", "2024-%02d-%02d" % (1 + r // 600, 1 + (r // 60) % 28)), "source": "git"},
           "seed": 0, "order": "interleaved", "stats": {"confidence": 0.95, "resamples": 10000, "seed": 0},
           "plan": {"cells": [{"id": cid, "metrics": metrics} for cid in ids]}, "cells": cell_docs, "warnings": []}
    json.dump(doc, open(os.path.join(d, "results.json"), "w"), indent=1)
    with open(os.path.join(d, "runs.csv"), "w") as f:
        f.write("cell,label,phase,invocation,started_at," + fixed + ",latency_ms,ops\n")
        f.write("\n".join(rows) + "\n")
EOF
fi
echo "tree: $DIR/m: $RUNS runs x $CELLS cells x 5 metrics ($(du -sh "$DIR/m" | cut -f1))"
"$BENCHBOX" history "$DIR/m" --check | tail -n +1 | head -8 || true
hyperfine --style basic --warmup 2 --runs 10 --export-json "$DIR/hf.json" \
    "$BENCHBOX history $DIR/m --format json > /dev/null" >/dev/null || true
python3 -c "
import json,sys; r=json.load(open('$DIR/hf.json'))['results'][0]
print('history, %d runs x %d cells x 5 metrics: median %.3f s (min %.3f, max %.3f, %d runs)' % ($RUNS, $CELLS, r['median'], r['min'], r['max'], len(r['times'])))"
/usr/bin/time -f 'peak RSS: %M KiB' "$BENCHBOX" history "$DIR/m" --format json >/dev/null

//! `benchbox calibrate`: measure each cell's noise with a short run through the normal runner,
//! then say how many invocations `compare` needs to find a given slowdown, and the smallest
//! slowdown it finds at the matrix's `runs`; `--write` puts the need into the file.
//!
//! The run is the matrix's own cells with `runs = "auto"` stopped by the budget alone (at
//! least 6 invocations, at most 30), interleaved like any run, into a temporary directory that
//! is removed afterwards. Needs come from [`benchbox::power`]: seeded simulations through
//! `compare` itself, resampling the cell's measured wall times.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use benchbox::compare::parse_threshold;
use benchbox::power::{self, Noise, Sampling, Scenario};
use benchbox::results::CellResult;
use benchbox::spec::{self, Adaptive};
use benchbox::{exit, metrics, plan, runner, stats};

use super::{CliError, Outcome, code, validation_context};
use crate::cli::CalibrateArgs;

/// Each cell's invocations in the calibration: at least enough for an interval, at most what
/// a short budget can use well.
const MIN_RUNS: u32 = 6;
const MAX_RUNS: u32 = 30;
/// Trials per simulated point, and the bootstrap resamples of each simulated comparison.
const TRIALS: u32 = 200;
const RESAMPLES: usize = 2_000;
/// The largest need searched.
const MAX_NEED: u32 = 500;

pub fn run(args: CalibrateArgs) -> Outcome {
    let threshold = parse_threshold(&args.threshold).map_err(CliError::usage)?;
    let effect = parse_threshold(&args.effect).map_err(|_| {
        CliError::usage(format!(
            "invalid --effect `{}`\n  hint: give a percentage such as 10%",
            args.effect
        ))
    })?;
    if effect <= threshold {
        return Err(CliError::usage(format!(
            "--effect {} is not above --threshold {}: compare calls a regression only when the whole interval of the ratio is beyond the threshold, so no number of runs finds it\n  hint: give an --effect above the threshold, or a lower --threshold",
            args.effect, args.threshold
        )));
    }
    if !(args.power > 0.0 && args.power < 1.0) {
        return Err(CliError::usage(format!(
            "invalid --power {}\n  hint: a fraction between 0 and 1, such as 0.95",
            args.power
        )));
    }
    let budget = match spec::units::parse_duration_or_none(&args.budget) {
        Ok(Some(d)) if !d.is_zero() => d,
        _ => {
            return Err(CliError::usage(format!(
                "invalid --budget `{}`\n  hint: a duration such as 2m or 90s",
                args.budget
            )));
        }
    };
    let ctx = validation_context();
    let mut matrix = spec::load_for_run(&args.file, &ctx, plan::MAX_RUN_CELLS)?;
    // Image cells are pulled (or found in the cache) and pinned as `run` does, lock file
    // included, so the calibration measures the images the run will.
    let images = super::run::resolve_images(&mut matrix, &args.file, &ctx, &args.cache, false)?;
    let selected = plan::filter_only(&matrix, &args.only).map_err(CliError::usage)?;
    // The matrix's own runs, for the detectable effect: `runs`, or `min-runs` of "auto".
    let current: Vec<u32> = matrix
        .cells
        .iter()
        .map(|c| c.adaptive.map_or(c.runs, |a| a.min_runs))
        .collect();
    let mut calibration = matrix.clone();
    for cell in &mut calibration.cells {
        cell.runs = MAX_RUNS;
        cell.adaptive = Some(Adaptive {
            min_runs: MIN_RUNS,
            max_runs: MAX_RUNS,
            // Never narrow enough: only the budget and the cap stop a cell.
            ci_width: f64::MIN_POSITIVE,
            budget: Some(budget),
        });
    }
    let command_line: Vec<String> = std::env::args().collect();
    let sandboxing = runner::preflight(&calibration, &selected, &command_line, None)?;
    let out = tempfile::tempdir().map_err(|e| {
        CliError::new(
            exit::INTERNAL,
            format!("cannot make a temporary directory: {e}"),
        )
    })?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!("warning: cannot catch Ctrl-C: {e}");
    }
    let opts = runner::RunOptions {
        out_dir: out.path().to_path_buf(),
        runs: None,
        warmup: None,
        only: args.only.clone(),
        resume: None,
        scratch_base: args.scratch.clone().unwrap_or_else(std::env::temp_dir),
        stats: stats::StatsOptions::default(),
        command_line,
        images,
        cgroup_parent: None,
        revision: None,
        shard: None,
    };
    eprintln!(
        "calibrating {} cell(s) for at most {} (each at least {MIN_RUNS} invocations, at most {MAX_RUNS})",
        selected.len(),
        args.budget
    );
    let outcome = runner::run(&calibration, &opts, sandboxing, &cancel, &mut |_| {})?;
    if outcome.interrupted {
        return Ok(code(exit::INTERRUPTED));
    }
    let run = benchbox::results::load(&outcome.dir)?;
    let seed = outcome.results.seed;
    println!(
        "noise and the runs compare needs to find a {} slowdown in {:.0}% of trials at --threshold {}",
        pct(effect),
        100.0 * args.power,
        pct(threshold)
    );
    println!("(seeded simulations through compare, resampling each cell's measured wall times)");
    println!();
    println!(
        "{:<28} {:>4} {:>9} {:>9} {:>9} {:>7} {:>6} {:>12}",
        "cell", "n", "cv wall", "cv cpu", "cv instr", "a/a", "needs", "detects at"
    );
    let mut largest_need: Option<u32> = None;
    let mut unreachable = false;
    for &i in &selected {
        let cell = &matrix.cells[i];
        let Some(result) = run.cells.iter().find(|c| c.id == cell.id) else {
            continue;
        };
        let row = calibrate_cell(result, effect, threshold, args.power, current[i], seed);
        match row.needs {
            Some(n) => largest_need = Some(largest_need.map_or(n, |m| m.max(n))),
            None => unreachable = true,
        }
        println!(
            "{:<28} {:>4} {:>9} {:>9} {:>9} {:>7} {:>6} {:>12}",
            truncate(&cell.label, 28),
            row.n,
            opt_pct(row.cv_wall),
            opt_pct(row.cv_cpu),
            opt_pct(row.cv_instructions),
            row.aa
                .map_or("-".into(), |r| format!("{:+.1}%", 100.0 * (r - 1.0))),
            row.needs.map_or(format!(">{MAX_NEED}"), |n| n.to_string()),
            row.detects
                .map_or("-".into(), |e| format!("{} @{}", pct(e), current[i])),
        );
    }
    println!();
    println!(
        "needs: invocations a side; detects at: the smallest slowdown found at the matrix's runs; a/a: the even invocations' median over the odd ones'"
    );
    if unreachable {
        eprintln!(
            "warning: some cells are too noisy to find a {} slowdown within {MAX_NEED} invocations\n  hint: reduce their noise (`benchbox doctor`), or gate on a larger --effect",
            pct(effect)
        );
    }
    if args.write {
        let Some(need) = largest_need else {
            return Err(CliError::usage(
                "nothing to write: no cell's need was found\n  hint: see the table above",
            ));
        };
        let key = write_runs(&args.file, need)?;
        println!("wrote {key} = {need} to {}", args.file.display());
    }
    Ok(code(exit::OK))
}

/// One row of the table.
struct Row {
    n: usize,
    cv_wall: Option<f64>,
    cv_cpu: Option<f64>,
    cv_instructions: Option<f64>,
    /// Median of the even invocations over the odd ones'.
    aa: Option<f64>,
    needs: Option<u32>,
    detects: Option<f64>,
}

fn calibrate_cell(
    cell: &CellResult,
    effect: f64,
    threshold: f64,
    power: f64,
    current: u32,
    seed: u64,
) -> Row {
    let wall = metrics::series(&cell.samples, "wall_s");
    let cv = |key: &str| {
        let v = metrics::series(&cell.samples, key);
        stats::summarize(
            &v,
            &stats::StatsOptions {
                resamples: 0,
                ..Default::default()
            },
        )
        .map(|s| s.cv)
        .filter(|cv| cv.is_finite())
    };
    let halves = |parity: usize| -> Vec<f64> {
        wall.iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, v)| *v)
            .collect()
    };
    let aa = stats::ratio_of_medians(&halves(1), &halves(0), &stats::StatsOptions::default())
        .map(|r| r.ratio);
    let (needs, detects) = match Noise::of(&wall) {
        Some(noise) => {
            let scenario = Scenario {
                noise,
                effect,
                threshold,
                sampling: Sampling::Fixed(current),
                trials: TRIALS,
                seed,
                resamples: RESAMPLES,
            };
            (
                power::runs_needed(&scenario, power, MAX_NEED),
                power::min_detectable_effect(&scenario, current, power),
            )
        }
        None => (None, None),
    };
    Row {
        n: wall.len(),
        cv_wall: cv("wall_s"),
        cv_cpu: cv("cpu_s"),
        cv_instructions: cv("instructions"),
        aa,
        needs,
        detects,
    }
}

/// Set `runs` in the file's `[run]` (or `max-runs` when `runs = "auto"`) to `need`, keeping
/// everything else as written (toml_edit keeps comments, order and spacing). Returns the key.
fn write_runs(file: &Path, need: u32) -> Result<&'static str, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::usage(format!("cannot read `{}`: {e}", file.display())))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| CliError::usage(format!("`{}`: {e}", file.display())))?;
    let run = doc
        .entry("run")
        .or_insert(toml_edit::table())
        .as_table_like_mut()
        .ok_or_else(|| CliError::usage(format!("`{}`: `run` is not a table", file.display())))?;
    let auto = run
        .get("runs")
        .and_then(|v| v.as_str())
        .is_some_and(|s| s == "auto");
    let key = if auto { "max-runs" } else { "runs" };
    match run.get_mut(key).and_then(|i| i.as_value_mut()) {
        // Replacing the value keeps its key's comments and the spacing around it.
        Some(value) => {
            let decor = value.decor().clone();
            *value = toml_edit::Value::from(i64::from(need));
            *value.decor_mut() = decor;
        }
        None => {
            run.insert(key, toml_edit::value(i64::from(need)));
        }
    }
    let tmp = file.with_extension("toml.calibrate");
    std::fs::write(&tmp, doc.to_string())
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| CliError::usage(format!("cannot write `{}`: {e}", file.display())))?;
    Ok(key)
}

fn pct(f: f64) -> String {
    let p = 100.0 * f;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn opt_pct(f: Option<f64>) -> String {
    f.map_or("-".into(), |f| format!("{:.2}%", 100.0 * f))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let cut: String = s.chars().take(n - 1).collect();
        format!("{cut}…")
    }
}

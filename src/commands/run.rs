//! `benchbox run`: check the matrix and the host, resolve the images, run every invocation, and
//! say how it went.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use benchbox::image::PullOptions;
use benchbox::resolve::{self, LockMode};
use benchbox::spec::{self, ValidationContext};
use benchbox::{exit, plan, runner, stats, ui};

use super::{CliError, Outcome, code, open_store, validation_context};
use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> Outcome {
    let RunArgs {
        file,
        runs,
        warmup,
        only,
        out,
        resume,
        scratch,
        cgroup_parent,
        resamples,
        locked,
        rev,
        branch,
        shard,
        shard_by,
        cache,
    } = args;
    let ctx = validation_context();
    let mut matrix = spec::load_for_run(&file, &ctx, plan::MAX_RUN_CELLS)?;
    for w in &matrix.warnings {
        eprintln!("warning: {w}");
    }
    // Isolation first: nothing is pulled for a run that could not start (nor for cells that a
    // rootless run without limits would refuse).
    let selected = plan::filter_only(&matrix, &only).map_err(CliError::usage)?;
    let command_line: Vec<String> = std::env::args().collect();
    let sandboxing =
        runner::preflight(&matrix, &selected, &command_line, cgroup_parent.as_deref())?;
    // A shard runs where a scheduler put it: the CPUs the matrix pins must be among those it
    // was given, checked before anything runs.
    // Adaptive repetitions (`runs = "auto"`) are refused with `--shard-by invocation`: a
    // shard holding every N-th invocation cannot decide alone when a cell has enough (the
    // stopping rule needs all of them). `--shard-by cell` works with them; `--runs N` lifts it.
    if shard.is_some()
        && matches!(shard_by, crate::cli::ShardByArg::Invocation)
        && runs.is_none()
        && let Some(&i) = selected
            .iter()
            .find(|&&i| matrix.cells[i].adaptive.is_some())
    {
        return Err(CliError::usage(format!(
            "cell `{}` has `runs = \"auto\"`, which a shard of `--shard-by invocation` cannot run (it sees only every N-th invocation, so it cannot tell when the cell has enough)\n  hint: use `--shard-by cell`, or give a fixed count with `--runs N`",
            matrix.cells[i].label
        )));
    }
    if shard.is_some() {
        let allowed = benchbox::host::allowed_cpus().map_err(|e| {
            CliError::new(
                exit::ISOLATION,
                format!("cannot read this process's CPU affinity: {e}"),
            )
        })?;
        benchbox::shard::check_pinned_cpus(&matrix.cells, &selected, &allowed)
            .map_err(|e| CliError::new(exit::ISOLATION, e))?;
    }
    let images = resolve_images(&mut matrix, &file, &ctx, &cache, locked)?;
    let resume = resume.map(|r| {
        let p = PathBuf::from(&r);
        if p.join("results.json").exists() {
            p
        } else {
            out.join(&matrix.name).join(&r)
        }
    });
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!("warning: cannot catch Ctrl-C: {e}");
    }
    let opts = runner::RunOptions {
        out_dir: out,
        runs,
        warmup,
        only,
        resume,
        scratch_base: scratch.unwrap_or_else(std::env::temp_dir),
        stats: stats::StatsOptions::with_resamples(resamples),
        command_line,
        images,
        cgroup_parent,
        revision: benchbox::revision::detect(rev.as_deref(), branch.as_deref(), &file),
        shard: shard.map(|s| (s, shard_by.into())),
    };
    let mut progress = ui::Progress::new();
    let outcome = runner::run(&matrix, &opts, sandboxing, &cancel, &mut |e| {
        progress.handle(e)
    })?;
    // The runner wrote the summaries and reports (a failure there is a warning, never a lost
    // run: `benchbox report` can redo them).
    if let Some(problem) = &outcome.report_problem {
        eprintln!("warning: {problem}");
    }
    print!("{}", ui::summary_table(&outcome.results));
    println!("results: {}", outcome.dir.display());
    append_step_summary(&outcome.dir);
    if outcome.interrupted {
        eprintln!(
            "interrupted: finished invocations are kept\n  resume with: benchbox run {} --resume {}",
            file.display(),
            outcome.dir.display()
        );
        return Ok(code(exit::INTERRUPTED));
    }
    // A suspect invocation's numbers cannot be trusted: like a failure, it fails the run unless
    // failures are allowed.
    if (outcome.failures > 0 || outcome.suspect > 0) && !matrix.allow_failures {
        let mut messages = Vec::new();
        if outcome.failures > 0 {
            messages.push(format!(
                "{} invocation(s) failed\n  hint: see the logs/ directory; set `allow-failures = true` in [run] to accept failures",
                outcome.failures
            ));
        }
        if outcome.suspect > 0 {
            messages.push(format!(
                "{} invocation(s) suspect: their cgroup counters disagree with the kernel's accounting of the processes, so their numbers were excluded\n  hint: see the `reason` column of runs.csv; set `allow-failures = true` in [run] to accept them",
                outcome.suspect
            ));
        }
        return Err(CliError::all(exit::WORKLOAD_FAILED, messages));
    }
    Ok(code(exit::OK))
}

/// In a GitHub Actions job (`GITHUB_STEP_SUMMARY` set), the run's summary.md is appended to the
/// job's summary page, as `compare` appends its report. A failure is a warning: the run and
/// its files are complete either way.
fn append_step_summary(run_dir: &Path) {
    let Some(target) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let summary = run_dir.join(benchbox::render::SUMMARY_FILE);
    let appended = std::fs::read_to_string(&summary).and_then(|markdown| {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&target)?;
        writeln!(f, "{markdown}")
    });
    if let Err(e) = appended {
        eprintln!(
            "warning: cannot append {} to GITHUB_STEP_SUMMARY `{}`: {e}",
            summary.display(),
            Path::new(&target).display()
        );
    }
}

/// Pull (or find in the cache) the images of `matrix`'s image cells and pin their digests in
/// it, as the lock file says (`locked`: only as it says); none when no cell uses an image.
/// Shared by `run` and `calibrate`, which measure the same cells.
pub(super) fn resolve_images(
    matrix: &mut spec::Matrix,
    file: &Path,
    ctx: &ValidationContext,
    cache: &crate::cli::CacheArgs,
    locked: bool,
) -> Result<std::collections::BTreeMap<String, benchbox::image::ResolvedImage>, CliError> {
    if resolve::image_refs(matrix).is_empty() {
        return Ok(Default::default());
    }
    let store = open_store(cache)?;
    let mode = if locked {
        LockMode::Locked
    } else {
        LockMode::Use
    };
    let opts = PullOptions {
        progress: true,
        ..Default::default()
    };
    let images = resolve::resolve(matrix, &store, &opts, mode)?;
    // A named user of an image cell could only be checked now that the image is unpacked:
    // the file is checked again with the images' account files, so the error points at the
    // line, before any invocation.
    let named_user = |c: &spec::Cell| {
        matches!(c.root, spec::Root::Image(_))
            && c.user.as_deref().is_some_and(|u| u.parse::<u32>().is_err())
    };
    if matrix.cells.iter().any(named_user) {
        let image_accounts = images
            .iter()
            .filter_map(|(r, i)| Some((r.clone(), resolve::image_accounts(i)?)))
            .collect();
        let ctx = ValidationContext {
            image_accounts,
            ..ctx.clone()
        };
        spec::load_for_run(file, &ctx, plan::MAX_RUN_CELLS)?;
    }
    Ok(images)
}

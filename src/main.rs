//! The `benchbox` command line: parse arguments, call the library, map errors to exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use benchbox::spec::{self, CpuSet, ValidationContext};
use benchbox::{compare, exit, host, plan, report, runner, stats, ui};

const ABOUT: &str = "Reproducible benchmarks: a TOML matrix of cells, each invocation in a fresh, isolated container \
with pinned cgroup limits, measured from exec to exit.";

#[derive(Parser)]
#[command(name = "benchbox", version, about = ABOUT, after_help = exit::HELP_TABLE)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate a matrix file; errors point at file:line:col.
    #[command(after_help = exit::HELP_TABLE)]
    Check {
        /// The matrix file (envs/NAME.toml).
        file: PathBuf,
    },
    /// Print every cell of a matrix: id, axis values, root, limits, command.
    #[command(after_help = exit::HELP_TABLE)]
    Plan {
        /// The matrix file.
        file: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run a matrix: warm-ups, then measured invocations, each in a fresh container.
    ///
    /// Results go to OUT/NAME/RUN-ID/ (runs.csv, results.json, logs/) and OUT/NAME/latest
    /// points at the newest run. Ctrl-C stops after tearing down the invocation in flight;
    /// finish the run later with --resume. Must run as root.
    #[command(after_help = exit::HELP_TABLE)]
    Run {
        /// The matrix file.
        file: PathBuf,
        /// Measured invocations per cell (overrides `runs` in the file; the cell ids stay).
        #[arg(long)]
        runs: Option<u32>,
        /// Warm-up invocations per cell (overrides `warmup`).
        #[arg(long)]
        warmup: Option<u32>,
        /// Run only cells with this axis value, e.g. --only jdk=21 (repeatable: AND across
        /// axes, OR within one axis).
        #[arg(long, value_name = "AXIS=VALUE")]
        only: Vec<String>,
        /// Results directory.
        #[arg(long, default_value = "reports", value_name = "DIR")]
        out: PathBuf,
        /// Complete an earlier run: a run directory, or a run id (or `latest`) under OUT/NAME.
        /// Exactly the missing (cell, invocation) pairs are run.
        #[arg(long, value_name = "RUN")]
        resume: Option<String>,
        /// Scratch space for the containers' writable layers (not on overlayfs).
        #[arg(long, env = "BENCHBOX_SCRATCH", value_name = "DIR")]
        scratch: Option<PathBuf>,
        /// Bootstrap resamples for the confidence intervals.
        #[arg(long, default_value_t = 10_000)]
        resamples: usize,
    },
    /// What on this host adds noise to measurements or blocks isolation.
    #[command(after_help = exit::HELP_TABLE)]
    Doctor,
    /// Rebuild a run's summaries and summary.md from its runs.csv.
    ///
    /// runs.csv is the source of truth: every cell's samples, statistics, warnings and failure
    /// count are recomputed from it with the run's recorded seed and options, then results.json
    /// (atomically) and summary.md are rewritten. Running it again gives the same bytes.
    #[command(after_help = exit::HELP_TABLE)]
    Report {
        /// A run directory, e.g. reports/NAME/latest.
        run: PathBuf,
        /// The cell the others are compared with: axis=value[,axis=value...]. The first cell
        /// (in matrix order) with all these values is used; default: the fastest median wall time.
        #[arg(long, value_name = "AXIS=VALUE")]
        reference: Option<String>,
    },
    /// Compare two runs cell by cell and gate on regressions.
    ///
    /// Cells are paired by id; cells whose ids differ (a new image digest) but whose axis values
    /// are identical are paired with a warning. Per pair: the change of the median (candidate /
    /// base - 1) with its bootstrap confidence interval, a Mann-Whitney U test, and q, its
    /// p-value adjusted by Benjamini-Hochberg across every pair and metric of the report.
    ///
    /// Verdicts, with threshold t (for lower-is-better metrics; mirrored for higher-is-better):
    ///   regression    the whole CI lies above +t, and q <= 0.05
    ///   improvement   the whole CI lies below -t, and q <= 0.05
    ///   unchanged     the whole CI lies within [-t, +t]
    ///   inconclusive  anything else (a CI straddling a bound, too few invocations to
    ///                 form an interval, no successful invocation on one side)
    ///
    /// Exit status: 0 when no pair regressed; 10 when one did. With --strict, an inconclusive
    /// pair also exits 10. Unpaired cells are listed and never fail the gate. When
    /// GITHUB_STEP_SUMMARY is set, the Markdown report is appended to that file.
    #[command(after_help = exit::HELP_TABLE, verbatim_doc_comment)]
    Compare {
        /// The base run directory (e.g. reports/NAME/latest of the main branch).
        base: PathBuf,
        /// The candidate run directory.
        candidate: PathBuf,
        /// Metric to compare: wall, cpu, memory, user, system, io_read, io_write or a custom
        /// metric's name. Repeat to compare several (one FDR correction spans them all).
        #[arg(long, default_value = "wall", value_name = "M")]
        metric: Vec<String>,
        /// Smallest change that matters, in percent ("5%" or "5").
        #[arg(long, default_value = "5%", value_name = "P")]
        threshold: String,
        /// Inconclusive pairs fail too (exit 10).
        #[arg(long)]
        strict: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Bootstrap resamples for the intervals of the ratios.
        #[arg(long, default_value_t = 10_000)]
        resamples: usize,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Md,
    Json,
}

fn online_cpus() -> CpuSet {
    let text =
        std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
    text.trim()
        .parse()
        .unwrap_or_else(|_| "0".parse().expect("0 is a cpuset"))
}

fn load(file: &Path) -> Result<spec::Matrix, ExitCode> {
    let ctx = ValidationContext {
        online_cpus: online_cpus(),
        check_paths: true,
    };
    spec::load(file, &ctx).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(e.exit_code() as u8)
    })
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c as u8)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => match load(&file) {
            Ok(m) => {
                for w in &m.warnings {
                    eprintln!("warning: {w}");
                }
                println!("{}: ok, {} cell(s)", file.display(), m.cells.len());
                code(exit::OK)
            }
            Err(c) => c,
        },
        Command::Plan { file, json } => match load(&file) {
            Ok(m) => {
                if json {
                    println!("{}", plan::render_json(&m));
                } else {
                    print!("{}", plan::render_text(&m));
                }
                code(exit::OK)
            }
            Err(c) => c,
        },
        Command::Run {
            file,
            runs,
            warmup,
            only,
            out,
            resume,
            scratch,
            resamples,
        } => {
            let matrix = match load(&file) {
                Ok(m) => m,
                Err(c) => return c,
            };
            for w in &matrix.warnings {
                eprintln!("warning: {w}");
            }
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
                stats: stats::StatsOptions {
                    resamples,
                    ..Default::default()
                },
                command_line: std::env::args().collect(),
            };
            let mut progress = ui::Progress::new();
            match runner::run(&matrix, &opts, &cancel, &mut |e| progress.handle(e)) {
                Ok(mut outcome) => {
                    // Summaries and summary.md from runs.csv, exactly as `benchbox report` makes them.
                    match report::rebuild(&outcome.dir, None) {
                        Ok((rebuilt, _)) => outcome.results = rebuilt,
                        Err(e) => eprintln!("warning: cannot write summary.md: {e}"),
                    }
                    print!("{}", ui::summary_table(&outcome.results));
                    println!("results: {}", outcome.dir.display());
                    if outcome.interrupted {
                        eprintln!(
                            "interrupted: finished invocations are kept\n  resume with: benchbox run {} --resume {}",
                            file.display(),
                            outcome.dir.display()
                        );
                        return code(exit::INTERRUPTED);
                    }
                    if outcome.failures > 0 && !matrix.allow_failures {
                        eprintln!(
                            "error: {} invocation(s) failed\n  hint: see the logs/ directory; set `allow-failures = true` in [run] to accept failures",
                            outcome.failures
                        );
                        return code(exit::WORKLOAD_FAILED);
                    }
                    code(exit::OK)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    code(e.exit_code())
                }
            }
        }
        Command::Doctor => {
            let hierarchy = benchbox::sandbox::cgroup::detect_host();
            let (version, err) = match &hierarchy {
                Ok(h) => (Some(h.version().to_string()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            let roots = host::Roots::default();
            let info = host::collect(&roots, version);
            println!(
                "host: {} ({}), kernel {}, {} cpus, {}",
                info.hostname,
                info.cpu_model,
                info.kernel,
                info.logical_cpus,
                ui::human_bytes(info.memory_bytes as f64)
            );
            let findings = host::doctor(
                &info,
                nix::unistd::geteuid().is_root(),
                host::has_overlay(&roots),
                err,
            );
            let mut blocked = false;
            for f in &findings {
                let mark = if f.ok {
                    "ok  "
                } else if f.blocking {
                    "FAIL"
                } else {
                    "warn"
                };
                println!("[{mark}] {}", f.what);
                if !f.ok
                    && let Some(h) = &f.hint
                {
                    println!("       hint: {h}");
                }
                blocked |= !f.ok && f.blocking;
            }
            code(if blocked { exit::ISOLATION } else { exit::OK })
        }
        Command::Report { run, reference } => match report::rebuild(&run, reference.as_deref()) {
            Ok((results, written)) => {
                print!("{}", ui::summary_table(&results));
                println!("wrote {}", written.results_json.display());
                println!("wrote {}", written.summary_md.display());
                code(exit::OK)
            }
            Err(e) => {
                eprintln!("error: {e}");
                code(match e {
                    report::ReportError::Write { .. } => exit::INTERNAL,
                    _ => exit::USAGE,
                })
            }
        },
        Command::Compare {
            base,
            candidate,
            metric,
            threshold,
            strict,
            format,
            resamples,
        } => {
            let load = |p: &Path| {
                report::load(p).map_err(|e| {
                    eprintln!("error: {e}");
                    code(exit::USAGE)
                })
            };
            let (base, candidate) = match (load(&base), load(&candidate)) {
                (Ok(b), Ok(c)) => (b, c),
                (Err(c), _) | (_, Err(c)) => return c,
            };
            let threshold = match compare::parse_threshold(&threshold) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(exit::USAGE);
                }
            };
            let mut metrics = Vec::new();
            for m in &metric {
                match compare::resolve_metric(m, &[&base, &candidate]) {
                    Ok(m) if !metrics.contains(&m) => metrics.push(m),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("error: {e}");
                        return code(exit::USAGE);
                    }
                }
            }
            let opts = compare::CompareOptions {
                metrics,
                threshold,
                stats: stats::StatsOptions {
                    resamples,
                    ..Default::default()
                },
            };
            let cmp = compare::compare(&base, &candidate, &opts);
            let markdown = compare::render_markdown(&cmp, &candidate, strict);
            match format {
                Format::Table => print!("{}", compare::render_table(&cmp, &candidate, strict)),
                Format::Md => print!("{markdown}"),
                Format::Json => println!("{}", compare::render_json(&cmp)),
            }
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                use std::io::Write as _;
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| writeln!(f, "{markdown}"));
                if let Err(e) = appended {
                    eprintln!(
                        "warning: cannot append to GITHUB_STEP_SUMMARY `{}`: {e}",
                        Path::new(&path).display()
                    );
                }
            }
            code(cmp.exit_code(strict))
        }
    }
}

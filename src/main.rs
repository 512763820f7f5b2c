//! The `benchbox` command line: parse arguments, call the library, map errors to exit codes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

use benchbox::image::{self, PullOptions, Store};
use benchbox::resolve::{self, LockMode};
use benchbox::spec::{self, CpuSet, ValidationContext};
use benchbox::{compare, exit, host, lock, plan, report, runner, stats, ui};

// Terminal output never fails a command: with stdout or stderr on a pipe that closed early
// (`benchbox run ... 2>&1 | head -3`), the std macros would panic (exit 101) halfway through a
// run. Rust ignores SIGPIPE, so a write to a closed pipe is an EPIPE error, dropped here: the
// run goes on and its files are complete. These shadow the std macros in this file.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
        /// Measured invocations per cell, at least 1 (overrides `runs` in the file; the cell ids
        /// stay).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
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
        /// Scratch space (not on overlayfs): the mount points of the containers, setup steps'
        /// layers, and the writable layers of cells with `scratch = "disk"` (by default a
        /// container's writable layer is a tmpfs of its own). Default: the temp directory.
        #[arg(long, env = "BENCHBOX_SCRATCH", value_name = "DIR")]
        scratch: Option<PathBuf>,
        /// The cgroup v2 group to make the invocations' groups in: a cgroup path
        /// (/benchbox.slice/bench) or the same under /sys/fs/cgroup. Default: benchbox's own
        /// group when it is delegated (systemd's Delegate=yes), which benchbox then leaves for
        /// a leaf of it, else /sys/fs/cgroup/benchbox. On cgroup v1, the same path in every
        /// controller's hierarchy.
        #[arg(long, env = "BENCHBOX_CGROUP_PARENT", value_name = "PATH")]
        cgroup_parent: Option<PathBuf>,
        /// Bootstrap resamples for the confidence intervals.
        #[arg(long, default_value_t = 10_000)]
        resamples: usize,
        /// Fail (exit 4) unless the lock file pins every image; never write it (for CI).
        #[arg(long)]
        locked: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Fetch and pin images: for a matrix FILE every image it names (recording the digests in
    /// its lock file, envs/NAME.lock), or one image REF.
    ///
    /// References are written as users write them: `eclipse-temurin:21-jre` is
    /// docker.io/library/eclipse-temurin:21-jre; tags, @sha256: digests and host:port
    /// registries work. Registries on localhost/127.0.0.1 are reached over plain HTTP; add more
    /// with BENCHBOX_INSECURE_REGISTRIES=host:port,... Credentials come from
    /// ~/.docker/config.json when present.
    #[command(after_help = exit::HELP_TABLE)]
    Pull {
        /// A matrix file (*.toml) or an image reference.
        target: String,
        /// Re-resolve every tag at its registry, even when the lock file pins it.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// List the cached images (references, digest, size, last use), or prune them.
    #[command(after_help = exit::HELP_TABLE)]
    Images {
        #[command(subcommand)]
        action: Option<ImagesAction>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Make a reproducible single-layer image from a directory (sorted entries, owner 0:0,
    /// fixed mtimes: the same input gives the same digest), store it, optionally push it.
    #[command(after_help = exit::HELP_TABLE)]
    Import {
        /// The directory that becomes the image's root filesystem.
        dir: PathBuf,
        /// The reference to store it under (e.g. 127.0.0.1:5000/bench/busybox:1).
        #[arg(long)]
        tag: String,
        /// Also push it to its registry (to the --tag reference, or to this one).
        #[arg(long, value_name = "REF", num_args = 0..=1, default_missing_value = "")]
        push: Option<String>,
        #[command(flatten)]
        cache: CacheArgs,
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
        /// The one cell every output compares the others with, for every metric:
        /// axis=value[,axis=value...] pairs that only it has (numbers compare as numbers), its
        /// label or its id. Default: the cell with the fastest median wall time. A value that
        /// names no cell or several is an error (exit 2) before anything is written.
        #[arg(long, value_name = "AXIS=VALUE")]
        reference: Option<String>,
        /// Which reports to write besides results.json and summary.md (repeatable or
        /// comma-separated): html (report.html), tex (table.tex), csv (results.csv, the
        /// statistics), bmf (bencher.json), plots (plots/*.svg, *.png), all.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
        format: Vec<ReportFormat>,
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
    ///                 form an interval, no invocation with status ok on one side)
    ///
    /// Exit status: 0 when no pair regressed; 10 when one did. With --strict, an inconclusive
    /// pair also exits 10. Unpaired cells are listed and never fail the gate. Exit 6 (nothing
    /// comparable, before 10) when no pair was compared, when a run is not complete (running,
    /// interrupted; unless --allow-partial), or when a compared cell has no invocation with
    /// status ok (or a compared metric no value) on a side. When GITHUB_STEP_SUMMARY is set,
    /// the Markdown report is appended to that file.
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
        /// Compare runs that are not complete (still running, interrupted) with a warning,
        /// instead of exit 6.
        #[arg(long)]
        allow_partial: bool,
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

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    All,
    Html,
    Tex,
    Csv,
    Bmf,
    Plots,
}

impl ReportFormat {
    fn render_format(self) -> Option<benchbox::render::Format> {
        use benchbox::render::Format;
        match self {
            ReportFormat::All => None,
            ReportFormat::Html => Some(Format::Html),
            ReportFormat::Tex => Some(Format::Latex),
            ReportFormat::Csv => Some(Format::StatsCsv),
            ReportFormat::Bmf => Some(Format::Bmf),
            ReportFormat::Plots => Some(Format::Plots),
        }
    }
}

#[derive(clap::Args)]
struct CacheArgs {
    /// The image cache directory (default: $XDG_CACHE_HOME/benchbox or ~/.cache/benchbox).
    #[arg(long, env = "BENCHBOX_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
}

impl CacheArgs {
    fn open(&self) -> Result<Store, ExitCode> {
        let root = match &self.cache {
            Some(dir) => dir.join(benchbox::image::store::LAYOUT),
            None => Store::default_root(),
        };
        Store::open(&root).map_err(|e| {
            eprintln!("error: {e}");
            code(e.exit_code())
        })
    }
}

#[derive(Subcommand)]
enum ImagesAction {
    /// Remove what no lock file under envs/ and no run under reports/ of the last 30 days uses.
    Prune {
        /// Lock files to honour (default: envs/*.lock).
        #[arg(long, value_name = "FILE")]
        lock: Vec<PathBuf>,
        /// Results directory whose recent runs keep their images.
        #[arg(long, default_value = "reports", value_name = "DIR")]
        out: PathBuf,
    },
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
        image_accounts: Default::default(),
    };
    spec::load(file, &ctx).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(e.exit_code() as u8)
    })
}

/// [`load`] without keeping the cells (see [`spec::open`]).
fn open(file: &Path) -> Result<spec::LazyMatrix, ExitCode> {
    let ctx = ValidationContext {
        online_cpus: online_cpus(),
        check_paths: true,
        image_accounts: Default::default(),
    };
    spec::open(file, &ctx).map_err(|e| {
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
        // Both walk the cells one at a time: a large matrix costs time, not memory.
        Command::Check { file } => match open(&file) {
            Ok(m) => {
                for w in &m.warnings {
                    eprintln!("warning: {w}");
                }
                println!("{}: ok, {} cell(s)", file.display(), m.len());
                code(exit::OK)
            }
            Err(c) => c,
        },
        Command::Plan { file, json } => match open(&file) {
            Ok(mut m) => {
                match resolve::lock_digests(m.path(), m.image_refs()) {
                    Ok(digests) => m.pin_images(digests),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return code(e.exit_code());
                    }
                }
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
                let written = if json {
                    plan::write_json(&mut out, &m).and_then(|()| writeln!(out))
                } else {
                    plan::write_text(&mut out, &m)
                };
                match written.and_then(|()| out.flush()) {
                    Ok(()) => code(exit::OK),
                    // `benchbox plan ... | head`: the reader has what it wanted.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code(exit::OK),
                    Err(e) => {
                        eprintln!("error: {e}");
                        code(exit::USAGE)
                    }
                }
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
            cgroup_parent,
            resamples,
            locked,
            cache,
        } => {
            let ctx = ValidationContext {
                online_cpus: online_cpus(),
                check_paths: true,
                image_accounts: Default::default(),
            };
            let mut matrix = match spec::load_for_run(&file, &ctx, plan::MAX_RUN_CELLS) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(e.exit_code());
                }
            };
            for w in &matrix.warnings {
                eprintln!("warning: {w}");
            }
            // Isolation first: nothing is pulled for a run that could not start (nor for cells
            // that a rootless run without limits would refuse).
            let selected = match plan::filter_only(&matrix, &only) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(exit::USAGE);
                }
            };
            let command_line: Vec<String> = std::env::args().collect();
            if let Err(e) =
                runner::preflight(&matrix, &selected, &command_line, cgroup_parent.as_deref())
            {
                eprintln!("error: {e}");
                return code(e.exit_code());
            }
            let mut images = Default::default();
            if !resolve::image_refs(&matrix).is_empty() {
                let store = match cache.open() {
                    Ok(s) => s,
                    Err(c) => return c,
                };
                let mode = if locked {
                    LockMode::Locked
                } else {
                    LockMode::Use
                };
                let opts = PullOptions {
                    progress: true,
                    ..Default::default()
                };
                match resolve::resolve(&mut matrix, &store, &opts, mode) {
                    Ok(i) => images = i,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return code(e.exit_code());
                    }
                }
                // A named user of an image cell could only be checked now that the image is
                // unpacked: the file is checked again with the images' account files, so the
                // error points at the line, before any invocation.
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
                        ..ctx
                    };
                    if let Err(e) = spec::load_for_run(&file, &ctx, plan::MAX_RUN_CELLS) {
                        eprintln!("error: {e}");
                        return code(e.exit_code());
                    }
                }
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
                images,
                cgroup_parent,
            };
            let mut progress = ui::Progress::new();
            match runner::run(&matrix, &opts, &cancel, &mut |e| progress.handle(e)) {
                Ok(outcome) => {
                    // The runner wrote the summaries and reports (a failure there is a warning,
                    // never a lost run: `benchbox report` can redo them).
                    if let Some(problem) = &outcome.report_problem {
                        eprintln!("warning: {problem}");
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
                    // A suspect invocation's numbers cannot be trusted: like a failure, it fails
                    // the run unless failures are allowed.
                    if (outcome.failures > 0 || outcome.suspect > 0) && !matrix.allow_failures {
                        if outcome.failures > 0 {
                            eprintln!(
                                "error: {} invocation(s) failed\n  hint: see the logs/ directory; set `allow-failures = true` in [run] to accept failures",
                                outcome.failures
                            );
                        }
                        if outcome.suspect > 0 {
                            eprintln!(
                                "error: {} invocation(s) suspect: their cgroup counters disagree with the kernel's accounting of the processes, so their numbers were excluded\n  hint: see the `reason` column of runs.csv; set `allow-failures = true` in [run] to accept them",
                                outcome.suspect
                            );
                        }
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
        Command::Pull {
            target,
            update,
            cache,
        } => {
            let store = match cache.open() {
                Ok(s) => s,
                Err(c) => return c,
            };
            let opts = PullOptions {
                progress: true,
                ..Default::default()
            };
            let is_file = target.ends_with(".toml") || Path::new(&target).is_file();
            if is_file {
                let mut matrix = match load(Path::new(&target)) {
                    Ok(m) => m,
                    Err(c) => return c,
                };
                let mode = if update {
                    LockMode::Update
                } else {
                    LockMode::Use
                };
                match resolve::resolve(&mut matrix, &store, &opts, mode) {
                    Ok(images) if images.is_empty() => {
                        println!(
                            "{target}: no images (cells run on a rootfs directory or the host)"
                        );
                    }
                    Ok(images) => {
                        for (r, i) in &images {
                            println!(
                                "{r}  {}  {}  {} layer(s)",
                                i.digest,
                                i.platform,
                                i.layers.len()
                            );
                            for note in &i.notes {
                                eprintln!("warning: {r}: {note}");
                            }
                        }
                        println!("pinned in {}", resolve::lock_path(&matrix).display());
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return code(e.exit_code());
                    }
                }
            } else {
                match image::pull(&store, &target, &opts) {
                    Ok(i) => {
                        println!(
                            "{}  {}  {}  {} layer(s)",
                            i.reference,
                            i.digest,
                            i.platform,
                            i.layers.len()
                        );
                        for note in &i.notes {
                            eprintln!("warning: {}: {note}", i.reference);
                        }
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return code(e.exit_code());
                    }
                }
            }
            code(exit::OK)
        }
        Command::Images { action, cache } => {
            let store = match cache.open() {
                Ok(s) => s,
                Err(c) => return c,
            };
            match action {
                None => {
                    let list = image::list(&store);
                    if list.is_empty() {
                        println!("no cached images in {}", store.root().display());
                    }
                    for img in list {
                        let age = img
                            .last_used
                            .elapsed()
                            .map(|d| d.as_secs() / 86_400)
                            .unwrap_or(0);
                        println!(
                            "{}  {}  {}  {}  last used {} day(s) ago",
                            img.references.join(", "),
                            &img.digest[..img.digest.len().min(19)],
                            img.platform,
                            benchbox::metrics::human_bytes(img.size as f64),
                            age
                        );
                    }
                }
                Some(ImagesAction::Prune { lock, out }) => {
                    let keep = match images_in_use(&lock, &out) {
                        Ok(k) => k,
                        Err(e) => {
                            eprintln!("error: {e}");
                            return code(exit::USAGE);
                        }
                    };
                    let report = image::prune(&store, &keep);
                    println!(
                        "removed {} image(s), {} blob(s), {} layer(s), {}; kept {} pinned or recently used",
                        report.images.len(),
                        report.blobs,
                        report.layers,
                        benchbox::metrics::human_bytes(report.bytes as f64),
                        keep.len()
                    );
                    for e in &report.errors {
                        eprintln!("warning: {e}");
                    }
                }
            }
            code(exit::OK)
        }
        Command::Import {
            dir,
            tag,
            push,
            cache,
        } => {
            let store = match cache.open() {
                Ok(s) => s,
                Err(c) => return c,
            };
            let imported = match image::import_dir(&store, &dir, &tag) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(e.exit_code());
                }
            };
            println!("{}  {}", imported.reference, imported.digest);
            if let Some(dest) = push {
                let dest = if dest.is_empty() { tag.clone() } else { dest };
                match image::push(&store, &tag, &dest, &PullOptions::default()) {
                    Ok(d) => println!("pushed {dest}  {d}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return code(e.exit_code());
                    }
                }
            }
            code(exit::OK)
        }
        Command::Doctor => {
            let (cgroups, _) = match runner::cgroup_facts(None) {
                Ok(facts) => facts,
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(e.exit_code());
                }
            };
            let version = match &cgroups {
                benchbox::mode::Cgroups::Usable(v)
                | benchbox::mode::Cgroups::NotDelegated { version: v, .. } => Some(v.to_string()),
                benchbox::mode::Cgroups::Unusable(_) => None,
            };
            let root = nix::unistd::geteuid().is_root();
            // Rootless: whether this user gets a user namespace, and with which ids.
            let userns = (!root).then(|| match runner::usable_id_map() {
                Ok((map, warning)) => {
                    let ids = benchbox::mode::ids_text(&map.uids).unwrap_or_default();
                    Ok(match warning {
                        Some(w) => format!("{ids} ({})", w.lines().next().unwrap_or_default()),
                        None => ids.to_string(),
                    })
                }
                Err(e) => Err(e.to_string()),
            });
            let privilege = host::Privilege {
                root,
                cgroups,
                userns,
                systemd: Path::new("/run/systemd/system").is_dir(),
            };
            let roots = host::Roots::default();
            let info = host::collect(&roots, version);
            println!(
                "host: {} ({}), kernel {}, {} cpus, {}",
                info.hostname,
                info.cpu_model,
                info.kernel,
                info.logical_cpus,
                benchbox::metrics::human_bytes(info.memory_bytes as f64)
            );
            let findings = host::doctor(
                &info,
                &privilege,
                host::has_overlay(&roots),
                benchbox::sandbox::security::kernel_support(),
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
        Command::Report {
            run,
            reference,
            format,
        } => {
            let dir = match benchbox::results::run_dir(&run) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(exit::USAGE);
                }
            };
            // A run still being written is left alone: its files are the writer's.
            let _lock = match lock::RunLock::acquire(&dir, "report") {
                Ok(l) => l,
                Err(lock::LockError::InUse { holder, .. }) => {
                    eprintln!(
                        "error: the run `{}` is still running ({holder} holds its lock); report leaves its files as they are\n  hint: wait for it to finish, or look at it now with `benchbox compare --allow-partial`",
                        dir.display()
                    );
                    return code(exit::IN_USE);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return code(exit::INTERNAL);
                }
            };
            report_command(&dir, reference, &format)
        }
        Command::Compare {
            base,
            candidate,
            metric,
            threshold,
            strict,
            allow_partial,
            format,
            resamples,
        } => compare_command(
            &base,
            &candidate,
            &metric,
            &threshold,
            strict,
            allow_partial,
            format,
            resamples,
        ),
    }
}

/// `benchbox report`, with the run's lock held.
fn report_command(run: &Path, reference: Option<String>, format: &[ReportFormat]) -> ExitCode {
    match report::rebuild(run, reference.as_deref()) {
        Ok((results, written)) => {
            for w in &written.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", ui::summary_table(&results));
            println!("wrote {}", written.results_json.display());
            println!("wrote {}", written.summary_md.display());
            let formats: Vec<benchbox::render::Format> = if format.contains(&ReportFormat::All) {
                benchbox::render::Format::ALL.to_vec()
            } else {
                format.iter().filter_map(|f| f.render_format()).collect()
            };
            let opts = benchbox::render::RenderOptions { reference };
            match benchbox::render::write(&results, run, &opts, &formats) {
                Ok(paths) => {
                    let plots = paths
                        .iter()
                        .filter(|p| p.parent().is_some_and(|d| d.ends_with("plots")))
                        .count();
                    for p in paths
                        .iter()
                        .filter(|p| !p.parent().is_some_and(|d| d.ends_with("plots")))
                    {
                        println!("wrote {}", p.display());
                    }
                    if plots > 0 {
                        println!(
                            "wrote {plots} plot files in {}",
                            run.join("plots").display()
                        );
                    }
                    code(exit::OK)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    code(exit::USAGE)
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            code(match e {
                report::ReportError::Results(benchbox::results::ResultsError::Write { .. }) => {
                    exit::INTERNAL
                }
                _ => exit::USAGE,
            })
        }
    }
}

/// One side of `compare`: the run read back, validated against its plan, with what the reader
/// must know (a torn last row left out; a run still going, or left `running` by a benchbox that
/// died, which is then not complete).
fn load_for_compare(
    given: &Path,
    side: &str,
    warnings: &mut Vec<String>,
) -> Result<benchbox::results::RunResults, ExitCode> {
    let (mut run, read) = benchbox::results::load_checked(given).map_err(|e| {
        eprintln!("error: {e}");
        code(exit::USAGE)
    })?;
    warnings.extend(read.into_iter().map(|w| format!("{side}: {w}")));
    if let Ok(dir) = benchbox::results::run_dir(given) {
        match lock::holder(&dir) {
            Some(holder) => {
                run.status = benchbox::status::RunStatus::Running;
                warnings.push(format!(
                    "the {side} run `{}` is still running ({holder} holds its lock)",
                    dir.display()
                ));
            }
            None if run.status == benchbox::status::RunStatus::Running => {
                run.status = benchbox::status::RunStatus::Interrupted;
                warnings.push(format!(
                    "the {side} run `{}` was never finished: the benchbox that ran it stopped before the end\n  hint: `benchbox report {0}` marks it, `benchbox run MATRIX --resume {0}` finishes it",
                    dir.display()
                ));
            }
            None => {}
        }
    }
    Ok(run)
}

#[allow(clippy::too_many_arguments)]
fn compare_command(
    base: &Path,
    candidate: &Path,
    metric: &[String],
    threshold: &str,
    strict: bool,
    allow_partial: bool,
    format: Format,
    resamples: usize,
) -> ExitCode {
    let mut read_warnings = Vec::new();
    let (base, candidate) = match (
        load_for_compare(base, "base", &mut read_warnings),
        load_for_compare(candidate, "candidate", &mut read_warnings),
    ) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let threshold = match compare::parse_threshold(threshold) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return code(exit::USAGE);
        }
    };
    let mut metrics = Vec::new();
    for m in metric {
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
        allow_partial,
    };
    let mut cmp = compare::compare(&base, &candidate, &opts);
    cmp.warnings.splice(0..0, read_warnings);
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

/// Digests to keep when pruning: every lock file given (default `envs/*.lock`) and every image
/// a run under `out` used in the last 30 days.
fn images_in_use(
    locks: &[PathBuf],
    out: &Path,
) -> Result<std::collections::HashSet<String>, String> {
    let mut keep = std::collections::HashSet::new();
    let mut files: Vec<PathBuf> = locks.to_vec();
    if files.is_empty()
        && let Ok(entries) = std::fs::read_dir("envs")
    {
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "lock")),
        );
    }
    for file in files {
        match image::lock::LockFile::read(&file) {
            Ok(Some(lock)) => keep.extend(lock.images.values().map(|l| l.digest.clone())),
            Ok(None) => return Err(format!("lock file `{}` does not exist", file.display())),
            Err(e) => return Err(e.to_string()),
        }
    }
    let recent = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
    for matrix_dir in std::fs::read_dir(out).into_iter().flatten().flatten() {
        for run in std::fs::read_dir(matrix_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let results = run.path().join("results.json");
            let fresh = std::fs::metadata(&results)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= recent);
            if run.file_name() == "latest" || !fresh {
                continue;
            }
            if let Ok(r) = benchbox::results::RunResults::read(&run.path()) {
                keep.extend(r.plan.cells.iter().filter_map(|c| c.image_digest.clone()));
            }
        }
    }
    Ok(keep)
}

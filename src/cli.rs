//! The command line's surface: every command, flag and help text (clap), and nothing else. What
//! a command does is in `commands/`; `--help` is read from here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use benchbox::exit;

const ABOUT: &str = "Reproducible benchmarks: a TOML matrix of cells, each invocation in a fresh, isolated container \
with pinned cgroup limits, measured from exec to exit.";

#[derive(Parser)]
#[command(name = "benchbox", version, about = ABOUT, after_help = exit::HELP_TABLE)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Parse and validate a matrix file; errors point at file:line:col.
    #[command(after_help = exit::HELP_TABLE)]
    Check(CheckArgs),
    /// Print every cell of a matrix: id, axis values, root, limits, command.
    #[command(after_help = exit::HELP_TABLE)]
    Plan(PlanArgs),
    /// Run a matrix: warm-ups, then measured invocations, each in a fresh container.
    ///
    /// Results go to OUT/NAME/RUN-ID/ (runs.csv, results.json, logs/) and OUT/NAME/latest
    /// points at the newest run. Ctrl-C stops after tearing down the invocation in flight;
    /// finish the run later with --resume. Must run as root.
    #[command(after_help = exit::HELP_TABLE)]
    Run(RunArgs),
    /// Measure each cell's noise and say how many invocations it needs.
    ///
    /// Runs every cell through the normal runner (same isolation) for a short budget,
    /// interleaved; the even and odd invocations of a cell are an A/A pair. Per cell it prints
    /// the coefficient of variation of wall and CPU time (and of a metric named
    /// `instructions`, when the matrix has one), the invocations a side `compare` needs to
    /// find a slowdown of --effect in --power of trials at --threshold, and the smallest
    /// slowdown it finds at the matrix's `runs`. Both come from seeded simulations through
    /// compare's own code, resampling the cell's measured wall times (no normal-theory
    /// formula). --write sets `runs` in the file (or `max-runs` for `runs = "auto"`) to the
    /// largest need, keeping comments and layout. The calibration run itself is not kept.
    #[command(after_help = exit::HELP_TABLE)]
    Calibrate(CalibrateArgs),
    /// Fetch and pin images: for a matrix FILE every image it names (recording the digests in
    /// its lock file, envs/NAME.lock), or one image REF.
    ///
    /// References are written as users write them: `eclipse-temurin:21-jre` is
    /// docker.io/library/eclipse-temurin:21-jre; tags, @sha256: digests and host:port
    /// registries work. Registries on localhost/127.0.0.1 are reached over plain HTTP; add more
    /// with BENCHBOX_INSECURE_REGISTRIES=host:port,... Credentials come from
    /// ~/.docker/config.json when present.
    #[command(after_help = exit::HELP_TABLE)]
    Pull(PullArgs),
    /// List the cached images (references, digest, size, last use), or prune them.
    #[command(after_help = exit::HELP_TABLE)]
    Images(ImagesArgs),
    /// Make a reproducible single-layer image from a directory (sorted entries, owner 0:0,
    /// fixed mtimes: the same input gives the same digest), store it, optionally push it.
    #[command(after_help = exit::HELP_TABLE)]
    Import(ImportArgs),
    /// What on this host adds noise to measurements or blocks isolation.
    ///
    /// Isolation findings are `ok`, `warn` or `FAIL` (blocks runs: exit 3). Noise findings on
    /// the checked cpus (load, steal, ASLR, transparent huge pages, isolated cpus, IRQ affinity,
    /// hardware counters, turbo, governor, and a live sample of each cpu's busy share, steal and
    /// runnable tasks) are `ok`, `warn` or `fail`, each with a hint; they never change the exit
    /// code unless --strict.
    #[command(after_help = exit::HELP_TABLE)]
    Doctor(DoctorArgs),
    /// Rebuild a run's summaries and summary.md from its runs.csv.
    ///
    /// runs.csv is the source of truth: every cell's samples, statistics, warnings and failure
    /// count are recomputed from it with the run's recorded seed and options, then results.json
    /// (atomically) and summary.md are rewritten. Running it again gives the same bytes.
    #[command(after_help = exit::HELP_TABLE)]
    Report(ReportArgs),
    /// Compare two runs cell by cell, or one run's cells along an axis, and gate on regressions.
    ///
    /// Two runs (BASE CANDIDATE): cells are paired by id; cells whose ids differ (a new image
    /// digest) but whose axis values are identical are paired with a warning.
    ///
    /// One run (RUN --along AXIS [--base VALUE]), e.g. an axis rev = ["base", "head"] whose
    /// values mount two builds, measured on one machine, interleaved: each cell is paired with
    /// the cell that differs from it only in AXIS and has the base value there (default: the
    /// axis's first declared value). A cell without such a partner, an axis or a base value
    /// the run does not have, or an axis with one value is an error (exit 2).
    ///
    /// Per pair: the change of the median (candidate / base - 1) with its bootstrap confidence
    /// interval, a Mann-Whitney U test, and q, its p-value adjusted by Benjamini-Hochberg
    /// across every pair and metric of the report.
    ///
    /// Verdicts, with threshold t (for lower-is-better metrics; mirrored for higher-is-better):
    ///   regression    the whole CI lies above +t, and q <= 0.05
    ///   improvement   the whole CI lies below -t, and q <= 0.05
    ///   unchanged     the whole CI lies within [-t, +t]
    ///   inconclusive  anything else (a CI straddling a bound, too few invocations to
    ///                 form an interval, no invocation with status ok on one side)
    ///
    /// Exit status: 0 when no pair regressed; 10 when one did. With --strict, an inconclusive
    /// pair also exits 10. Unpaired cells of two runs are listed and never fail the gate.
    /// Exit 6 (nothing comparable, before 10) when no pair was compared, when a run is not
    /// complete (running, interrupted; unless --allow-partial), or when a compared cell has no
    /// invocation with status ok (or a compared metric no value) on a side. When
    /// GITHUB_STEP_SUMMARY is set, the Markdown report is appended to that file.
    #[command(after_help = exit::HELP_TABLE, verbatim_doc_comment)]
    Compare(CompareArgs),
    /// Follow every cell and metric across many runs, find where they changed, and gate on it.
    ///
    /// DIR is a results directory (reports/NAME, holding run directories) or a run directory;
    /// several are merged. Only complete runs count (the others are listed as skipped). Per
    /// cell and metric, the run medians form a series ordered by the revision each run
    /// measured (its commit time, else the run's end; see `run --rev`), then by the run's end.
    ///
    /// Change points: E-Divisive with means, each kept when a t-test between the windows
    /// before and after is significant (--p-value) and the step is at least --min-change. Per
    /// change point: the revision where it appears, the one before, regression or improvement
    /// (by the metric's direction), and the step median(after) / median(before) - 1 over the
    /// invocations of the runs on each side, with its 95% bootstrap interval (seed 0).
    ///
    /// --check: exit 10 when a regression not acknowledged in the accepted file still holds
    /// at the newest run (in a series the newest run is part of), else 0. The accepted file
    /// (default envs/NAME.accepted.toml beside the matrix) holds entries
    ///   [[accepted]]
    ///   revision = "3f2a9c1"   # where the change appears: id prefix or describe
    ///   metric = "wall"
    ///   cell = "n=1"           # optional: a label or id; every cell when left out
    ///   reason = "..."
    #[command(after_help = exit::HELP_TABLE, verbatim_doc_comment)]
    History(HistoryArgs),
    /// Print the completion script of a shell to stdout.
    ///
    /// bash: `benchbox completions bash > ~/.local/share/bash-completion/completions/benchbox`;
    /// zsh: into a directory of $fpath as `_benchbox`; fish:
    /// `benchbox completions fish > ~/.config/fish/completions/benchbox.fish`.
    #[command(after_help = exit::HELP_TABLE)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, or write one page per command into a directory.
    ///
    /// `benchbox man | man -l -` reads it; `benchbox man --dir /usr/local/share/man/man1`
    /// installs benchbox.1 and benchbox-COMMAND.1 for each command.
    #[command(after_help = exit::HELP_TABLE)]
    Man(ManArgs),
    /// Merge the shards of one run (`run --shard K/N`, on one machine or many) into one run
    /// directory.
    ///
    /// Refused (exit 2): shards of different matrix files, plans (cells, the lock file's image
    /// digests, --runs, --warmup, --only), benchbox versions, shard counts or --shard-by, a
    /// shard given twice or slices that overlap, and missing shards (unless --allow-missing).
    /// runs.csv gains a `host` column; results.json lists the shards (shard.merged); the
    /// summaries and reports are rebuilt as `report` does, with intervals bootstrapped within
    /// each host when the shards ran on more than one. Hosts that differ (CPU model, kernel,
    /// cgroup version) are warned about.
    #[command(after_help = exit::HELP_TABLE, verbatim_doc_comment)]
    Merge(MergeArgs),
    /// Write what runs a matrix's shards on an engine that exists: a Slurm batch script, a
    /// Kubernetes Indexed Job, or a GitHub Actions workflow matrix (to stdout).
    #[command(after_help = exit::HELP_TABLE)]
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' run directories (OUT/NAME/<run-id>-shard-K).
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// The merged run directory to write (new, or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Merge even when shards are missing (their invocations are reported as missing and the
    /// merged run is marked interrupted).
    #[arg(long)]
    pub allow_missing: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub engine: ExportEngine,
}

#[derive(clap::Subcommand)]
pub enum ExportEngine {
    /// An sbatch script: an array job of N shards (each `benchbox run --shard
    /// $SLURM_ARRAY_TASK_ID/N`), then a job that merges them once the array is done.
    /// Submit it with `bash SCRIPT` (it calls sbatch twice) or read it and adapt.
    Slurm(SlurmArgs),
    /// A Kubernetes Indexed Job of N pods (JOB_COMPLETION_INDEX is the shard), Guaranteed
    /// QoS with whole CPUs, the security context benchbox's root mode needs.
    K8s(K8sArgs),
    /// A GitHub Actions workflow: a matrix job per shard, each uploading its run, and a job
    /// that merges them.
    Github(GithubArgs),
}

#[derive(clap::Args)]
pub struct ExportCommon {
    /// The matrix file.
    pub file: PathBuf,
    /// How many shards.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(benchbox::plan::MAX_SHARDS)))]
    pub shards: u32,
    /// How the shards slice the plan (see `run --shard-by`).
    #[arg(long, value_name = "MODE", default_value = "invocation")]
    pub shard_by: ShardByArg,
    /// Where the shards write their runs (shared by every shard) and the merge its run.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: String,
}

#[derive(clap::Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub common: ExportCommon,
    /// The partition (sbatch --partition).
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// The time limit of each shard (sbatch --time), e.g. 02:00:00.
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// The benchbox to run on the nodes.
    #[arg(long, default_value = "benchbox", value_name = "PATH")]
    pub benchbox: String,
}

#[derive(clap::Args)]
pub struct K8sArgs {
    #[command(flatten)]
    pub common: ExportCommon,
    /// The container image holding benchbox and the matrix's files.
    #[arg(long, default_value = "benchbox:latest", value_name = "IMG")]
    pub image: String,
    /// A PersistentVolumeClaim for the results (default: an emptyDir, copied out by hand).
    #[arg(long, value_name = "NAME")]
    pub pvc: Option<String>,
}

#[derive(clap::Args)]
pub struct GithubArgs {
    #[command(flatten)]
    pub common: ExportCommon,
    /// The runner label each shard runs on.
    #[arg(long, default_value = "ubuntu-latest", value_name = "LABEL")]
    pub runs_on: String,
}

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write benchbox.1 and one benchbox-COMMAND.1 per command into this directory (made if
    /// missing) instead of printing benchbox.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Results directories (reports/NAME) or run directories.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Metric to follow: wall, cpu, memory, user, system, io_read, io_write or a custom
    /// metric's name (repeatable). Default: wall, cpu, memory and every custom metric.
    #[arg(long, value_name = "M")]
    pub metric: Vec<String>,
    /// From this run on: a revision (id prefix, `git describe`), a run id or a date
    /// (YYYY-MM-DD, of the commit, else of the run).
    #[arg(long, value_name = "REV|DATE")]
    pub since: Option<String>,
    /// Up to this run (included): as --since.
    #[arg(long, value_name = "REV|DATE")]
    pub until: Option<String>,
    /// A change point's t-test must give at most this p-value.
    #[arg(long, default_value_t = 0.001, value_name = "P")]
    pub p_value: f64,
    /// Smallest step that counts, in percent ("5%" or "5").
    #[arg(long, default_value = "5%", value_name = "P")]
    pub min_change: String,
    /// Runs on each side of a change point that its test, and its step's interval, look at.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(2..), value_name = "N")]
    pub window: u32,
    /// Output format (to stdout).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a self-contained history.html (inline SVG trend plots) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write a trend plot per cell and metric to DIR (history-*.svg and .png).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Exit 10 when a regression not accepted holds at the newest run.
    #[arg(long)]
    pub check: bool,
    /// The accepted file (default: NAME.accepted.toml beside the newest run's matrix file).
    #[arg(long, value_name = "FILE")]
    pub accepted: Option<PathBuf>,
    /// Bootstrap resamples for the steps' intervals (default 10,000).
    #[arg(long)]
    pub resamples: Option<usize>,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The matrix file (envs/NAME.toml).
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The matrix file.
    pub file: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The matrix file.
    pub file: PathBuf,
    /// Measured invocations per cell, at least 1 (overrides `runs` in the file; the cell ids
    /// stay).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: Option<u32>,
    /// Warm-up invocations per cell (overrides `warmup`).
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Run only cells with this axis value, e.g. --only jdk=21 (repeatable: AND across
    /// axes, OR within one axis).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub only: Vec<String>,
    /// Results directory.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Complete an earlier run: a run directory, or a run id (or `latest`) under OUT/NAME.
    /// Exactly the missing (cell, invocation) pairs are run.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<String>,
    /// Scratch space (not on overlayfs): the mount points of the containers, setup steps'
    /// layers, and the writable layers of cells with `scratch = "disk"` (by default a
    /// container's writable layer is a tmpfs of its own). Default: the temp directory.
    #[arg(long, env = "BENCHBOX_SCRATCH", value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// The cgroup v2 group to make the invocations' groups in: a cgroup path
    /// (/benchbox.slice/bench) or the same under /sys/fs/cgroup. Default: benchbox's own
    /// group when it is delegated (systemd's Delegate=yes), which benchbox then leaves for
    /// a leaf of it, else /sys/fs/cgroup/benchbox. On cgroup v1, the same path in every
    /// controller's hierarchy.
    #[arg(long, env = "BENCHBOX_CGROUP_PARENT", value_name = "PATH")]
    pub cgroup_parent: Option<PathBuf>,
    /// Bootstrap resamples for the confidence intervals. Default 10,000, fewer for large cells
    /// (and order-statistic intervals of medians above 1,000 invocations); a value given here
    /// is used for every interval, at any size.
    #[arg(long)]
    pub resamples: Option<usize>,
    /// Fail (exit 4) unless the lock file pins every image; never write it (for CI).
    #[arg(long)]
    pub locked: bool,
    /// The source revision measured, recorded in results.json and the reports and ordering
    /// `benchbox history`. Default: GITHUB_SHA when set, else `git rev-parse HEAD` of the
    /// repository holding the matrix file (none outside one).
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// The branch of that revision. Default: GITHUB_HEAD_REF or GITHUB_REF_NAME, else git's.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Run one shard of the plan, K of N (from 0), for a matrix spread over machines (a Slurm
    /// array, a Kubernetes Indexed Job, a CI matrix): written to OUT/NAME/<run-id>-shard-K,
    /// never moving `latest`; combine the shards with `benchbox merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<benchbox::plan::Shard>,
    /// How --shard slices the plan: `invocation` (every shard runs every cell and its
    /// warm-ups, and measured invocations i with i mod N = K: each machine measures every
    /// cell) or `cell` (each cell whole in one shard, for cells never compared).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "invocation",
        requires = "shard"
    )]
    pub shard_by: ShardByArg,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// `--shard-by`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ShardByArg {
    Invocation,
    Cell,
}

impl From<ShardByArg> for benchbox::plan::ShardBy {
    fn from(a: ShardByArg) -> Self {
        match a {
            ShardByArg::Invocation => benchbox::plan::ShardBy::Invocation,
            ShardByArg::Cell => benchbox::plan::ShardBy::Cell,
        }
    }
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The matrix file.
    pub file: PathBuf,
    /// The slowdown to detect, e.g. 10% (must exceed --threshold: the gate needs the whole
    /// interval beyond it).
    #[arg(long, default_value = "10%")]
    pub effect: String,
    /// The fraction of trials in which the slowdown must be found.
    #[arg(long, default_value_t = 0.95)]
    pub power: f64,
    /// How long the calibration run may take, e.g. 2m (each cell still gets 6 invocations).
    #[arg(long, default_value = "2m")]
    pub budget: String,
    /// compare's --threshold the gate will use.
    #[arg(long, default_value = "5%")]
    pub threshold: String,
    /// Calibrate only cells with this axis value (as `run --only`).
    #[arg(long, value_name = "AXIS=VALUE")]
    pub only: Vec<String>,
    /// Write the largest need into the file's `runs` (or `max-runs` for `runs = "auto"`).
    #[arg(long)]
    pub write: bool,
    /// Scratch space, as for `run`.
    #[arg(long, env = "BENCHBOX_SCRATCH", value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(clap::Args)]
pub struct PullArgs {
    /// A matrix file (*.toml) or an image reference.
    pub target: String,
    /// Re-resolve every tag at its registry, even when the lock file pins it.
    #[arg(long)]
    pub update: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// A matrix: check the cpus its cells pin (`cpus`), every online cpu if none pins.
    pub file: Option<PathBuf>,
    /// The cpus to check, in the matrix's cpuset syntax ("0-1,3"); default: every online cpu.
    #[arg(long, value_name = "LIST", conflicts_with = "file")]
    pub cpus: Option<String>,
    /// Skip the live sample (about a second) of each cpu's load.
    #[arg(long)]
    pub no_sample: bool,
    /// Exit 8 when a noise check is `warn` or `fail` (by default noise never changes the exit
    /// code; a blocking isolation finding still exits 3).
    #[arg(long)]
    pub strict: bool,
    /// Set the safe quiet settings (every online cpu's governor to performance, transparent
    /// huge pages and their defrag from always to madvise, turbo off), saving the old values
    /// in /run/benchbox/tune.json for --reset; runs record them while in effect.
    #[arg(long, conflicts_with_all = ["reset", "file", "cpus"])]
    pub tune: bool,
    /// Put back the settings --tune changed.
    #[arg(long, conflicts_with_all = ["file", "cpus"])]
    pub reset: bool,
}

#[derive(clap::Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub action: Option<ImagesAction>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The directory that becomes the image's root filesystem.
    pub dir: PathBuf,
    /// The reference to store it under (e.g. 127.0.0.1:5000/bench/busybox:1).
    #[arg(long)]
    pub tag: String,
    /// Also push it to its registry (to the --tag reference, or to this one).
    #[arg(long, value_name = "REF", num_args = 0..=1, default_missing_value = "")]
    pub push: Option<String>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A run directory, e.g. reports/NAME/latest.
    pub run: PathBuf,
    /// The one cell every output compares the others with, for every metric:
    /// axis=value[,axis=value...] pairs that only it has (numbers compare as numbers), its
    /// label or its id. Default: the cell with the fastest median wall time. A value that
    /// names no cell or several is an error (exit 2) before anything is written.
    #[arg(long, value_name = "AXIS=VALUE")]
    pub reference: Option<String>,
    /// Which reports to write besides results.json and summary.md (repeatable or
    /// comma-separated): html (report.html), tex (table.tex, macros.tex and the pgfplots
    /// figures plots/medians-*.tex, *.csv), csv (results.csv, the statistics), bmf
    /// (bencher.json), plots (plots/*.pdf, *.svg, *.png, captions.tex), all.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub format: Vec<ReportFormat>,
    /// Bootstrap resamples for every interval, at any cell size, instead of the run's recorded
    /// count and the large-cell rule (recorded in results.json).
    #[arg(long)]
    pub resamples: Option<usize>,
    /// table.tex for a `table*` across both columns of a two-column paper (full headers, each
    /// interval beside its median) instead of one column (abbreviated headers with a key,
    /// intervals under their medians).
    #[arg(long)]
    pub wide: bool,
    /// How table.tex writes a median's interval: brackets ("123 [116, 131]", its ends) or pm
    /// ("123 ± 7.5", half its width).
    #[arg(long, value_enum, default_value = "brackets", value_name = "STYLE")]
    pub ci_style: CiStyle,
    /// In table.tex, a dagger on each median whose ratio to the reference cell has a
    /// confidence interval excluding 1 (explained in the table's note).
    #[arg(long)]
    pub marks: bool,
    /// Figure width: column (3.5 in), page (7 in) or a length (5in, 12cm). Overrides the
    /// matrix's [report] figure-width.
    #[arg(long, value_name = "W", value_parser = benchbox::spec::report_options::parse_width)]
    pub figure_width: Option<f64>,
    /// Tick-label size in points (titles 1 pt larger; default 8).
    #[arg(long, value_name = "PT", value_parser = parse_font_size)]
    pub font_size: Option<f64>,
    /// Logarithmic value axes: auto (when a figure's values span over 20x), always, never.
    #[arg(long, value_name = "WHEN", value_parser = benchbox::spec::report_options::parse_log_scale)]
    pub log_scale: Option<benchbox::spec::report_options::LogScale>,
    /// Figure colours: okabe-ito (default) or grey (for print).
    #[arg(long, value_name = "P", value_parser = benchbox::spec::report_options::parse_palette)]
    pub palette: Option<benchbox::spec::report_options::Palette>,
}

fn parse_font_size(text: &str) -> Result<f64, String> {
    let pt: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of points"))?;
    benchbox::spec::report_options::check_font_size(pt)
}

/// `report --ci-style`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CiStyle {
    Brackets,
    Pm,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The base run directory (e.g. reports/NAME/latest of the main branch); with --along, the
    /// one run whose cells are compared.
    pub base: PathBuf,
    /// The candidate run directory (not with --along).
    #[arg(required_unless_present = "along", conflicts_with = "along")]
    pub candidate: Option<PathBuf>,
    /// Compare the cells of one run along this axis: each cell against the cell that differs
    /// only in AXIS and has the base value there (e.g. `rev = ["base", "head"]`, two builds
    /// measured on one machine, interleaved). Every cell must have such a partner.
    #[arg(long, value_name = "AXIS")]
    pub along: Option<String>,
    /// With --along: the base value of AXIS (default: its first declared value).
    #[arg(long = "base", value_name = "VALUE", requires = "along")]
    pub base_value: Option<String>,
    /// Metric to compare: wall, cpu, memory, user, system, io_read, io_write, a perf_event
    /// counter (task_clock, context_switches, cpu_migrations, page_faults, instructions,
    /// cycles, branches, branch_misses, cache_misses) or a custom
    /// metric's name. Repeat to compare several (one FDR correction spans them all).
    #[arg(long, default_value = "wall", value_name = "M")]
    pub metric: Vec<String>,
    /// Smallest change that matters, in percent ("5%" or "5").
    #[arg(long, default_value = "5%", value_name = "P")]
    pub threshold: String,
    /// Inconclusive pairs fail too (exit 10).
    #[arg(long)]
    pub strict: bool,
    /// Compare runs that are not complete (still running, interrupted) with a warning,
    /// instead of exit 6.
    #[arg(long)]
    pub allow_partial: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Bootstrap resamples for the intervals of the ratios. Default 10,000, fewer for large
    /// cells (order statistics above 1,000 invocations); a value given here is used at any size.
    #[arg(long)]
    pub resamples: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Md,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    All,
    Html,
    Tex,
    Csv,
    Bmf,
    Plots,
}

#[derive(clap::Args)]
pub struct CacheArgs {
    /// The image cache directory (default: $XDG_CACHE_HOME/benchbox or ~/.cache/benchbox).
    #[arg(long, env = "BENCHBOX_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ImagesAction {
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

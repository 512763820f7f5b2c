//! One cell's typed values from its substituted sections: the environment, limits, security,
//! run and metric settings, each checked with a `file:line:col` error (the "cell" stage of the
//! spec pipeline; `expand.rs` expands the matrix, `build.rs` substitutes, `identity.rs` hashes
//! the id). The values of `[environment]` that name files are read in `environment.rs`,
//! `[limits]` and `[security]` in `limits.rs`; the run settings and metrics here.

use super::*;

/// One cell's template sections after substitution.
pub(super) struct Parts<'t> {
    pub(super) environment: Option<Cow<'t, Node>>,
    pub(super) limits: Option<Cow<'t, Node>>,
    pub(super) security: Option<Cow<'t, Node>>,
    pub(super) run: Option<Cow<'t, Node>>,
    pub(super) metrics: Option<Cow<'t, Node>>,
    pub(super) services: Option<Cow<'t, Node>>,
}

/// What building any cell of a matrix needs besides the cell's own sections.
#[derive(Clone, Copy)]
pub(super) struct Shared<'a> {
    pub(super) ctx: &'a ValidationContext,
    pub(super) base_dir: &'a Path,
    pub(super) accounts: &'a AccountFiles,
    pub(super) axes: &'a [Axis],
}

/// One cell's typed values, from its substituted sections. `id`, `slug`, `label` and `axes`
/// are left empty for the caller.
pub(super) fn build_cell(
    r: &Reporter,
    shared: &Shared,
    label: &str,
    parts: &Parts,
    warnings: &mut Warnings,
) -> Result<(Cell, IdParts)> {
    let Shared {
        ctx,
        base_dir,
        accounts: _,
        axes,
    } = *shared;
    let empty = Node::new(0..0, Kind::Table(Vec::new()));
    let env_t = parts.environment.as_deref().unwrap_or(&empty);
    let limits_t = parts.limits.as_deref().unwrap_or(&empty);
    let security_t = parts.security.as_deref().unwrap_or(&empty);

    let files = parse_files(r, ctx, base_dir, env_t)?;

    let network = r.choice(
        env_t.get("network"),
        Network::None,
        "network",
        &[("none", Network::None), ("host", Network::Host)],
        "valid networks: none (loopback only, the default), host",
    )?;
    let scratch = r.choice(
        env_t.get("scratch"),
        Scratch::Memory,
        "scratch",
        &[("memory", Scratch::Memory), ("disk", Scratch::Disk)],
        "valid scratch places: memory (a tmpfs, the default), disk",
    )?;

    let limits = parse_limits(r, ctx, limits_t, label, warnings)?;
    let security = parse_security(r, security_t, label, warnings)?;

    // [run]
    // With an image, no command means the image's own Entrypoint + Cmd (an empty argv here).
    let from_image = matches!(files.root, Root::Image(_));
    let empty_run = Node::new(0..0, Kind::Table(Vec::new()));
    let run_t = match parts.run.as_deref() {
        Some(t) => t,
        None if from_image => &empty_run,
        None => {
            return Err(r.at(
                &(0..0),
                "missing [run] section",
                Some("add `[run]` with `command = [\"./bench\"]`".into()),
            ));
        }
    };
    let command = match run_t.get("command") {
        Some(command_e) => argv(r, command_e)?,
        None if from_image => Vec::new(),
        None => {
            return Err(r.at(
                &run_t.span,
                "missing `command` in [run]",
                Some("add `command = [\"./bench\"]` (or a string, run with /bin/sh -c)".into()),
            ));
        }
    };
    let setup = match run_t.get("setup") {
        Some(e) => Some(argv(r, e)?),
        None => None,
    };
    let warmup = match run_t.get("warmup") {
        Some(e) => r.int_in(e, 0, u32::MAX.into(), None)? as u32,
        None => DEFAULT_WARMUP,
    };
    let adaptive = adaptive_settings(r, run_t)?;
    let runs = match run_t.get("runs") {
        // The plan holds the cap: the stopping rule ends the cell earlier.
        _ if adaptive.is_some() => adaptive.map_or(DEFAULT_RUNS, |a| a.max_runs),
        Some(e) => r.int_in(
            e,
            1,
            u32::MAX.into(),
            Some("a cell needs at least one measured run, or `runs = \"auto\"`; to skip cells use `exclude` or --only"),
        )? as u32,
        None => DEFAULT_RUNS,
    };
    let timeout = match run_t.get("timeout") {
        None => Some(DEFAULT_TIMEOUT),
        Some(e) => duration_setting(r, e, &TIMEOUT_BOUNDS)?,
    };
    // How often the cgroup's memory is sampled during an invocation (the memory-over-time
    // plot); "none" turns sampling off.
    let memory_interval = match run_t.get("memory-interval") {
        None => Some(DEFAULT_MEMORY_INTERVAL),
        Some(e) => duration_setting(r, e, &MEMORY_INTERVAL_BOUNDS)?,
    };

    let (services, id_services) = match parts.services.as_deref() {
        Some(t) => parse_services(r, shared, t, label, warnings)?,
        None => (Vec::new(), Vec::new()),
    };
    let service_names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let mut metrics = parse_metrics(r, parts.metrics.as_deref(), axes, &service_names)?;
    metrics.extend(service_metrics(&services));
    // A setup step may add the user.
    if setup.is_none() {
        check_user(
            r,
            shared,
            env_t,
            files.user.as_deref(),
            &files.volumes,
            &files.root,
        )?;
    }

    // How much of each stream's output an invocation's log keeps (what the metric patterns
    // see); "none": all of it. Not part of the id: it changes what is kept, not what runs.
    let max_log = match run_t.get("max-log") {
        None => Some(DEFAULT_MAX_LOG),
        Some(e) => {
            let bytes = match &e.value.kind {
                Kind::Str(s) if s.trim().eq_ignore_ascii_case("none") => None,
                Kind::Str(s) => Some(units::parse_size(s).map_err(|why| {
                    r.node(
                        &e.value,
                        format!("invalid size `{s}` for `max-log`: {why}"),
                        Some("write a size like \"16MiB\" or \"1GiB\", or \"none\" to keep all output".into()),
                    )
                })?),
                Kind::Int(_) => Some(r.int_in(e, 0, i64::MAX, None)? as u64),
                _ => return Err(r.wrong_type(&e.key, &e.value, "a size such as \"16MiB\", or \"none\"")),
            };
            if bytes == Some(0) {
                return Err(r.node(
                    &e.value,
                    "`max-log` of 0 bytes would keep no output (and no metric could match)",
                    Some("write a size like \"16MiB\", or \"none\" to keep all output".into()),
                ));
            }
            bytes
        }
    };

    // When an invocation counts as disturbed. Not part of the id: it changes what is recorded
    // about a run, not what runs.
    let disturbance_threshold = match run_t.get("disturbance-threshold") {
        None => None,
        Some(e) => match &e.value.kind {
            Kind::Str(s) => Some(crate::disturbance::parse_threshold(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid `disturbance-threshold`: {why}"),
                    Some("write a percentage of the cell's CPU time, like \"5%\"".into()),
                )
            })?),
            _ => return Err(r.wrong_type(&e.key, &e.value, "a percentage such as \"5%\"")),
        },
    };

    // Run a disturbed measured invocation again, in place. Not part of the id: the cell
    // measures the same thing, and a run with it compares with one without.
    let rerun_disturbed = match run_t.get("rerun-disturbed") {
        None => false,
        Some(e) => match e.value.kind {
            Kind::Bool(b) => b,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a boolean")),
        },
    };

    // perf_event counters on each invocation; `false` turns them off. Not part of the id.
    let counters = match run_t.get("counters") {
        None => true,
        Some(e) => match e.value.kind {
            Kind::Bool(b) => b,
            _ => return Err(r.wrong_type(&e.key, &e.value, "a boolean")),
        },
    };

    let cell = Cell {
        id: String::new(),
        label: String::new(),
        slug: String::new(),
        axes: Vec::new(),
        root: files.root,
        image_digest: None,
        workdir: files.workdir,
        user: files.user,
        volumes: files.volumes,
        env: files.env,
        network,
        scratch,
        limits,
        security,
        command,
        setup,
        warmup,
        runs,
        adaptive,
        timeout,
        memory_interval,
        max_log,
        disturbance_threshold,
        rerun_disturbed,
        counters,
        metrics,
        services,
    };
    Ok((
        cell,
        IdParts {
            root: files.id_root,
            volumes: files.id_volumes,
            services: id_services,
        },
    ))
}

/// `runs = "auto"` and its `min-runs`, `max-runs`, `ci-width`, `budget`; None for a number of
/// runs (the four keys are then refused: they would do nothing).
fn adaptive_settings(r: &Reporter, run_t: &Node) -> Result<Option<Adaptive>> {
    let auto = match run_t.get("runs") {
        Some(e) => match &e.value.kind {
            Kind::Str(s) if s == "auto" => true,
            Kind::Str(s) => {
                return Err(r.node(
                    &e.value,
                    format!("expected an integer or \"auto\" for `runs`, found the string `{s}`"),
                    Some("give a number of measured runs, or \"auto\" to stop each cell once its median is known well enough".into()),
                ));
            }
            _ => false,
        },
        None => false,
    };
    if !auto {
        for key in ["min-runs", "max-runs", "ci-width", "budget"] {
            if let Some(e) = run_t.get(key) {
                return Err(r.node(
                    &e.value,
                    format!("`{key}` is only for `runs = \"auto\"`"),
                    Some(
                        "write `runs = \"auto\"` to stop cells adaptively, or remove the key"
                            .into(),
                    ),
                ));
            }
        }
        return Ok(None);
    }
    let count = |key: &str, default: u32| -> Result<u32> {
        match run_t.get(key) {
            Some(e) => Ok(r.int_in(
                e,
                1,
                100_000,
                Some("a number of measured runs, from 1 to 100000"),
            )? as u32),
            None => Ok(default),
        }
    };
    let min_runs = count("min-runs", DEFAULT_MIN_RUNS)?;
    let max_runs = count("max-runs", DEFAULT_MAX_RUNS.max(min_runs))?;
    if min_runs > max_runs {
        let e = run_t
            .get("max-runs")
            .or(run_t.get("min-runs"))
            .expect("one was given");
        return Err(r.node(
            &e.value,
            format!("min-runs ({min_runs}) is more than max-runs ({max_runs})"),
            Some("max-runs must be at least min-runs".into()),
        ));
    }
    let ci_width = match run_t.get("ci-width") {
        None => DEFAULT_CI_WIDTH,
        Some(e) => {
            let fraction = match &e.value.kind {
                Kind::Str(s) => s
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
                _ => None,
            };
            match fraction {
                Some(f) if f > 0.0 && f < 1.0 => f,
                _ => {
                    return Err(r.node(
                        &e.value,
                        "invalid `ci-width`: expected a percentage between 0% and 100%",
                        Some("for example ci-width = \"2%\": stop once the median's 95% interval is within ±2% of it".into()),
                    ));
                }
            }
        }
    };
    let budget = match run_t.get("budget") {
        None => None,
        Some(e) => duration_setting(r, e, &BUDGET_BOUNDS)?,
    };
    Ok(Some(Adaptive {
        min_runs,
        max_runs,
        ci_width,
        budget,
    }))
}

/// `[run] budget`: from a second to a week, or "none".
const BUDGET_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::from_secs(1),
    max: Duration::from_secs(7 * 86_400),
    min_text: "1s",
    max_text: "7 days",
    seconds: false,
    none: true,
    feature: "the budget",
    too_short: "a budget below a second stops every cell at min-runs",
    too_long: "for no budget at all write \"none\"",
    example: "\"10m\" or \"1h\"",
};

/// What a duration setting that "none" switches off may be, and what to say when it is not.
pub(super) struct DurationBounds {
    pub(super) min: Duration,
    pub(super) max: Duration,
    /// `min` and `max` as the messages write them.
    pub(super) min_text: &'static str,
    pub(super) max_text: &'static str,
    /// Integers are seconds (`timeout = 90`); otherwise only strings.
    pub(super) seconds: bool,
    /// "none" switches the feature off; without it, "none" is refused and zero is a duration
    /// like any other (checked against `min`).
    pub(super) none: bool,
    /// "the timeout": what zero would switch off.
    pub(super) feature: &'static str,
    /// Why not shorter than `min`, why not longer than `max`.
    pub(super) too_short: &'static str,
    pub(super) too_long: &'static str,
    pub(super) example: &'static str,
}

/// `[run] timeout`: from 100 ms (the watchdog looks every 20 ms from the container's start,
/// which itself takes milliseconds) to 7 days.
pub(super) const TIMEOUT_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(7 * 86_400),
    min_text: "100ms",
    max_text: "7 days",
    seconds: true,
    none: true,
    feature: "the timeout",
    too_short: "the watchdog checks every 20 ms from the start of the container, which itself takes a few: a shorter timeout kills invocations that barely started",
    too_long: "for no timeout at all write \"none\"",
    example: "\"90s\", \"2m\" or \"1h 30m\"",
};

/// `[run] memory-interval`: from 10 ms (more often perturbs the workload) to an hour.
pub(super) const MEMORY_INTERVAL_BOUNDS: DurationBounds = DurationBounds {
    min: Duration::from_millis(10),
    max: Duration::from_secs(3_600),
    min_text: "10ms",
    max_text: "1h",
    seconds: false,
    none: true,
    feature: "memory sampling",
    too_short: "sampling more often than every 10 ms would perturb the workload; use 10ms or more",
    too_long: "sampling less often than hourly draws no curve of memory use; to not sample at all write \"none\"",
    example: "\"100ms\" or \"1s\"",
};

/// A duration setting: "none" (`None`), or a duration within `b`. Zero is refused rather than
/// read as "off": only "none" switches a feature off.
pub(super) fn duration_setting(
    r: &Reporter,
    e: &Entry,
    b: &DurationBounds,
) -> Result<Option<Duration>> {
    let key = &e.key;
    let (written, duration) = match &e.value.kind {
        Kind::Str(s) => {
            let d = units::parse_duration_or_none(s).map_err(|why| {
                r.node(
                    &e.value,
                    format!("invalid duration `{s}` for `{key}`: {why}"),
                    Some(if b.none {
                        format!("write a duration like {}, or \"none\"", b.example)
                    } else {
                        format!("write a duration like {}", b.example)
                    }),
                )
            })?;
            (s.trim().to_string(), d)
        }
        Kind::Int(i) if b.seconds => {
            let secs = r.int_in(e, 0, i64::MAX, None)? as u64;
            (format!("{i}"), Some(Duration::from_secs(secs)))
        }
        _ if b.seconds => {
            return Err(r.wrong_type(key, &e.value, "a duration string or a number of seconds"));
        }
        _ => {
            return Err(r.wrong_type(
                key,
                &e.value,
                &format!("a duration string such as {}", b.example),
            ));
        }
    };
    let Some(d) = duration else {
        if b.none {
            return Ok(None);
        }
        return Err(r.node(
            &e.value,
            format!("`{key}` cannot be \"none\""),
            Some(format!("give a duration like {}", b.example)),
        ));
    };
    if d.is_zero() && b.none {
        return Err(r.node(
            &e.value,
            format!("a `{key}` of `{written}` would switch {} off", b.feature),
            Some(format!(
                "to switch it off write `{key} = \"none\"`; otherwise give a duration like {}",
                b.example
            )),
        ));
    }
    if d < b.min {
        return Err(r.node(
            &e.value,
            format!(
                "`{key}` of `{written}` is shorter than the minimum of {}",
                b.min_text
            ),
            Some(b.too_short.into()),
        ));
    }
    if d > b.max {
        return Err(r.node(
            &e.value,
            format!(
                "`{key}` of `{written}` is longer than the maximum of {}",
                b.max_text
            ),
            Some(b.too_long.into()),
        ));
    }
    Ok(Some(d))
}

pub(super) fn non_empty<'n>(r: &Reporter, e: &'n Entry) -> Result<&'n str> {
    let s = r.string(e)?;
    if s.trim().is_empty() {
        return Err(r.node(&e.value, format!("`{}` is empty", e.key), None));
    }
    Ok(s)
}

/// "cell jdk=17: " when one of `nodes` came from a placeholder (the warning may hold for some
/// cells only), else nothing (one warning for the whole matrix, as the duplicates are dropped).
pub(super) fn cell_prefix<'n>(label: &str, nodes: impl IntoIterator<Item = &'n Node>) -> String {
    if nodes.into_iter().any(|n| n.substituted) {
        format!("cell {label}: ")
    } else {
        String::new()
    }
}

/// A command: an argv array, or a string run with `/bin/sh -c`.
pub(super) fn argv(r: &Reporter, e: &Entry) -> Result<Vec<String>> {
    let expected = "a string or an array of strings";
    let argv = match &e.value.kind {
        Kind::Str(s) => {
            if s.trim().is_empty() {
                Vec::new()
            } else {
                vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()]
            }
        }
        Kind::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| r.wrong_type(&e.key, i, "a string"))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(r.wrong_type(&e.key, &e.value, expected)),
    };
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(r.node(
            &e.value,
            format!("`{}` is empty", e.key),
            Some(format!(
                "give the program to run, e.g. `{} = [\"./bench\", \"--fast\"]`",
                e.key
            )),
        ));
    }
    if let Some(bad) = argv.iter().find(|a| a.contains('\0')) {
        return Err(r.node(
            &e.value,
            format!("argument `{bad}` of `{}` contains a nul byte", e.key),
            None,
        ));
    }
    Ok(argv)
}

pub(super) fn parse_metrics(
    r: &Reporter,
    metrics: Option<&Node>,
    axes: &[Axis],
    services: &[&str],
) -> Result<Vec<MetricSpec>> {
    let Some(Node {
        kind: Kind::Array(tables),
        ..
    }) = metrics
    else {
        return Ok(Vec::new());
    };
    let mut out: Vec<MetricSpec> = Vec::new();
    let mut first_at: Vec<Range<usize>> = Vec::new();
    for t in tables {
        let Some(name_e) = t.get("name") else {
            return Err(r.at(
                &t.span,
                "missing `name` in [[metric]]",
                Some("add `name = \"throughput\"`".into()),
            ));
        };
        let name = r.string(name_e)?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(r.node(
                &name_e.value,
                format!("invalid metric name `{name}`"),
                Some("metric names become CSV columns: letters, digits, `_`, `.` and `-`, starting with a letter or `_`".into()),
            ));
        }
        if builtin_columns().iter().any(|c| c == name) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{name}` has the name of a column runs.csv always has"),
                Some(format!(
                    "rename the metric; runs.csv's own columns are {}",
                    builtin_columns().join(", ")
                )),
            ));
        }
        if let Some((standard, _)) = crate::metrics::builtin_names().find(|(n, _)| *n == name) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{standard}` has the name of a standard metric"),
                Some(format!(
                    "rename the metric; the standard metrics are {}",
                    crate::metrics::builtin_names()
                        .map(|(n, _)| n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
        if axes.iter().any(|a| a.name == name) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{name}` has the name of axis `{name}`: runs.csv would have two `{name}` columns"),
                Some("rename the metric or the axis".into()),
            ));
        }
        if let Some(service) = service_column(name, services) {
            return Err(r.node(
                &name_e.value,
                format!("metric `{name}` has the name of a column of service `{service}`"),
                Some(format!(
                    "benchbox measures `{name}` itself, from the service's cgroup: rename the metric"
                )),
            ));
        }
        if let Some(i) = out.iter().position(|m| m.name == name) {
            let (line, _) = line_col(r.source, first_at[i].start);
            return Err(r.node(
                &name_e.value,
                format!("duplicate metric name `{name}`"),
                Some(format!("the first `{name}` is on line {line}; rename one")),
            ));
        }
        // No pattern: the workload reports the metric in its BENCHBOX_METRICS file.
        let pattern = match t.get("pattern") {
            None => None,
            Some(pattern_e) => {
                let pattern = r.string(pattern_e)?;
                let re = regex::Regex::new(pattern).map_err(|e| {
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .find_map(|l| l.strip_prefix("error: "))
                        .unwrap_or(text.lines().last().unwrap_or_default());
                    r.node(
                        &pattern_e.value,
                        format!("invalid regex `{pattern}`: {why}"),
                        Some(
                            "literal braces in patterns are written `{{` and `}}` (placeholder escaping)"
                                .into(),
                        ),
                    )
                })?;
                let groups = re.captures_len() - 1;
                if groups != 1 {
                    return Err(r.node(
                        &pattern_e.value,
                        format!("pattern `{pattern}` has {groups} capture groups; it needs exactly one"),
                        Some("capture the number with `( )` and make other groups non-capturing with `(?: )`".into()),
                    ));
                }
                Some(pattern.to_string())
            }
        };
        let unit = match t.get("unit") {
            Some(e) => Some(r.string(e)?.to_string()),
            None => None,
        };
        let better = match t.get("better") {
            None => Better::default(),
            Some(e) => match r.string(e)? {
                "lower" => Better::Lower,
                "higher" => Better::Higher,
                other => {
                    return Err(r.node(
                        &e.value,
                        format!("invalid value `{other}` for `better`"),
                        Some("valid values: lower (the default), higher".into()),
                    ));
                }
            },
        };
        first_at.push(name_e.value.span.clone());
        out.push(MetricSpec {
            name: name.to_string(),
            pattern,
            unit,
            better,
            service: None,
        });
    }
    Ok(out)
}

//! `benchbox doctor`: what on this host adds noise to measurements or blocks isolation.

use std::time::Duration;

use benchbox::host::noise::{self, Grade};
use benchbox::mode::{self, Cgroups};
use benchbox::spec::CpuSet;
use benchbox::{exit, host, metrics, runner, sandbox};

use super::{CliError, Outcome, code};
use crate::cli::DoctorArgs;

/// How long the live sample watches the cpus.
const SAMPLE: Duration = Duration::from_secs(1);

pub fn run(args: DoctorArgs) -> Outcome {
    let roots = host::Roots::default();
    if args.tune || args.reset {
        return tune(&roots, args.tune);
    }
    let online = host::online_cpus(&roots);
    // The cpus to check, decided before anything is printed: bad input is an error up front.
    let cpus = match (&args.cpus, &args.file) {
        (Some(list), _) => {
            let set: CpuSet = list.parse().map_err(|e| {
                CliError::usage(format!(
                    "invalid --cpus `{list}`: {e}\n  hint: a cpu list as in a matrix's `cpus`, e.g. --cpus 0-1,3"
                ))
            })?;
            if !set.is_subset(&online) {
                return Err(CliError::usage(format!(
                    "--cpus {set}: not all online (online: {online})\n  hint: pick cpus from {online}"
                )));
            }
            set
        }
        (None, Some(file)) => {
            let matrix = super::open_matrix(file)?;
            let mut pins = Vec::with_capacity(matrix.len());
            for i in 0..matrix.len() {
                pins.push(matrix.cell(i)?.limits.cpus);
            }
            noise::run_cpus(pins.iter().map(Option::as_ref), &online)
        }
        (None, None) => online.clone(),
    };
    let (cgroups, _) = runner::cgroup_facts(None)?;
    let version = match &cgroups {
        Cgroups::Usable(v) | Cgroups::NotDelegated { version: v, .. } => Some(v.to_string()),
        Cgroups::Unusable(_) => None,
    };
    let root = nix::unistd::geteuid().is_root();
    // Rootless: whether this user gets a user namespace, and with which ids.
    let userns = (!root).then(|| match runner::usable_id_map() {
        Ok((map, warning)) => {
            let ids = mode::ids_text(&map.uids).unwrap_or_default();
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
        systemd: host::systemd_runs(&roots),
    };
    let info = host::collect(&roots, version);
    println!(
        "host: {} ({}), kernel {}, {} cpus, {}",
        info.hostname,
        info.cpu_model,
        info.kernel,
        info.logical_cpus,
        metrics::human_bytes(info.memory_bytes as f64)
    );
    let findings = host::doctor(
        &info,
        &privilege,
        host::has_overlay(&roots),
        sandbox::security::kernel_support(),
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
    println!(
        "noise on cpus {cpus}{}:",
        if args.no_sample {
            String::new()
        } else {
            format!(" (sampling {:.0} s)", SAMPLE.as_secs_f64())
        }
    );
    let found = noise::examine(&roots, &cpus, root, (!args.no_sample).then_some(SAMPLE));
    for c in &found.checks {
        let mark = match c.grade {
            Grade::Ok => "ok  ",
            Grade::Warn => "warn",
            Grade::Fail => "fail",
        };
        println!("[{mark}] {}", c.what);
        if let Some(h) = &c.hint {
            println!("       hint: {h}");
        }
    }
    let noisy = found.worst() != Grade::Ok;
    Ok(code(if blocked {
        exit::ISOLATION
    } else if args.strict && noisy {
        exit::NOISY
    } else {
        exit::OK
    }))
}

/// `--tune` (or `--reset`): change (or put back) the quiet settings and say which.
fn tune(roots: &host::Roots, tune: bool) -> Outcome {
    let result = if tune {
        host::tune::tune(roots)
    } else {
        host::tune::reset(roots)
    };
    let changes = result.map_err(|e| CliError::new(e.exit_code(), e))?;
    if changes.is_empty() {
        println!("nothing to change: the governor, huge pages and turbo are quiet or not exposed");
    }
    for c in &changes {
        if tune {
            println!("set {}", c.describe());
        } else {
            println!("restored {}: {}", c.path.display(), c.before);
        }
    }
    if tune && !changes.is_empty() {
        println!(
            "saved in {}: `benchbox doctor --reset` puts them back",
            host::tune::state_file(roots).display()
        );
    }
    Ok(code(exit::OK))
}

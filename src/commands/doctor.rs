//! `benchbox doctor`: what on this host adds noise to measurements or blocks isolation.

use benchbox::mode::{self, Cgroups};
use benchbox::{exit, host, metrics, runner, sandbox};

use super::{Outcome, code};

pub fn run() -> Outcome {
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
    let roots = host::Roots::default();
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
    Ok(code(if blocked { exit::ISOLATION } else { exit::OK }))
}

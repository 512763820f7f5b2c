use super::*;

/// A fake host: `/proc` and `/sys` under a temp dir, two online cpus.
struct Fake {
    _dir: tempfile::TempDir,
    roots: Roots,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
            run: dir.path().join("run"),
        };
        let f = Fake { _dir: dir, roots };
        f.sys("devices/system/cpu/online", "0-1\n");
        f
    }

    fn write(base: &Path, rel: &str, text: &str) {
        let p = base.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn proc_(&self, rel: &str, text: &str) {
        Fake::write(&self.roots.proc, rel, text)
    }

    fn sys(&self, rel: &str, text: &str) {
        Fake::write(&self.roots.sys, rel, text)
    }

    fn checks(&self, cpus: &str) -> Vec<Check> {
        static_checks(&self.roots, &cpus.parse().unwrap(), false)
    }
}

fn find<'a>(checks: &'a [Check], key: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.key == key)
        .unwrap_or_else(|| panic!("no check {key} in {checks:#?}"))
}

/// A task's /proc/<pid>/stat line in `state` on `cpu` (a command name with a space and a
/// parenthesis, as real ones may have).
fn task_stat(state: char, cpu: u32) -> String {
    let middle = vec!["0"; 35].join(" ");
    format!("42 (a (b) c) {state} {middle} {cpu} 0 0 0\n")
}

#[test]
fn load_is_graded_against_the_online_cpus() {
    let f = Fake::new();
    for (load, grade) in [
        ("0.10", Grade::Ok),
        ("0.49", Grade::Ok),
        ("0.50", Grade::Warn),
        ("1.49", Grade::Warn),
        ("1.50", Grade::Fail),
        ("2.00", Grade::Fail),
    ] {
        f.proc_("loadavg", &format!("{load} 1.00 1.00 3/112 7938\n"));
        let c = find(&f.checks("0"), "load").clone();
        assert_eq!(c.grade, grade, "{load}: {c:?}");
        assert!(
            c.what.contains(load) && c.what.contains("2 online cpus"),
            "{c:?}"
        );
        assert_eq!(c.hint.is_some(), grade != Grade::Ok, "{c:?}");
    }
}

#[test]
fn steal_since_boot_and_unreadable_files_are_warnings() {
    let f = Fake::new();
    // Nothing readable: load, ASLR, turbo, the governor and the PMU are warnings, not `ok`.
    let c = f.checks("0");
    for key in ["load", "aslr", "turbo", "governor", "pmu"] {
        assert_eq!(find(&c, key).grade, Grade::Warn, "{key}: {c:#?}");
    }
    assert!(c.iter().all(|c| c.key != "steal"));
    // cpu user nice system idle iowait irq softirq steal: 10% steal.
    f.proc_("stat", "cpu 800 0 0 100 0 0 0 100 0 0\n");
    let s = find(&f.checks("0"), "steal").clone();
    assert_eq!(s.grade, Grade::Fail, "{s:?}");
    assert!(s.what.contains("10.00%"), "{s:?}");
    f.proc_("stat", "cpu 996 0 0 0 0 0 0 4 0 0\n");
    assert_eq!(find(&f.checks("0"), "steal").grade, Grade::Ok);
    f.proc_("stat", "cpu 990 0 0 0 0 0 0 10 0 0\n");
    assert_eq!(find(&f.checks("0"), "steal").grade, Grade::Warn);
}

#[test]
fn aslr_and_transparent_huge_pages() {
    let f = Fake::new();
    for (v, grade) in [("2", Grade::Ok), ("1", Grade::Warn), ("0", Grade::Warn)] {
        f.proc_("sys/kernel/randomize_va_space", &format!("{v}\n"));
        let c = find(&f.checks("0"), "aslr").clone();
        assert_eq!(c.grade, grade, "{c:?}");
        assert!(c.what.starts_with(&format!("ASLR: {v} (")), "{c:?}");
    }
    f.sys(
        "kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never\n",
    );
    f.sys(
        "kernel/mm/transparent_hugepage/defrag",
        "always defer defer+madvise [madvise] never\n",
    );
    let c = f.checks("0");
    let enabled = find(&c, "thp.enabled");
    assert_eq!(enabled.grade, Grade::Warn);
    assert!(enabled.what.ends_with(": always"), "{enabled:?}");
    assert!(enabled.hint.as_deref().unwrap().contains("echo madvise"));
    assert_eq!(find(&c, "thp.defrag").grade, Grade::Ok);
    f.sys(
        "kernel/mm/transparent_hugepage/enabled",
        "always [madvise] never\n",
    );
    f.sys("kernel/mm/transparent_hugepage/defrag", "[always] never\n");
    let c = f.checks("0");
    assert_eq!(find(&c, "thp.enabled").grade, Grade::Ok);
    assert_eq!(find(&c, "thp.defrag").grade, Grade::Warn);
}

#[test]
fn isolated_cpus_from_sysfs_or_the_command_line() {
    let f = Fake::new();
    let c = find(&f.checks("1"), "isolation").clone();
    assert_eq!(c.grade, Grade::Warn);
    assert!(
        c.what.contains("none (isolcpus), none (nohz_full)"),
        "{c:?}"
    );
    assert!(c.hint.unwrap().contains("isolcpus=1 nohz_full=1"));
    // The command line's flags before the list are skipped.
    f.proc_(
        "cmdline",
        "quiet isolcpus=domain,managed_irq,1 nohz_full=1 rcu_nocbs=1\n",
    );
    let c = find(&f.checks("1"), "isolation").clone();
    assert_eq!(c.grade, Grade::Ok, "{c:?}");
    // Only part of the checked cpus isolated: a warning.
    assert_eq!(find(&f.checks("0-1"), "isolation").grade, Grade::Warn);
    // sysfs wins over the command line.
    f.sys("devices/system/cpu/isolated", "\n");
    assert_eq!(find(&f.checks("1"), "isolation").grade, Grade::Warn);
}

#[test]
fn irqs_that_may_run_on_the_checked_cpus() {
    let f = Fake::new();
    f.proc_("irq/24/smp_affinity_list", "0-1\n");
    f.proc_("irq/25/smp_affinity_list", "0\n");
    f.proc_("irq/default_smp_affinity", "3\n");
    let c = find(&f.checks("1"), "irq").clone();
    assert_eq!(c.grade, Grade::Warn);
    assert_eq!(c.what, "irq affinity: 1 of 2 irqs may run on cpus 1 (24)");
    assert!(
        c.hint
            .unwrap()
            .contains("echo 0 > /proc/irq/N/smp_affinity_list")
    );
    f.proc_("irq/24/smp_affinity_list", "0\n");
    let c = find(&f.checks("1"), "irq").clone();
    assert_eq!(c.grade, Grade::Ok, "{c:?}");
}

#[test]
fn the_pmu_and_perf_event_paranoid() {
    let f = Fake::new();
    f.proc_("sys/kernel/perf_event_paranoid", "2\n");
    fs::create_dir_all(f.roots.sys.join("bus/event_source/devices/software")).unwrap();
    let c = find(&f.checks("0"), "pmu").clone();
    assert_eq!(c.grade, Grade::Warn);
    assert!(c.what.contains("no PMU"), "{c:?}");
    fs::create_dir_all(f.roots.sys.join("bus/event_source/devices/cpu")).unwrap();
    let c = find(&f.checks("0"), "pmu").clone();
    assert_eq!(c.grade, Grade::Warn, "paranoid 2, not root: {c:?}");
    assert!(c.hint.unwrap().contains("perf_event_paranoid=1"));
    let as_root = static_checks(&f.roots, &"0".parse().unwrap(), true);
    assert_eq!(find(&as_root, "pmu").grade, Grade::Ok);
    f.proc_("sys/kernel/perf_event_paranoid", "1\n");
    assert_eq!(find(&f.checks("0"), "pmu").grade, Grade::Ok);
}

#[test]
fn turbo_and_the_governor_per_cpu() {
    let f = Fake::new();
    let c = f.checks("0-1");
    assert!(find(&c, "turbo").what.starts_with("turbo: unknown"));
    let g = find(&c, "governor");
    assert_eq!(g.grade, Grade::Warn, "unknown is not ok: {g:?}");
    assert!(g.what.contains("unknown (cpus 0-1)") && g.what.contains("cannot be checked"));
    f.sys("devices/system/cpu/cpufreq/boost", "1\n");
    assert_eq!(find(&f.checks("0"), "turbo").grade, Grade::Warn);
    // intel_pstate's switch wins over cpufreq's.
    f.sys("devices/system/cpu/intel_pstate/no_turbo", "1\n");
    let t = find(&f.checks("0"), "turbo").clone();
    assert_eq!(t.grade, Grade::Ok);
    assert_eq!(t.what, "turbo: off (intel_pstate/no_turbo 1)");
    f.sys(
        "devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "performance\n",
    );
    f.sys(
        "devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "powersave\n",
    );
    assert_eq!(find(&f.checks("0"), "governor").grade, Grade::Ok);
    let g = find(&f.checks("0-1"), "governor").clone();
    assert_eq!(g.grade, Grade::Warn);
    assert_eq!(
        g.what,
        "cpu frequency governor: performance (cpus 0), powersave (cpus 1)"
    );
    assert!(
        g.hint
            .unwrap()
            .contains("cpupower frequency-set -g performance")
    );
}

#[test]
fn task_stat_lines_give_state_and_cpu() {
    assert_eq!(parse_task_stat(&task_stat('R', 3)), Some(('R', 3)));
    assert_eq!(parse_task_stat(&task_stat('S', 0)), Some(('S', 0)));
    assert_eq!(parse_task_stat("42 (x) R 1 2"), None);
    // The real line of this test's own thread parses.
    let own = fs::read_to_string("/proc/thread-self/stat").unwrap();
    assert_eq!(parse_task_stat(&own).map(|(s, _)| s), Some('R'));
}

#[test]
fn runnable_tasks_per_cpu_skip_benchbox_itself() {
    let f = Fake::new();
    f.proc_("10/task/10/stat", &task_stat('R', 1));
    f.proc_("10/task/11/stat", &task_stat('R', 1));
    f.proc_("11/task/11/stat", &task_stat('S', 0));
    f.proc_("12/task/12/stat", &task_stat('R', 0));
    f.proc_("self/task/1/stat", &task_stat('R', 0));
    let r = runnable_per_cpu(&f.roots, 12);
    assert_eq!(r, BTreeMap::from([(1, 2)]));
}

/// /proc/stat with the given (busy, idle, steal) jiffies for cpu0 and cpu1.
fn stat_text(cpu0: (u64, u64, u64), cpu1: (u64, u64, u64), running: u64) -> String {
    let line = |n: &str, (b, i, s): (u64, u64, u64)| format!("{n} {b} 0 0 {i} 0 0 0 {s} 0 0\n");
    format!(
        "{}{}{}procs_running {running}\n",
        line("cpu", (cpu0.0 + cpu1.0, cpu0.1 + cpu1.1, cpu0.2 + cpu1.2)),
        line("cpu0", cpu0),
        line("cpu1", cpu1)
    )
}

#[test]
fn a_loaded_cpu_shows_in_the_sample() {
    // Over the sample cpu0 was idle, cpu1 busy 60% with one task always runnable there.
    let before = parse_stat(&stat_text((100, 1000, 0), (100, 1000, 0), 1));
    let after = parse_stat(&stat_text((101, 1099, 0), (160, 1040, 0), 2));
    assert_eq!(after.procs_running, 2);
    assert_eq!(after.cpus[&1].busy, 160);
    let s = Sample {
        before,
        after,
        seconds: 1.0,
        polls: 10,
        runnable: BTreeMap::from([(1, 10)]),
        procs_running: 10,
    };
    let c = s.checks(&"0-1".parse().unwrap());
    let c0 = find(&c, "sample.cpu0");
    assert_eq!(c0.grade, Grade::Ok, "{c0:?}");
    assert_eq!(
        c0.what,
        "cpu 0: busy 1.0%, steal 0.0%, runnable tasks 0.0 (sampled 1.0 s)"
    );
    let c1 = find(&c, "sample.cpu1");
    assert_eq!(c1.grade, Grade::Fail, "{c1:?}");
    assert_eq!(
        c1.what,
        "cpu 1: busy 60.0%, steal 0.0%, runnable tasks 1.0 (sampled 1.0 s)"
    );
    assert!(c1.hint.is_some());
    let all = find(&c, "sample.procs_running");
    assert_eq!(all.grade, Grade::Warn, "1 of 2 cpus: {all:?}");
}

#[test]
fn sample_boundaries_busy_steal_and_tasks() {
    let grade = |busy: u64, steal: u64, tasks: u32| {
        let before = parse_stat(&stat_text((0, 0, 0), (0, 0, 0), 1));
        let after = parse_stat(&stat_text(
            (busy, 1000 - busy - steal, steal),
            (0, 1000, 0),
            1,
        ));
        let s = Sample {
            before,
            after,
            seconds: 1.0,
            polls: 20,
            runnable: BTreeMap::from([(0, tasks)]),
            procs_running: 0,
        };
        find(&s.checks(&"0".parse().unwrap()), "sample.cpu0").grade
    };
    assert_eq!(grade(49, 0, 0), Grade::Ok);
    assert_eq!(grade(50, 0, 0), Grade::Warn);
    assert_eq!(grade(249, 0, 0), Grade::Warn);
    assert_eq!(grade(250, 0, 0), Grade::Fail);
    assert_eq!(grade(0, 9, 0), Grade::Ok);
    assert_eq!(grade(0, 10, 0), Grade::Warn);
    assert_eq!(grade(0, 50, 0), Grade::Fail);
    assert_eq!(grade(0, 0, 1), Grade::Ok);
    assert_eq!(grade(0, 0, 2), Grade::Warn);
    assert_eq!(grade(0, 0, 15), Grade::Fail);
    // A cpu missing from /proc/stat is a warning that says so.
    let s = Sample::default();
    let c = s.checks(&"5".parse().unwrap());
    assert!(find(&c, "sample.cpu5").what.contains("not in /proc/stat"));
}

#[test]
fn a_real_sample_on_this_host() {
    // The host is shared: the grades are whatever they are; the figures are there.
    let n = examine(
        &Roots::default(),
        &"0".parse().unwrap(),
        false,
        Some(Duration::from_millis(200)),
    );
    assert!(n.sample_s.unwrap() >= 0.2);
    assert!(
        find(&n.checks, "sample.cpu0")
            .what
            .starts_with("cpu 0: busy ")
    );
    assert!(n.summary().contains("checks on cpus 0, sampled"));
}

#[test]
fn noise_round_trips_and_older_host_records_read() {
    let old = r#"{"hostname":"h","kernel":"6","architecture":"x86_64","cpu_model":"c",
        "online_cpus":"0-1","logical_cpus":2,"memory_bytes":1,"cgroup_version":"v2",
        "governor":null,"smt_active":null,"swap_bytes":0,"turbo":null}"#;
    let h: crate::host::HostInfo = serde_json::from_str(old).unwrap();
    assert_eq!(h.noise, None);
    assert!(!serde_json::to_string(&h).unwrap().contains("noise"));
    let f = Fake::new();
    f.proc_("loadavg", "2.00 2.00 2.00 3/112 7938\n");
    let noisy = crate::host::HostInfo {
        noise: Some(Noise {
            cpus: "0".into(),
            sample_s: Some(0.5),
            checks: f.checks("0"),
            tuned: vec!["/sys/x: always -> madvise".into()],
        }),
        ..h
    };
    let text = serde_json::to_string(&noisy).unwrap();
    assert!(text.contains(r#""grade":"fail""#), "{text}");
    let back: crate::host::HostInfo = serde_json::from_str(&text).unwrap();
    assert_eq!(back, noisy);
    assert_eq!(back.noise.unwrap().worst(), Grade::Fail);
}

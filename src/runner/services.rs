//! A cell's services around its invocations: the [`Pod`] (one network namespace and one
//! /etc/hosts shared by the services and the workload), starting each service in its own
//! container and cgroup in start order and waiting for its `ready` probe, watching that none
//! dies while the workload runs, measuring each over the workload's window ([`Window`]), and
//! stopping them (SIGTERM, then SIGKILL after `stop-timeout`).
//!
//! A service runs in a [`Sandbox`] of its own on a thread of its own (`Sandbox::run` returns
//! when the container's command exits), so it has its own mount, pid, uts and ipc namespaces,
//! its own cgroup and limits, and its teardown is finished (no process, mount or group left)
//! before its thread ends. Services with `lifetime = "cell"` start before a cell's first
//! invocation and stop after its last (or when the run ends); the others start and stop
//! around every invocation.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::RunError;
use super::invocation::Builder;
use crate::results;
use crate::sandbox::cgroup::{Counters, Group, Hierarchy};
use crate::sandbox::network::Network;
use crate::sandbox::{self, Invocation, Outcome, Sandbox, SandboxError};
use crate::spec::{Cell, Lifetime, Ready, Service};

/// How often readiness and the services' liveness are checked.
const POLL: Duration = Duration::from_millis(20);

/// Why a service failed an invocation: it never became ready, or exited before the workload
/// did. Becomes the invocation's `service-failed` status and `reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFailure {
    pub service: String,
    pub reason: String,
}

impl std::fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "service `{}` {}", self.service, self.reason)
    }
}

/// A service that runs, on its thread.
struct Running {
    name: String,
    lifetime: Lifetime,
    /// Its cgroup, read while it runs (`None` without cgroups).
    group: Option<Box<dyn Group>>,
    /// Set to SIGKILL it (the sandbox's cancel flag).
    kill: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Outcome, SandboxError>>>,
    /// From its start to ready.
    ready_s: f64,
    stop_timeout: Duration,
    logs: [PathBuf; 2],
}

impl Running {
    fn exited(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// SIGTERM, `stop_timeout` to exit, then SIGKILL; its outcome once its container is gone.
    fn stop(mut self) -> Option<Outcome> {
        if let Some(group) = &self.group
            && !self.exited()
        {
            for pid in group.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + self.stop_timeout;
            while !self.exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.kill.store(true, Ordering::SeqCst);
        let outcome = self.thread.take()?.join().ok()?.ok();
        // Like a workload's logs: present only when the service wrote something.
        for log in &self.logs {
            if fs::metadata(log).is_ok_and(|m| m.len() == 0) {
                let _ = fs::remove_file(log);
            }
        }
        outcome
    }
}

impl Drop for Running {
    /// A service is never left running: killed (and its container torn down) at the latest
    /// when dropped (Ctrl-C, an error of benchbox's own).
    fn drop(&mut self) {
        self.kill.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A cell's network and /etc/hosts, and the services running in them.
pub struct Pod {
    network: Arc<Network>,
    hosts: PathBuf,
    running: Vec<Running>,
    cgroups: Option<Hierarchy>,
    /// The services' whole-life outcomes, by name, since the last [`Pod::take_stopped`].
    stopped: Vec<(String, Outcome)>,
}

impl Pod {
    /// A fresh network namespace for `cell`, and its /etc/hosts (in `scratch`): `localhost`
    /// and every service's name are 127.0.0.1.
    pub fn new(scratch: &Path, cell: &Cell, cgroups: Option<Hierarchy>) -> Result<Pod, RunError> {
        let network = Arc::new(Network::create()?);
        let hosts = scratch.join(format!("hosts-{}", cell.slug));
        let names: Vec<&str> = cell.services.iter().map(|s| s.name.as_str()).collect();
        let text = format!(
            "127.0.0.1\tlocalhost {}\n::1\tlocalhost\n127.0.0.1\t{}\n",
            cell.slug,
            names.join(" ")
        );
        fs::write(&hosts, text).map_err(|source| {
            RunError::Results(results::ResultsError::Io {
                action: "write",
                path: hosts.clone(),
                source,
            })
        })?;
        Ok(Pod {
            network,
            hosts,
            running: Vec::new(),
            cgroups,
            stopped: Vec::new(),
        })
    }

    /// `inv` (the workload's, or a service's) joined to this pod: its network namespace
    /// (unless the cell uses the host's network) and its /etc/hosts.
    pub fn join(&self, inv: &mut Invocation) {
        if !inv.host_network {
            inv.network = Some(self.network.clone());
        }
        inv.volumes.retain(|v| v.target != Path::new("/etc/hosts"));
        inv.volumes.push(sandbox::Volume {
            host: self.hosts.clone(),
            target: PathBuf::from("/etc/hosts"),
            read_only: true,
        });
    }

    /// Start the cell's services of `lifetime` that are not running, in start order, each
    /// ready before the next starts. Their logs go to `logs/<cell>/<service>/<tag>.{out,err}`.
    pub fn start(
        &mut self,
        builder: &Builder,
        cell: &Cell,
        lifetime: Lifetime,
        tag: &str,
        cancel: &AtomicBool,
    ) -> Result<Result<(), ServiceFailure>, RunError> {
        for service in cell.services.iter().filter(|s| s.lifetime == lifetime) {
            if self.running.iter().any(|r| r.name == service.name) {
                continue;
            }
            let dir = builder
                .dir
                .join("logs")
                .join(&cell.slug)
                .join(&service.name);
            fs::create_dir_all(&dir).map_err(|source| {
                RunError::Results(results::ResultsError::Io {
                    action: "create",
                    path: dir.clone(),
                    source,
                })
            })?;
            let logs = [
                dir.join(format!("{tag}.out")),
                dir.join(format!("{tag}.err")),
            ];
            let mut inv = builder.service_invocation(
                cell,
                service,
                &service.command,
                logs[0].clone(),
                logs[1].clone(),
            )?;
            self.join(&mut inv);
            let running = self.spawn(service, inv, logs);
            let ready = self.wait_ready(builder, cell, service, &running, cancel);
            self.running.push(running);
            match ready {
                Ok(ready_s) => self.running.last_mut().unwrap().ready_s = ready_s,
                Err(failure) => return Ok(Err(failure)),
            }
        }
        Ok(Ok(()))
    }

    fn spawn(&self, service: &Service, inv: Invocation, logs: [PathBuf; 2]) -> Running {
        let group_name = sandbox::next_group_name();
        let kill = Arc::new(AtomicBool::new(false));
        let cgroups = self.cgroups.clone();
        let group = cgroups.as_ref().map(|h| h.view(&group_name));
        let thread = {
            let kill = kill.clone();
            std::thread::spawn(move || {
                // Dropped before the thread ends: its teardown is finished by then.
                let sandbox = Sandbox::new(cgroups);
                let outcome = sandbox.run_in_group(&inv, &group_name, &kill);
                let cleaned = sandbox.wait_for_cleanup();
                drop(sandbox);
                let outcome = outcome?;
                cleaned?;
                Ok(outcome)
            })
        };
        Running {
            name: service.name.clone(),
            lifetime: service.lifetime,
            group,
            kill,
            thread: Some(thread),
            ready_s: 0.0,
            stop_timeout: service.stop_timeout,
            logs,
        }
    }

    /// Wait until `service` is ready (seconds from its start), or why it will not be.
    fn wait_ready(
        &self,
        builder: &Builder,
        cell: &Cell,
        service: &Service,
        running: &Running,
        cancel: &AtomicBool,
    ) -> Result<f64, ServiceFailure> {
        let started = Instant::now();
        // From 1 ms up to POLL: a service that is ready in a few milliseconds is not kept
        // waiting for a whole tick.
        let mut pause = Duration::from_millis(1);
        let fail = |reason: String| ServiceFailure {
            service: service.name.clone(),
            reason,
        };
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Err(fail("was stopped before it was ready (interrupted)".into()));
            }
            let ready = match &service.ready {
                Ready::Started => running
                    .group
                    .as_ref()
                    .is_none_or(|g| !g.pids().unwrap_or_default().is_empty()),
                // With the host's network the service listens there, not in the pod's
                // namespace: the probe connects from benchbox's own.
                Ready::Tcp(port) if cell.network == crate::spec::Network::Host => {
                    crate::sandbox::network::loopback_accepts_tcp(*port, Duration::from_millis(200))
                }
                Ready::Tcp(port) => self.network.accepts_tcp(*port, Duration::from_millis(200)),
                Ready::Log(text) => running.logs.iter().any(|log| {
                    fs::read(log).is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(text))
                }),
                Ready::Command(argv) => self.probe(builder, cell, service, argv)?,
            };
            // Exited: not ready, whatever a probe saw a moment before.
            if running.exited() {
                return Err(fail(format!(
                    "exited before it was ready{}",
                    log_hint(&running.logs)
                )));
            }
            if ready {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() >= service.ready_timeout {
                return Err(fail(format!(
                    "did not become ready within {} ({}){}{}",
                    crate::spec::units::format_duration(service.ready_timeout),
                    describe_ready(&service.ready),
                    self.probe_said(builder, service),
                    log_hint(&running.logs)
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(POLL);
        }
    }

    /// One run of a `ready = { command = ... }` probe: a fresh container of the service's
    /// environment in the pod's network; ready when it exits 0.
    fn probe(
        &self,
        builder: &Builder,
        cell: &Cell,
        service: &Service,
        argv: &[String],
    ) -> Result<bool, ServiceFailure> {
        let [out, err] = probe_logs(builder, service);
        let mut inv = builder
            .service_invocation(cell, service, argv, out, err)
            .map_err(|e| ServiceFailure {
                service: service.name.clone(),
                reason: format!("cannot run its ready command: {e}"),
            })?;
        inv.timeout = Some(service.ready_timeout);
        self.join(&mut inv);
        let never = AtomicBool::new(false);
        let sandbox = Sandbox::new(self.cgroups.clone());
        let ok = sandbox
            .run(&inv, &never)
            .is_ok_and(|o| o.measured.exit_code == Some(0));
        Ok(ok)
    }

    /// What the last `ready` command wrote (its first line), for the failure's reason.
    fn probe_said(&self, builder: &Builder, service: &Service) -> String {
        if !matches!(service.ready, Ready::Command(_)) {
            return String::new();
        }
        let [out, err] = probe_logs(builder, service);
        let mut bytes = fs::read(out).unwrap_or_default();
        bytes.extend(fs::read(err).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        match text.lines().map(str::trim).find(|l| !l.is_empty()) {
            Some(line) => format!("; the ready command last said: {}", truncate(line, 200)),
            None => "; the ready command wrote nothing".into(),
        }
    }

    /// The first service that exited (while the workload ran, say), as a failure.
    pub fn failure(&self) -> Option<ServiceFailure> {
        self.running
            .iter()
            .find(|r| r.exited())
            .map(|r| ServiceFailure {
                service: r.name.clone(),
                reason: format!("exited while the workload was running{}", log_hint(&r.logs)),
            })
    }

    /// Stop the services of `lifetime` (of every lifetime with `None`), last started first.
    pub fn stop(&mut self, lifetime: Option<Lifetime>) {
        let (stop, keep): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| lifetime.is_none_or(|l| r.lifetime == l));
        self.running = keep;
        for running in stop.into_iter().rev() {
            let name = running.name.clone();
            if let Some(outcome) = running.stop() {
                self.stopped.push((name, outcome));
            }
        }
    }

    /// The whole-life outcomes of the services stopped since the last call.
    pub fn take_stopped(&mut self) -> Vec<(String, Outcome)> {
        std::mem::take(&mut self.stopped)
    }

    /// The running services' window over the workload's measured time: it opens when the
    /// workload execs and closes when it exits, as the workload's executor tells it (it is
    /// the [`sandbox::Watcher`] of the workload's invocation).
    pub fn window(&self, memory_interval: Option<Duration>) -> Window<'_> {
        Window {
            pod: self,
            edges: Mutex::new(Edges {
                begin: None,
                end: None,
                largest: vec![0; self.running.len()],
            }),
            interval: memory_interval.unwrap_or(Duration::from_millis(100)),
        }
    }

    /// One reading of each running service's group.
    fn read(&self) -> Vec<Reading> {
        self.running
            .iter()
            .map(|r| Reading {
                counters: r.group.as_ref().and_then(|g| g.counters().ok()),
                memory: r.group.as_ref().and_then(|g| g.memory_current()),
            })
            .collect()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.stop(None);
    }
}

/// A service's group, read at one end of the window (`None`s: no cgroup, or unreadable).
#[derive(Clone, Copy)]
struct Reading {
    counters: Option<Counters>,
    memory: Option<u64>,
}

/// The services measured over the workload's window (see [`Pod::window`]).
pub struct Window<'p> {
    pod: &'p Pod,
    edges: Mutex<Edges>,
    interval: Duration,
}

/// What the window has seen so far.
struct Edges {
    /// The services' groups at the workload's exec (`None`: not yet, or it never got there).
    begin: Option<Vec<Reading>>,
    /// And at its exit (`None`: not yet, or the executor never said).
    end: Option<Vec<Reading>>,
    /// The largest memory in use seen in the window, per service.
    largest: Vec<u64>,
}

impl Edges {
    fn open(&self) -> bool {
        self.begin.is_some() && self.end.is_none()
    }

    fn fold(&mut self, memory: impl Iterator<Item = Option<u64>>) {
        for (l, m) in self.largest.iter_mut().zip(memory) {
            *l = (*l).max(m.unwrap_or(0));
        }
    }
}

impl sandbox::Watcher for Window<'_> {
    fn exec(&self) {
        let now = self.pod.read();
        let mut edges = self.edges.lock().unwrap_or_else(|e| e.into_inner());
        if edges.begin.is_none() {
            edges.fold(now.iter().map(|r| r.memory));
            edges.begin = Some(now);
        }
    }

    fn exited(&self) {
        let now = self.pod.read();
        let mut edges = self.edges.lock().unwrap_or_else(|e| e.into_inner());
        if edges.open() {
            edges.fold(now.iter().map(|r| r.memory));
            edges.end = Some(now);
        }
    }
}

impl Window<'_> {
    /// Run `f` (the workload, telling this window its exec and exit) while sampling the
    /// services' memory in use every `interval` while the window is open, and set
    /// `stop_workload` as soon as `cancel` is set or a service exits.
    pub fn during<T>(
        &self,
        cancel: &AtomicBool,
        stop_workload: &AtomicBool,
        f: impl FnOnce() -> T,
    ) -> T {
        let pod = self.pod;
        let (done, wake) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut last = Instant::now();
                loop {
                    if cancel.load(Ordering::SeqCst) || pod.failure().is_some() {
                        stop_workload.store(true, Ordering::SeqCst);
                    }
                    if last.elapsed() >= self.interval {
                        last = Instant::now();
                        // Under the lock: no sample from outside the window gets in.
                        let mut edges = self.edges.lock().unwrap_or_else(|e| e.into_inner());
                        if edges.open() {
                            let memory = pod
                                .running
                                .iter()
                                .map(|r| r.group.as_ref().and_then(|g| g.memory_current()));
                            edges.fold(memory);
                        }
                    }
                    // Woken as soon as the workload is done, not at the next tick.
                    match wake.recv_timeout(POLL.min(self.interval)) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            });
            let result = f();
            drop(done);
            result
        })
    }

    /// Each running service's columns over the window: `NAME.cpu_s`, `.user_s`, `.system_s`,
    /// `.peak_memory_bytes`, `.io_read_bytes`, `.io_write_bytes`, `.throttled_s`, `.ready_s`.
    /// A workload that never exec'd has no window: only `.ready_s`.
    pub fn end(self) -> Vec<(String, f64)> {
        let pod = self.pod;
        let mut edges = self.edges.into_inner().unwrap_or_else(|e| e.into_inner());
        // Its executor never said it exited (it failed on the way): it has, by now.
        if edges.open() {
            let now = pod.read();
            edges.fold(now.iter().map(|r| r.memory));
            edges.end = Some(now);
        }
        let reading = |edge: &Option<Vec<Reading>>, i: usize| {
            edge.as_ref()
                .and_then(|e| e.get(i))
                .and_then(|r| r.counters)
        };
        let mut columns = Vec::new();
        for (i, r) in pod.running.iter().enumerate() {
            let name = &r.name;
            columns.push((format!("{name}.ready_s"), r.ready_s));
            let (Some(begin), Some(end)) = (reading(&edges.begin, i), reading(&edges.end, i))
            else {
                continue;
            };
            let user = end.cpu_user.saturating_sub(begin.cpu_user).as_secs_f64();
            let system = end
                .cpu_system
                .saturating_sub(begin.cpu_system)
                .as_secs_f64();
            columns.push((format!("{name}.cpu_s"), user + system));
            columns.push((format!("{name}.user_s"), user));
            columns.push((format!("{name}.system_s"), system));
            let peak = window_peak(
                begin.memory_peak,
                end.memory_peak,
                edges.largest.get(i).copied().unwrap_or(0),
            );
            columns.push((format!("{name}.peak_memory_bytes"), peak as f64));
            if let (Some(a), Some(b)) = (begin.io_read_bytes, end.io_read_bytes) {
                columns.push((format!("{name}.io_read_bytes"), b.saturating_sub(a) as f64));
            }
            if let (Some(a), Some(b)) = (begin.io_write_bytes, end.io_write_bytes) {
                columns.push((format!("{name}.io_write_bytes"), b.saturating_sub(a) as f64));
            }
            let throttled = end.throttled.saturating_sub(begin.throttled);
            columns.push((format!("{name}.throttled_s"), throttled.as_secs_f64()));
        }
        columns
    }
}

/// A service's peak memory within the window, from its whole-life peak at the window's two
/// ends and the largest memory in use sampled in between (`sampled`): a whole-life peak that
/// grew during the window was reached in it, exactly; otherwise the window's own peak is at
/// most the earlier one, and the samples are the best lower bound there is.
fn window_peak(begin: Option<u64>, end: Option<u64>, sampled: u64) -> u64 {
    match (begin, end) {
        (Some(b), Some(e)) if e > b => e,
        (_, Some(e)) => sampled.min(e),
        _ => sampled,
    }
}

/// Where a service's `ready` command writes its stdout and stderr (the run's scratch
/// directory: each probe replaces the last's).
fn probe_logs(builder: &Builder, service: &Service) -> [PathBuf; 2] {
    ["out", "err"].map(|ext| {
        builder
            .scratch
            .join(format!("probe-{}.{ext}", service.name))
    })
}

fn truncate(line: &str, most: usize) -> String {
    match line.char_indices().nth(most) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_string(),
    }
}

fn describe_ready(ready: &Ready) -> String {
    match ready {
        Ready::Started => "its command to start".into(),
        Ready::Tcp(port) => format!("waiting for a TCP connection to port {port} to succeed"),
        Ready::Log(text) => format!("waiting for `{text}` in its output"),
        Ready::Command(argv) => format!("waiting for `{}` to exit 0", argv.join(" ")),
    }
}

fn log_hint(logs: &[PathBuf; 2]) -> String {
    let written: Vec<String> = logs
        .iter()
        .filter(|l| fs::metadata(l).is_ok_and(|m| m.len() > 0))
        .map(|l| l.display().to_string())
        .collect();
    if written.is_empty() {
        "; the service wrote nothing".into()
    } else {
        format!("; the service's output: {}", written.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_peak_is_exact_when_reached_in_it_and_a_lower_bound_otherwise() {
        assert_eq!(window_peak(Some(100), Some(150), 120), 150);
        assert_eq!(window_peak(Some(100), Some(100), 80), 80);
        assert_eq!(window_peak(Some(100), Some(100), 180), 100);
        assert_eq!(window_peak(None, None, 80), 80);
    }
}

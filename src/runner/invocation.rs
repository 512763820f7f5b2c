//! What one invocation of a cell is, for the sandbox: its root filesystem (a setup's layer
//! over the rootfs or the image's layers), volumes, environment, command, limits and where its
//! output is spooled, with the image's config filling in what the matrix leaves out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{DEFAULT_PATH, RunError};
use crate::image::ResolvedImage;
use crate::results;
use crate::sandbox::userns::IdMap;
use crate::sandbox::{self, Invocation, RootSpec};
use crate::spec::{Cell, Network, Root, Scratch, Service};

/// Builds the invocations of one run.
pub(super) struct Builder {
    /// The run directory (the output spools are in it).
    pub dir: PathBuf,
    /// The run's scratch directory (invocations' disk layers go under it).
    pub scratch: PathBuf,
    pub images: BTreeMap<String, ResolvedImage>,
    /// Rootless: the containers' user namespace map.
    pub userns: Option<IdMap>,
    /// The perf_event counters of the run (see `Sandboxing::counters`), for cells that want
    /// them.
    pub counters: Vec<&'static str>,
}

impl Builder {
    fn image(&self, cell: &Cell) -> Option<&ResolvedImage> {
        match &cell.root {
            Root::Image(r) => self.images.get(r),
            _ => None,
        }
    }

    /// The workload's environment: the image's `Env` (if any), a default `PATH` unless one is
    /// set, the matrix's `env` over both, then the `BENCHBOX_*` variables.
    fn env(&self, cell: &Cell, phase: &str, index: u32) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(image) = self.image(cell) {
            env.extend(image.config.env.iter().cloned());
        }
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());
        env.extend(cell.env.clone());
        env.insert("BENCHBOX_CELL".into(), cell.id.clone());
        env.insert("BENCHBOX_CELL_LABEL".into(), cell.label.clone());
        env.insert("BENCHBOX_PHASE".into(), phase.into());
        env.insert("BENCHBOX_INVOCATION".into(), index.to_string());
        env.insert("BENCHBOX_METRICS".into(), sandbox::METRICS_PATH.into());
        env.into_iter().collect()
    }

    pub fn invocation_for(
        &self,
        cell: &Cell,
        argv: &[String],
        phase: &str,
        index: u32,
        layer: Option<&PathBuf>,
    ) -> Result<Invocation, RunError> {
        let (stdout, stderr) = results::spool_paths(&self.dir)?;
        let container = Container {
            root: &cell.root,
            workdir: cell.workdir.as_ref(),
            user: cell.user.as_ref(),
            volumes: &cell.volumes,
        };
        let Resolved {
            root,
            argv,
            workdir,
            user,
        } = self.resolve(&container, argv, layer, &cell.label)?;
        Ok(Invocation {
            root,
            volumes: container.volumes(),
            workdir,
            user,
            env: self.env(cell, phase, index),
            argv,
            hostname: cell.slug.clone(),
            host_network: cell.network == Network::Host,
            network: None,
            limits: limits(&cell.limits),
            stdout,
            stderr,
            max_log: cell.max_log,
            timeout: cell.timeout,
            memory_interval: cell.memory_interval,
            scratch_base: self.scratch.clone(),
            upper_on_disk: cell.scratch == Scratch::Disk,
            keep_upper: None,
            security: cell.security.clone(),
            userns: self.userns.clone(),
            counters: if cell.counters {
                self.counters.clone()
            } else {
                Vec::new()
            },
        })
    }

    /// A service of `cell` as a container: its own root, command (`argv`, or its image's when
    /// empty), environment and limits; hardened by default like every workload; no timeout
    /// (it runs until stopped); its output straight to `stdout` and `stderr`.
    pub fn service_invocation(
        &self,
        cell: &Cell,
        service: &Service,
        argv: &[String],
        stdout: PathBuf,
        stderr: PathBuf,
    ) -> Result<Invocation, RunError> {
        let container = Container {
            root: &service.root,
            workdir: service.workdir.as_ref(),
            user: service.user.as_ref(),
            volumes: &service.volumes,
        };
        let what = format!("{}, service {}", cell.label, service.name);
        let Resolved {
            root,
            argv,
            workdir,
            user,
        } = self.resolve(&container, argv, None, &what)?;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Root::Image(r) = &service.root
            && let Some(image) = self.images.get(r)
        {
            env.extend(image.config.env.iter().cloned());
        }
        env.entry("PATH".into())
            .or_insert_with(|| DEFAULT_PATH.into());
        env.extend(service.env.clone());
        env.insert("BENCHBOX_CELL".into(), cell.id.clone());
        env.insert("BENCHBOX_SERVICE".into(), service.name.clone());
        Ok(Invocation {
            root,
            volumes: container.volumes(),
            workdir,
            user,
            env: env.into_iter().collect(),
            argv,
            hostname: service.name.clone(),
            host_network: cell.network == Network::Host,
            network: None,
            limits: limits(&service.limits),
            stdout,
            stderr,
            max_log: cell.max_log,
            timeout: None,
            memory_interval: None,
            scratch_base: self.scratch.clone(),
            upper_on_disk: false,
            keep_upper: None,
            security: Default::default(),
            userns: self.userns.clone(),
            // A service is not measured by its own counters (its columns come from its cgroup).
            counters: Vec::new(),
        })
    }

    /// The root filesystem (a setup's `layer` over the rootfs or the image's layers), and
    /// what the image's config supplies when the matrix leaves it out: command, workdir, user.
    /// `what` names the container in an error.
    fn resolve(
        &self,
        c: &Container,
        argv: &[String],
        layer: Option<&PathBuf>,
        what: &str,
    ) -> Result<Resolved, RunError> {
        let image = match c.root {
            Root::Image(r) => Some(
                self.images
                    .get(r)
                    .ok_or_else(|| RunError::Image(format!("image `{r}` is not resolved")))?,
            ),
            _ => None,
        };
        let root = match c.root {
            Root::Host => RootSpec::Host {
                tmp_lower: layer.cloned(),
            },
            Root::Dir(dir) => RootSpec::Overlay {
                lowers: layer.into_iter().cloned().chain([dir.clone()]).collect(),
            },
            Root::Image(_) => RootSpec::Overlay {
                lowers: layer
                    .into_iter()
                    .cloned()
                    .chain(image.into_iter().flat_map(|i| i.layers.iter().cloned()))
                    .collect(),
            },
        };
        let argv: Vec<String> = match (argv.is_empty(), image) {
            (true, Some(image)) => image
                .config
                .entrypoint
                .iter()
                .chain(&image.config.cmd)
                .cloned()
                .collect(),
            _ => argv.to_vec(),
        };
        if argv.is_empty() {
            return Err(RunError::Usage(format!(
                "cell {what}: no command, and the image has neither Entrypoint nor Cmd\n  hint: set `command`"
            )));
        }
        let workdir = c.workdir.cloned().or_else(|| {
            image
                .and_then(|i| i.config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .map(PathBuf::from)
        });
        let user = c.user.cloned().or_else(|| {
            image
                .and_then(|i| i.config.user.clone())
                .filter(|u| !u.is_empty())
        });
        Ok(Resolved {
            root,
            argv,
            workdir,
            user,
        })
    }
}

/// A container's root, command, workdir and user, with the image's config filled in.
struct Resolved {
    root: RootSpec,
    argv: Vec<String>,
    workdir: Option<PathBuf>,
    user: Option<String>,
}

/// What a workload and a service container have alike in the matrix.
struct Container<'a> {
    root: &'a Root,
    workdir: Option<&'a PathBuf>,
    user: Option<&'a String>,
    volumes: &'a [crate::spec::Volume],
}

impl Container<'_> {
    fn volumes(&self) -> Vec<sandbox::Volume> {
        self.volumes
            .iter()
            .map(|v| sandbox::Volume {
                host: v.host.clone(),
                target: v.target.clone(),
                read_only: v.read_only,
            })
            .collect()
    }
}

fn limits(l: &crate::spec::Limits) -> sandbox::Limits {
    sandbox::Limits {
        cpus: l.cpus.as_ref().map(|c| c.to_string()),
        cpu_quota: l.cpu_quota,
        memory: l.memory,
        pids: l.pids,
    }
}

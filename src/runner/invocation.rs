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
use crate::spec::{Cell, Network, Root, Scratch};

/// Builds the invocations of one run.
pub(super) struct Builder {
    /// The run directory (the output spools are in it).
    pub dir: PathBuf,
    /// The run's scratch directory (invocations' disk layers go under it).
    pub scratch: PathBuf,
    pub images: BTreeMap<String, ResolvedImage>,
    /// Rootless: the containers' user namespace map.
    pub userns: Option<IdMap>,
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
        let image = self.image(cell);
        let root = match &cell.root {
            Root::Host => RootSpec::Host {
                tmp_lower: layer.cloned(),
            },
            Root::Dir(dir) => RootSpec::Overlay {
                lowers: layer.into_iter().cloned().chain([dir.clone()]).collect(),
            },
            Root::Image(r) => {
                let image =
                    image.ok_or_else(|| RunError::Image(format!("image `{r}` is not resolved")))?;
                RootSpec::Overlay {
                    lowers: layer
                        .into_iter()
                        .cloned()
                        .chain(image.layers.iter().cloned())
                        .collect(),
                }
            }
        };
        // The image config supplies what the matrix leaves out: command, workdir, user.
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
                "cell {}: no command, and the image has neither Entrypoint nor Cmd\n  hint: set `command` in [run]",
                cell.label
            )));
        }
        let workdir = cell.workdir.clone().or_else(|| {
            image
                .and_then(|i| i.config.working_dir.clone())
                .filter(|w| !w.is_empty())
                .map(PathBuf::from)
        });
        let user = cell.user.clone().or_else(|| {
            image
                .and_then(|i| i.config.user.clone())
                .filter(|u| !u.is_empty())
        });
        Ok(Invocation {
            root,
            volumes: cell
                .volumes
                .iter()
                .map(|v| sandbox::Volume {
                    host: v.host.clone(),
                    target: v.target.clone(),
                    read_only: v.read_only,
                })
                .collect(),
            workdir,
            user,
            env: self.env(cell, phase, index),
            argv,
            hostname: cell.slug.clone(),
            host_network: cell.network == Network::Host,
            limits: sandbox::Limits {
                cpus: cell.limits.cpus.as_ref().map(|c| c.to_string()),
                cpu_quota: cell.limits.cpu_quota,
                memory: cell.limits.memory,
                pids: cell.limits.pids,
            },
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
        })
    }
}

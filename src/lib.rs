//! benchbox: a reproducible benchmark environment manager.
//!
//! Data flows one way (see `README.md`):
//! matrix file -> [`spec`] -> [`plan`] -> [`sandbox`] (one container per invocation)
//! -> [`collect`] -> [`results`] -> [`stats`] -> terminal summary.
//!
//! `spec`, `plan`, `collect` and `stats` are pure; `sandbox` is the only module that
//! unshares, mounts or writes cgroup files, and the only home of `unsafe`.

pub mod collect;
pub mod compare;
pub mod exit;
pub mod host;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod sandbox;
pub mod spec;
pub mod stats;
pub mod ui;

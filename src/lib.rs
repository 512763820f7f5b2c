//! benchbox: a reproducible benchmark environment manager.
//!
//! Data flows one way (see `README.md`):
//! matrix file -> [`spec`] -> [`plan`] -> [`sandbox`] (one container per invocation)
//! -> [`collect`] -> [`results`] -> [`stats`] -> [`render`] (reports) and the terminal summary.
//! [`image`] (the only network code) and [`resolve`] turn image references into layers.
//! [`measurement`] holds what an invocation measured, shared by the sandbox and the results.
//!
//! `spec`, `plan`, `collect`, `stats` and `render` are pure; `sandbox` is the only module that
//! unshares, mounts or writes cgroup files, and the only home of `unsafe`.

pub mod along;
pub mod collect;
pub mod compare;
pub mod disturbance;
pub mod exit;
pub mod export;
pub mod history;
pub mod host;
pub mod image;
pub mod lock;
pub mod markdown;
pub mod measurement;
pub mod merge;
pub mod metrics;
pub mod mode;
pub mod noise;
pub mod plan;
pub mod power;
pub mod rebuild;
pub mod reference;
pub mod render;
pub mod report;
pub mod resolve;
pub mod results;
pub mod revision;
pub mod runner;
pub mod sandbox;
pub mod shard;
pub mod spec;
pub mod stats;
pub mod status;
pub mod ui;

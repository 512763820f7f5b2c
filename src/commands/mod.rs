//! What each command does, one module per command: each `run` takes its parsed arguments, calls
//! the library, prints what the user reads, and returns the exit code or a [`CliError`], which
//! `main` alone prints. Helpers two commands share (reading a matrix, opening the image cache)
//! live here.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use benchbox::image::{self, ImageError, Store};
use benchbox::results::ResultsError;
use benchbox::spec::{self, SpecError, ValidationContext};
use benchbox::{exit, host, lock, resolve, runner};

use crate::cli::CacheArgs;

// Terminal output never fails a command: with stdout or stderr on a pipe that closed early
// (`benchbox run ... 2>&1 | head -3`), the std macros would panic (exit 101) halfway through a
// run. Rust ignores SIGPIPE, so a write to a closed pipe is an EPIPE error, dropped here: the
// run goes on and its files are complete. These shadow the std macros in every command module
// (declared below them).
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod calibrate;
pub mod check;
pub mod compare;
pub mod completions;
pub mod doctor;
pub mod export;
pub mod history;
pub mod images;
pub mod import;
pub mod man;
pub mod merge;
pub mod plan;
pub mod pull;
pub mod report;
pub mod run;

/// What a command ends with.
pub type Outcome = Result<ExitCode, CliError>;

/// A command that failed: the messages the user reads, each printed as `error: MESSAGE` in
/// order, and the exit code. Every module's error converts into it with the exit code that
/// module documents; where a command maps an error differently, it says so at the call.
#[derive(Debug)]
pub struct CliError {
    code: i32,
    messages: Vec<String>,
}

impl CliError {
    pub fn new(code: i32, message: impl fmt::Display) -> CliError {
        CliError {
            code,
            messages: vec![message.to_string()],
        }
    }

    /// Several failures at once, printed in order.
    pub fn all(code: i32, messages: Vec<String>) -> CliError {
        CliError { code, messages }
    }

    /// Bad usage (exit 2).
    pub fn usage(message: impl fmt::Display) -> CliError {
        CliError::new(exit::USAGE, message)
    }

    /// A further failure found in the same pass, printed after this one; this one's exit code
    /// stands.
    pub fn and(mut self, other: CliError) -> CliError {
        self.messages.extend(other.messages);
        self
    }

    pub fn exit_code(&self) -> ExitCode {
        code(self.code)
    }

    pub fn messages(&self) -> &[String] {
        &self.messages
    }
}

impl From<SpecError> for CliError {
    fn from(e: SpecError) -> CliError {
        CliError::new(e.exit_code(), e)
    }
}

impl From<ImageError> for CliError {
    fn from(e: ImageError) -> CliError {
        CliError::new(e.exit_code(), e)
    }
}

impl From<resolve::ResolveError> for CliError {
    fn from(e: resolve::ResolveError) -> CliError {
        CliError::new(e.exit_code(), e)
    }
}

impl From<benchbox::plan::PlanError> for CliError {
    fn from(e: benchbox::plan::PlanError) -> CliError {
        CliError::new(e.exit_code(), e)
    }
}

impl From<runner::RunError> for CliError {
    fn from(e: runner::RunError) -> CliError {
        CliError::new(e.exit_code(), e)
    }
}

/// A run that cannot be read is the user's to fix; one whose files cannot be written is not.
impl From<benchbox::report::ReportError> for CliError {
    fn from(e: benchbox::report::ReportError) -> CliError {
        let code = match e {
            benchbox::report::ReportError::Results(ResultsError::Write { .. }) => exit::INTERNAL,
            _ => exit::USAGE,
        };
        CliError::new(code, e)
    }
}

impl From<ResultsError> for CliError {
    fn from(e: ResultsError) -> CliError {
        benchbox::report::ReportError::from(e).into()
    }
}

/// A lock held by another benchbox is the user's to wait for; failing to take one is not.
impl From<lock::LockError> for CliError {
    fn from(e: lock::LockError) -> CliError {
        let code = match e {
            lock::LockError::InUse { .. } => exit::IN_USE,
            lock::LockError::Io { .. } => exit::INTERNAL,
        };
        CliError::new(code, e)
    }
}

/// An exit code of `exit.rs` as the process's.
pub fn code(c: i32) -> ExitCode {
    ExitCode::from(c as u8)
}

/// What a matrix is checked against before any image is pulled: this host's cpus and the paths
/// it names.
fn validation_context() -> ValidationContext {
    ValidationContext {
        online_cpus: host::online_cpus(&host::Roots::default()),
        check_paths: true,
        image_accounts: Default::default(),
    }
}

/// A matrix with its cells built.
fn load_matrix(file: &Path) -> Result<spec::Matrix, CliError> {
    Ok(spec::load(file, &validation_context())?)
}

/// [`load_matrix`] without keeping the cells (see [`spec::open`]).
fn open_matrix(file: &Path) -> Result<spec::LazyMatrix, CliError> {
    Ok(spec::open(file, &validation_context())?)
}

/// The image cache `--cache` names, else the user's default one.
fn open_store(cache: &CacheArgs) -> Result<Store, CliError> {
    let root = match &cache.cache {
        Some(dir) => dir.join(image::store::LAYOUT),
        None => Store::default_root(),
    };
    Ok(Store::open(&root)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_first_code_and_every_message_in_order() {
        let e = CliError::usage("base").and(CliError::new(exit::INTERNAL, "candidate"));
        assert_eq!(e.code, exit::USAGE);
        assert_eq!(e.messages(), ["base", "candidate"]);
    }

    #[test]
    fn a_report_that_cannot_be_written_is_internal_one_that_cannot_be_read_is_usage() {
        let write = ResultsError::Write {
            path: "x".into(),
            source: std::io::Error::other("full"),
        };
        assert_eq!(CliError::from(write).code, exit::INTERNAL);
        let not_a_run = ResultsError::NotARun {
            path: "x".into(),
            reason: "no".into(),
        };
        assert_eq!(CliError::from(not_a_run).code, exit::USAGE);
    }
}

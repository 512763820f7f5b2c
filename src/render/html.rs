//! `report.html` (in progress).
use super::{RenderOptions, Result};
use crate::results::RunResults;

pub fn html(_results: &RunResults, _opts: &RenderOptions) -> Result<String> {
    Ok(String::new())
}

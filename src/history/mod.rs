//! History across runs: the series of each cell's and metric's run medians ordered by source
//! revision, and the change points in them ([`changepoint`]).

pub mod changepoint;

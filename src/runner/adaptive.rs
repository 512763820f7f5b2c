//! The runner's stopping hook for `runs = "auto"`: which measured invocations of an adaptive
//! cell are still wanted. The schedule holds every cell's invocations up to its `max-runs`,
//! interleaved as usual (`plan::schedule`); this hook only skips those of a cell that has
//! stopped, so the cells still running stay interleaved in their rounds. The rule itself is
//! [`crate::stats::stopping`]; the budget is time since this run (or resume) started.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::plan::{Phase, Slot};
use crate::results::{AdaptiveOutcome, Sample};
use crate::spec::Cell;
use crate::stats::stopping::{self, Rule, StopReason};

/// Each adaptive cell's progress, by cell index.
pub(super) struct Stopping {
    cells: HashMap<usize, State>,
    started: Instant,
}

struct State {
    rule: Rule,
    budget: Option<Duration>,
    /// Measured invocations run (any status).
    measured: u32,
    /// Wall times of the ok ones.
    values: Vec<f64>,
    stopped: bool,
}

impl Stopping {
    /// The adaptive cells among `cells`; `previous` says which already stopped (a resumed run:
    /// their remaining invocations stay skipped).
    pub(super) fn new(
        cells: &[Cell],
        previous: impl Fn(&str) -> Option<AdaptiveOutcome>,
    ) -> Stopping {
        let cells = cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let a = c.adaptive?;
                Some((
                    i,
                    State {
                        rule: a.rule(),
                        budget: a.budget,
                        measured: 0,
                        values: Vec::new(),
                        stopped: previous(&c.id).is_some(),
                    },
                ))
            })
            .collect();
        Stopping {
            cells,
            started: Instant::now(),
        }
    }

    /// Whether `slot` is skipped: a measured invocation of an adaptive cell that has stopped.
    /// A spent budget stops the cell here (once past `min-runs`): returned with it.
    pub(super) fn skip(&mut self, slot: &Slot) -> (bool, Option<AdaptiveOutcome>) {
        let Some(state) = self.cells.get_mut(&slot.cell) else {
            return (false, None);
        };
        if slot.phase != Phase::Measure {
            return (false, None);
        }
        if state.stopped {
            return (true, None);
        }
        let spent = state.budget.is_some_and(|b| self.started.elapsed() >= b);
        if spent && state.rule.budget_allows_stop(state.measured) {
            state.stopped = true;
            return (true, Some(state.outcome(StopReason::Budget)));
        }
        (false, None)
    }

    /// After a measured invocation of the cell at `cell`: the outcome when it stops here.
    pub(super) fn observe(&mut self, cell: usize, sample: &Sample) -> Option<AdaptiveOutcome> {
        let state = self.cells.get_mut(&cell)?;
        if sample.phase != Phase::Measure || state.stopped {
            return None;
        }
        state.measured += 1;
        if sample.counts_toward_statistics() {
            state.values.push(sample.measured.wall_s);
        }
        let reason = state.rule.decide(state.measured, &state.values)?;
        state.stopped = true;
        Some(state.outcome(reason))
    }
}

impl State {
    fn outcome(&self, stopped: StopReason) -> AdaptiveOutcome {
        AdaptiveOutcome {
            runs: self.measured,
            stopped,
            ci_width: stopping::relative_half_width(&self.values, stopping::STOP_CONFIDENCE),
            target: self.rule.ci_width,
        }
    }
}

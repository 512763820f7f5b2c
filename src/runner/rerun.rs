//! `[run] rerun-disturbed`: which measured invocations run again, in place, because they came
//! back `disturbed` (see [`crate::disturbance`]), and the cap that keeps a busy host from
//! looping forever.
//!
//! A measured invocation whose status is `ok` and that is flagged `disturbed`, in a cell with
//! `rerun-disturbed = true`, runs again at once (same cell, phase and index); the new row is
//! flagged `rerun` and replaces the disturbed one in the statistics (the reader's rule, in
//! `results::runs_csv`), which stays in runs.csv. A failed or suspect invocation is never run
//! again: rerunning would hide it. Warm-ups never are. A cell gets at most as many reruns as
//! its `runs`; past that a disturbed row stands (it counts) and the run warns once.
//!
//! `--resume` of a run interrupted between a disturbed row and its replacement runs the
//! replacement: the reruns already used are counted from the rows flagged `rerun`, so the
//! decision taken before the interruption is taken again.

use std::collections::{HashMap, HashSet};

use crate::plan::Phase;
use crate::results::Sample;
use crate::spec::Cell;
use crate::status::{Flag, Status};

/// The reruns of a run: used per cell, the slots a resumed run owes a replacement, the cells
/// warned about.
#[derive(Debug, Default)]
pub(super) struct Reruns {
    /// Cell id -> rows flagged `rerun` so far (this run and, resumed, the earlier ones).
    used: HashMap<String, u32>,
    /// (cell id, measured index) whose latest row is replaceable: filled while a resumed
    /// runs.csv is read, then narrowed to those owed a replacement ([`Reruns::owed`]).
    latest_replaceable: HashSet<(String, u32)>,
    /// Cells already warned that their cap was reached.
    warned: HashSet<String>,
}

/// What to do after a measured invocation.
#[derive(Debug, PartialEq)]
pub(super) enum Decision {
    /// Nothing: it stands.
    Stands,
    /// Run the same slot again, in place.
    Again,
    /// It would be run again, but the cell used all its reruns: it stands, and this warning
    /// (once per cell) says so.
    Capped(Option<String>),
}

/// Whether a later `rerun` row may replace `sample`: a measured `ok` row flagged `disturbed`.
fn replaceable(sample: &Sample) -> bool {
    sample.phase == Phase::Measure
        && sample.status == Status::Ok
        && sample.flags.contains(&Flag::Disturbed)
}

impl Reruns {
    /// A row of the runs.csv being resumed, in file order.
    pub fn resumed_row(&mut self, sample: &Sample) {
        if sample.phase != Phase::Measure {
            return;
        }
        if sample.flags.contains(&Flag::Rerun) {
            *self.used.entry(sample.cell_id.to_string()).or_default() += 1;
        }
        let key = (sample.cell_id.to_string(), sample.index);
        if replaceable(sample) {
            self.latest_replaceable.insert(key);
        } else {
            self.latest_replaceable.remove(&key);
        }
    }

    /// Once a resumed runs.csv is read: the measured slots (cell id, index) whose disturbed row
    /// is owed a replacement (the cell reruns disturbed invocations and has reruns left), which
    /// the run runs again, as reruns. Remembers them for [`Reruns::is_owed`].
    pub fn owed(&mut self, cells: &[Cell]) -> HashSet<(String, u32)> {
        let by_id: HashMap<&str, &Cell> = cells.iter().map(|c| (c.id.as_str(), c)).collect();
        let used = &self.used;
        self.latest_replaceable.retain(|(id, _)| {
            by_id
                .get(id.as_str())
                .is_some_and(|c| c.rerun_disturbed && used.get(id).copied().unwrap_or(0) < c.runs)
        });
        self.latest_replaceable.clone()
    }

    /// Whether this slot's next row replaces a disturbed row runs.csv already holds (a resumed
    /// run); its replacement is then counted as used.
    pub fn take_owed(&mut self, cell_id: &str, phase: Phase, index: u32) -> bool {
        if phase != Phase::Measure {
            return false;
        }
        let owed = self
            .latest_replaceable
            .remove(&(cell_id.to_string(), index));
        if owed {
            *self.used.entry(cell_id.to_string()).or_default() += 1;
        }
        owed
    }

    /// After a measured invocation of `cell` came back as `sample`: whether to run it again.
    /// An `Again` is counted as used.
    pub fn decide(&mut self, cell: &Cell, sample: &Sample) -> Decision {
        if !cell.rerun_disturbed || !replaceable(sample) {
            return Decision::Stands;
        }
        let used = self.used.entry(cell.id.clone()).or_default();
        if *used < cell.runs {
            *used += 1;
            return Decision::Again;
        }
        let first = self.warned.insert(cell.id.clone());
        Decision::Capped(first.then(|| cap_warning(cell, sample, *used)))
    }
}

/// "cell X: measured invocation 7 was disturbed again after 5 reruns ...", with the figures
/// and what to do.
fn cap_warning(cell: &Cell, sample: &Sample, used: u32) -> String {
    let d = &sample.measured.disturbance;
    format!(
        "cell {}: measured invocation {} was disturbed (other tasks {:.3} s, steal {:.3} s in {:.3} s wall; threshold {}) after the cell used all {used} of its reruns (`rerun-disturbed` allows as many as `runs`): it and any later disturbed invocation of the cell stand, and count toward the statistics\n  hint: quiet the host (or pin the cell to CPUs nothing else uses: `benchbox doctor` shows what runs), or raise `[run] disturbance-threshold`",
        cell.label,
        sample.index,
        d.other_cpu_s.unwrap_or(0.0),
        d.steal_s.unwrap_or(0.0),
        sample.measured.wall_s,
        crate::disturbance::percent(cell.disturbance_threshold()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(rerun: bool, runs: u32) -> Cell {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            format!("[run]\ncommand = \"true\"\nruns = {runs}\nrerun-disturbed = {rerun}\n"),
        )
        .unwrap();
        let ctx = crate::spec::ValidationContext {
            online_cpus: "0-1".parse().unwrap(),
            check_paths: false,
            image_accounts: Default::default(),
        };
        let m = crate::spec::load(&path, &ctx).unwrap();
        m.cells[0].clone()
    }

    fn sample(cell: &Cell, phase: Phase, index: u32, status: Status, flags: &[Flag]) -> Sample {
        Sample {
            cell_id: cell.id.as_str().into(),
            phase,
            index,
            started_at: String::new(),
            measured: Default::default(),
            status,
            flags: flags.to_vec(),
            reason: String::new(),
            metrics: Default::default(),
        }
    }

    #[test]
    fn only_ok_disturbed_measured_invocations_run_again_up_to_runs() {
        let c = cell(true, 2);
        let mut r = Reruns::default();
        let d = [Flag::Disturbed];
        assert_eq!(
            r.decide(&c, &sample(&c, Phase::Warmup, 0, Status::Ok, &d)),
            Decision::Stands
        );
        assert_eq!(
            r.decide(&c, &sample(&c, Phase::Measure, 0, Status::Failed, &d)),
            Decision::Stands
        );
        assert_eq!(
            r.decide(&c, &sample(&c, Phase::Measure, 0, Status::Suspect, &d)),
            Decision::Stands
        );
        assert_eq!(
            r.decide(&c, &sample(&c, Phase::Measure, 0, Status::Ok, &[])),
            Decision::Stands
        );
        let disturbed = sample(&c, Phase::Measure, 0, Status::Ok, &d);
        assert_eq!(r.decide(&c, &disturbed), Decision::Again);
        assert_eq!(r.decide(&c, &disturbed), Decision::Again);
        // The cap (runs = 2): warned once, then silently.
        match r.decide(&c, &disturbed) {
            Decision::Capped(Some(w)) => {
                assert!(w.contains("all 2 of its reruns"), "{w}");
                assert!(w.contains("hint: quiet the host"), "{w}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.decide(&c, &disturbed), Decision::Capped(None));
        // Off: never.
        let off = cell(false, 2);
        assert_eq!(
            Reruns::default().decide(&off, &sample(&off, Phase::Measure, 0, Status::Ok, &d)),
            Decision::Stands
        );
    }

    #[test]
    fn a_resumed_run_owes_the_replacement_of_a_last_disturbed_row_within_the_cap() {
        let c = cell(true, 2);
        let d = [Flag::Disturbed];
        let mut r = Reruns::default();
        // Invocation 0: disturbed, then replaced. Invocation 1: disturbed, not yet replaced.
        r.resumed_row(&sample(&c, Phase::Measure, 0, Status::Ok, &d));
        r.resumed_row(&sample(&c, Phase::Measure, 0, Status::Ok, &[Flag::Rerun]));
        r.resumed_row(&sample(&c, Phase::Warmup, 0, Status::Ok, &d));
        r.resumed_row(&sample(&c, Phase::Measure, 1, Status::Ok, &d));
        let owed = r.owed(std::slice::from_ref(&c));
        assert_eq!(owed, HashSet::from([(c.id.clone(), 1)]));
        assert!(!r.take_owed(&c.id, Phase::Measure, 0));
        assert!(r.take_owed(&c.id, Phase::Measure, 1));
        assert!(!r.take_owed(&c.id, Phase::Measure, 1), "once");
        // Both reruns are used now.
        let again = sample(&c, Phase::Measure, 1, Status::Ok, &d);
        assert!(matches!(r.decide(&c, &again), Decision::Capped(Some(_))));

        // At the cap already: the disturbed row stood before the interruption, and stands.
        let mut r = Reruns::default();
        for i in 0..2 {
            r.resumed_row(&sample(&c, Phase::Measure, i, Status::Ok, &d));
            r.resumed_row(&sample(&c, Phase::Measure, i, Status::Ok, &[Flag::Rerun]));
        }
        r.resumed_row(&sample(&c, Phase::Measure, 2, Status::Ok, &d));
        assert!(r.owed(std::slice::from_ref(&c)).is_empty());
        // A cell without the key owes nothing.
        let off = cell(false, 2);
        let mut r = Reruns::default();
        r.resumed_row(&sample(&off, Phase::Measure, 0, Status::Ok, &d));
        assert!(r.owed(std::slice::from_ref(&off)).is_empty());
    }
}

//! The plan as results.json records it: a typed [`Plan`], written with its keys sorted
//! ([`serialize_sorted`]) as results.json has always held it.

use serde::{Deserialize, Serialize};

use crate::spec::{Axis, Cell, Matrix, Order};

/// The expanded plan of a run: the matrix's cells and what applies to all of them, as
/// `benchbox plan --json` prints it ([`write_json`]) and results.json records it (`plan`, with
/// [`serialize_sorted`]). Keys a file lacks read as their defaults; unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub source_sha256: String,
    pub order: Order,
    pub seed: Option<u64>,
    pub allow_failures: bool,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
    pub warnings: Vec<String>,
    /// The matrix's `[report]` (figure options); left out when it has none, so plans of
    /// matrices without it are as they were.
    #[serde(skip_serializing_if = "crate::spec::ReportOptions::is_default")]
    pub report: crate::spec::ReportOptions,
}

impl Plan {
    pub fn of(matrix: &Matrix) -> Plan {
        Plan {
            name: matrix.name.clone(),
            description: matrix.description.clone(),
            source_sha256: matrix.source_sha256.clone(),
            order: matrix.order,
            seed: matrix.seed,
            allow_failures: matrix.allow_failures,
            axes: matrix.axes.clone(),
            cells: matrix.cells.clone(),
            warnings: matrix.warnings.clone(),
            report: matrix.report.clone(),
        }
    }

    /// The plan's entry for the cell with this id.
    pub fn cell(&self, id: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.id == id)
    }
}

/// The plan as results.json holds it: every object's keys in alphabetical order, at every
/// level (results.json has always held it so: it used to be kept as a `serde_json::Value`,
/// whose maps are sorted). Each cell goes through a `Value` on its own, so memory stays flat.
pub fn serialize_sorted<S: serde::Serializer>(plan: &Plan, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{Error, SerializeSeq};
    struct Cells<'a>(&'a [Cell]);
    impl Serialize for Cells<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for cell in self.0 {
                seq.serialize_element(&serde_json::to_value(cell).map_err(S::Error::custom)?)?;
            }
            seq.end()
        }
    }
    // Alphabetical; an axis's keys (`name`, `values`) already are.
    #[derive(Serialize)]
    struct Sorted<'a> {
        allow_failures: bool,
        axes: &'a [Axis],
        cells: Cells<'a>,
        description: Option<&'a str>,
        name: &'a str,
        order: Order,
        seed: Option<u64>,
        source_sha256: &'a str,
        warnings: &'a [String],
    }
    Sorted {
        allow_failures: plan.allow_failures,
        axes: &plan.axes,
        cells: Cells(&plan.cells),
        description: plan.description.as_deref(),
        name: &plan.name,
        order: plan.order,
        seed: plan.seed,
        source_sha256: &plan.source_sha256,
        warnings: &plan.warnings,
    }
    .serialize(s)
}

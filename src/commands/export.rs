//! `benchbox export`: the matrix's shards as a Slurm script, a Kubernetes Job or a GitHub
//! workflow, printed to stdout (see `benchbox::export`).

use benchbox::export::{self, Engine, Export};
use benchbox::{exit, plan, spec};

use super::{CliError, Outcome, code, validation_context};
use crate::cli::{ExportArgs, ExportCommon, ExportEngine};

pub fn run(args: ExportArgs) -> Outcome {
    let (common, engine) = match args.engine {
        ExportEngine::Slurm(a) => (
            a.common,
            Engine::Slurm {
                partition: a.partition,
                time: a.time,
                benchbox: a.benchbox,
            },
        ),
        ExportEngine::K8s(a) => (
            a.common,
            Engine::K8s {
                image: a.image,
                pvc: a.pvc,
            },
        ),
        ExportEngine::Github(a) => (a.common, Engine::Github { runs_on: a.runs_on }),
    };
    let ExportCommon {
        file,
        shards,
        shard_by,
        out,
    } = common;
    let matrix = spec::load_for_run(&file, &validation_context(), plan::MAX_RUN_CELLS)?;
    let e = Export {
        matrix: &matrix,
        file: file.display().to_string(),
        shards,
        by: shard_by.into(),
        out,
    };
    let text = export::render(&e, &engine).map_err(CliError::usage)?;
    print!("{text}");
    Ok(code(exit::OK))
}

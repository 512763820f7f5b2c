//! The GitHub Actions export: a workflow with one job per shard (a matrix over the shard
//! index), each uploading its run as an artifact, and a job that downloads them all and
//! merges them.

use std::fmt::Write as _;

use super::{Export, sh_quote, yaml_quote};

pub(super) fn render(e: &Export, runs_on: &str) -> String {
    let shards: Vec<String> = (0..e.shards).map(|k| k.to_string()).collect();
    let out = sh_quote(&e.out);
    let name = sh_quote(&e.matrix.name);
    let mut s = String::new();
    writeln!(
        s,
        "# benchbox: matrix `{}` ({}) in {} shard(s) by {}, as a GitHub Actions workflow.\n\
         # Each shard job runs one shard as root (see the README's GitHub Actions section for\n\
         # installing benchbox and for rootless runs) and uploads its run; `merge` merges them.",
        e.matrix.name, e.file, e.shards, e.by
    )
    .unwrap();
    write!(
        s,
        "name: benchbox shards
on: workflow_dispatch
jobs:
  shard:
    runs-on: {runs_on}
    strategy:
      fail-fast: false
      matrix:
        shard: [{shards}]
    steps:
      - uses: actions/checkout@v4
      # Install benchbox here (a release binary, or cargo install), on the PATH.
      - run: sudo \"$(command -v benchbox)\" {run}
      - run: sudo chown -R \"$USER\" {out}
      - uses: actions/upload-artifact@v4
        with:
          name: benchbox-shard-${{{{ matrix.shard }}}}
          path: {out}
  merge:
    needs: shard
    if: always()
    runs-on: {runs_on}
    steps:
      # Install benchbox here too.
      - uses: actions/download-artifact@v4
        with:
          pattern: benchbox-shard-*
          path: {out}
          merge-multiple: true
      - run: benchbox merge {out}/{name}/*-shard-* --out {out}/{name}/merged
      - uses: actions/upload-artifact@v4
        with:
          name: benchbox-merged
          path: {out}/{name}/merged
",
        runs_on = yaml_quote(runs_on),
        shards = shards.join(", "),
        run = e.run_args("${{ matrix.shard }}", &out),
    )
    .unwrap();
    s
}

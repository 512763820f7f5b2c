//! pgfplots figures: per metric, `plots/medians-KEY.tex` (a `tikzpicture` with a pgfplots
//! axis) and `plots/medians-KEY.csv` (its data): each cell's median with its confidence
//! interval as error bars, in the metric's display unit, so a paper typesets the main figure
//! in its own fonts (`\usepackage{pgfplots}`, then `\input{plots/medians-wall_s.tex}`). The
//! numbers are table.tex's (the same decimals, [`latex::column_decimals`]).
//!
//! The .tex reads its .csv from `\benchboxplotsdir` (default `plots`), so a paper that keeps
//! the files elsewhere says where once. Cells are numbered along x and named by tick labels
//! (escaped), because pgfplots' symbolic coordinates cannot hold every axis value.

use super::{Analysis, MetricTable, latex};

/// One figure: the stem under `plots/` and the two files' text.
pub struct PgfFigure {
    pub stem: String,
    pub tex: String,
    pub csv: String,
}

/// The figures of a run: one per metric with at least one cell that has a median.
pub fn pgfplots_of(analysis: &Analysis) -> Vec<PgfFigure> {
    analysis
        .tables
        .iter()
        .filter(|t| t.rows.iter().any(|r| r.summary.is_some()))
        .map(|t| figure(analysis, t))
        .collect()
}

/// A cell under its tick: its axis values (the axis names are the same for every cell), else
/// its label.
fn tick_label(cell: &crate::results::CellResult) -> String {
    let texts = crate::reference::axis_texts(cell);
    if texts.is_empty() {
        cell.label.clone()
    } else {
        texts
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn figure(analysis: &Analysis, table: &MetricTable) -> PgfFigure {
    let stem = format!("medians-{}", table.metric.key);
    let decimals = latex::column_decimals(table);
    let mut csv = String::from("index,median,lower,upper,minus,plus\n");
    let mut ticks = Vec::new();
    let mut with_interval = 0;
    for row in &table.rows {
        let Some(s) = row.summary else { continue };
        let value = |x: f64| latex::fixed(table, x, decimals);
        // Without an interval, the bar is the median alone (zero length), and the caption
        // comment says how many have one.
        let (lower, upper) = match s.median_ci {
            Some(ci) => {
                with_interval += 1;
                (ci.lower, ci.upper)
            }
            None => (s.median, s.median),
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            ticks.len(),
            value(s.median),
            value(lower),
            value(upper),
            value((s.median - lower).max(0.0)),
            value((upper - s.median).max(0.0)),
        ));
        ticks.push(format!("{{{}}}", latex::escape(&tick_label(row.cell))));
    }
    let results = analysis.results;
    let ylabel = latex::escape(&table.scale.axis_title(&table.metric.title));
    let confidence = results.stats.confidence * 100.0;
    // Long labels turn to run down from their tick, not sideways past the column's edge.
    let rotate = ticks.len() > 4
        || table
            .rows
            .iter()
            .any(|r| tick_label(r.cell).chars().count() > 8);
    let tick_style = if rotate {
        "xticklabel style={rotate=90,anchor=east,font=\\scriptsize},"
    } else {
        "xticklabel style={font=\\scriptsize},"
    };
    let tex = format!(
        "% benchbox {}: run {} of `{}`: {} per cell, median with its {confidence:.0}% CI\n\
         % ({with_interval} of {} cells have one; the others show the median alone).\n\
         % Needs \\usepackage{{pgfplots}}; the data is \\benchboxplotsdir/{stem}.csv.\n\
         \\providecommand{{\\benchboxplotsdir}}{{plots}}%\n\
         \\begin{{tikzpicture}}\n\
         \\begin{{axis}}[\n  width=\\linewidth, height=0.62\\linewidth,\n  \
         ylabel={{{ylabel}}}, ylabel style={{font=\\footnotesize}}, yticklabel style={{font=\\scriptsize}},\n  \
         xtick=data, xticklabels={{{}}},\n  {tick_style}\n  \
         enlarge x limits=0.15, ymajorgrids, grid style={{gray!25}},\n]\n\
         \\addplot+[only marks, mark=*, mark size=1.5pt, error bars/.cd, y dir=both, y explicit]\n  \
         table[x=index, y=median, y error minus=minus, y error plus=plus, col sep=comma]\n  \
         {{\\benchboxplotsdir/{stem}.csv}};\n\
         \\end{{axis}}\n\\end{{tikzpicture}}%\n",
        results.tool_version,
        results.run_id,
        results.matrix_name,
        table.metric.title,
        ticks.len(),
        ticks.join(","),
    );
    PgfFigure { stem, tex, csv }
}

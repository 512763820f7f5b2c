//! The plots' self-contained files, from the very SVG plotters drew: a PDF with the DejaVu font
//! embedded (svg2pdf), an SVG with its text as outlines (usvg's writer, so it needs no font
//! where it is opened), and `plots/captions.tex` with each figure's caption as a LaTeX macro.
//! The font database holds only the font compiled into the binary: the host's fonts never
//! enter a figure, so the same results give the same bytes anywhere.

use std::sync::{Arc, OnceLock};

/// The SVG's user units per inch (its `width`/`height` are in inches, its viewBox in these).
const CSS_PX_PER_IN: f32 = 96.0;

fn fontdb() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(super::plots::FONT_BYTES.to_vec());
        // The SVG names "DejaVu Sans, sans-serif": both resolve to the embedded face.
        db.set_sans_serif_family("DejaVu Sans");
        Arc::new(db)
    })
    .clone()
}

fn tree(svg: &str) -> Result<usvg::Tree, String> {
    let options = usvg::Options {
        font_family: "DejaVu Sans".into(),
        dpi: CSS_PX_PER_IN,
        fontdb: fontdb(),
        ..usvg::Options::default()
    };
    usvg::Tree::from_str(svg, &options).map_err(|e| format!("the SVG does not parse: {e}"))
}

/// The figure as a PDF page of its printed size, the font embedded (subset).
pub fn pdf(svg: &str) -> Result<Vec<u8>, String> {
    let tree = tree(svg)?;
    svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions { dpi: CSS_PX_PER_IN },
    )
    .map_err(|e| format!("cannot convert to PDF: {e}"))
}

/// The figure as an SVG whose text is drawn as outlines: it looks the same with no font
/// installed (a journal's submission system, an old viewer).
pub fn outlined_svg(svg: &str) -> Result<String, String> {
    Ok(tree(svg)?.to_string(&usvg::WriteOptions::default()))
}

/// `plots/captions.tex`: per figure, `\newcommand{\benchboxCaption...}{caption}`, named after
/// the plot's file (`distribution-wall_s` -> `\benchboxCaptionDistributionWallS`).
pub fn captions_tex(plots: &[super::Plot]) -> String {
    let mut out = String::from(
        "% Captions of the figures in this directory, one macro per plot file, written by benchbox.\n% \\input{plots/captions.tex}, then e.g. \\caption{\\benchboxCaptionDistributionWallS}.\n",
    );
    for p in plots {
        out.push_str(&format!(
            "% plots/{stem}.pdf\n\\newcommand{{\\{name}}}{{{text}}}\n",
            stem = p.stem,
            name = macro_name(&p.stem),
            text = latex_escape(&p.caption)
        ));
    }
    out
}

/// `benchboxCaption` and the stem's words capitalised, letters only (digits spelled out: a
/// LaTeX command name has no digits).
pub fn macro_name(stem: &str) -> String {
    const DIGITS: [&str; 10] = [
        "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine",
    ];
    let mut out = String::from("benchboxCaption");
    let mut upper = true;
    for c in stem.chars() {
        if c.is_ascii_alphabetic() {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else if let Some(d) = c.to_digit(10) {
            out.push_str(DIGITS[d as usize]);
            upper = true;
        } else {
            upper = true;
        }
    }
    out
}

/// Text for LaTeX: its special characters escaped, and the symbols the captions use as
/// commands.
pub fn latex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '×' => out.push_str("$\\times$"),
            'µ' => out.push_str("$\\mu$"),
            '–' => out.push_str("--"),
            '≥' => out.push_str("$\\geq$"),
            '<' => out.push_str("$<$"),
            '>' => out.push_str("$>$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_names_are_letters_only() {
        assert_eq!(
            macro_name("distribution-wall_s"),
            "benchboxCaptionDistributionWallS"
        );
        assert_eq!(macro_name("ratios-p99"), "benchboxCaptionRatiosPNineNine");
        assert_eq!(latex_escape("a_b 5% & 2×"), "a\\_b 5\\% \\& 2$\\times$");
    }
}

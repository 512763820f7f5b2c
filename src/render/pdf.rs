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
    let mut pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions { dpi: CSS_PX_PER_IN },
    )
    .map_err(|e| format!("cannot convert to PDF: {e}"))?;
    sort_resource_entries(&mut pdf);
    Ok(pdf)
}

/// The resource dictionaries' kinds svg2pdf writes, each opening a dictionary of one entry a
/// line (`/gs0 6 0 R`).
const RESOURCE_DICTS: [&[u8]; 6] = [
    b"/ExtGState <<",
    b"/XObject <<",
    b"/Font <<",
    b"/ColorSpace <<",
    b"/Pattern <<",
    b"/Shading <<",
];

/// Puts the entries of every resource dictionary in sorted order. svg2pdf writes them from a
/// `HashMap` (a random order per process and per call: the same figure gave different bytes),
/// while their names and object numbers are allocated in drawing order. Sorting the lines of a
/// dictionary keeps its length, so every byte offset, and the cross-reference table, stays
/// valid. One pass over the lines.
fn sort_resource_entries(pdf: &mut [u8]) {
    let mut at = 0;
    // The start of the open dictionary's entries.
    let mut open: Option<usize> = None;
    while at < pdf.len() {
        let end = pdf[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(pdf.len(), |i| at + i + 1);
        let line = pdf[at..end].trim_ascii();
        match open {
            Some(body) if line == b">>" => {
                let mut lines: Vec<Vec<u8>> = pdf[body..at]
                    .split_inclusive(|b| *b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                lines.sort();
                pdf[body..at].copy_from_slice(&lines.concat());
                open = None;
            }
            Some(_) => {}
            None if RESOURCE_DICTS.contains(&line) => open = Some(end),
            None => {}
        }
        at = end;
    }
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

    /// A drawing with several opacities (one graphics state each) and text.
    const SVG: &str = r##"<svg width="1in" height="1in" viewBox="0 0 144 144" xmlns="http://www.w3.org/2000/svg"><circle cx="10" cy="10" r="3" opacity="0.8" fill="#0072B2"/><circle cx="20" cy="10" r="3" opacity="0.6" fill="#0072B2"/><circle cx="30" cy="10" r="3" opacity="0.5" fill="#0072B2"/><circle cx="40" cy="10" r="3" opacity="0.4" fill="#0072B2"/><text x="50" y="50" font-family="DejaVu Sans, sans-serif" font-size="16">Wall 1</text></svg>"##;

    #[test]
    fn the_same_figure_gives_the_same_bytes() {
        let pdf = pdf(SVG).unwrap();
        let svg = outlined_svg(SVG).unwrap();
        // svg2pdf's resource order changed from one call to the next.
        for _ in 0..20 {
            assert!(super::pdf(SVG).unwrap() == pdf);
            assert_eq!(outlined_svg(SVG).unwrap(), svg);
        }
        assert!(pdf.starts_with(b"%PDF-"));
    }

    #[test]
    fn resource_entries_are_sorted_in_place() {
        let mut text =
            b"<<\n  /ExtGState <<\n    /gs1 9 0 R\n    /gs0 6 0 R\n  >>\n>>\nstream".to_vec();
        let len = text.len();
        sort_resource_entries(&mut text);
        assert_eq!(text.len(), len);
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "<<\n  /ExtGState <<\n    /gs0 6 0 R\n    /gs1 9 0 R\n  >>\n>>\nstream"
        );
    }

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

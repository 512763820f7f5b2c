//! Colours of the plots and the HTML page: the Okabe-Ito palette (Okabe & Ito 2008, "Color
//! Universal Design"), eight colours that stay distinguishable under the common forms of colour
//! blindness and in greyscale print better than a rainbow. Black is last: it is kept for text,
//! axes and reference lines, so series cycle through the seven colours before it.

/// `(r, g, b)`, in the order series use them: orange, sky blue, bluish green, yellow, blue,
/// vermillion, reddish purple, black.
pub const OKABE_ITO: [(u8, u8, u8); 8] = [
    (0xE6, 0x9F, 0x00),
    (0x56, 0xB4, 0xE9),
    (0x00, 0x9E, 0x73),
    (0xF0, 0xE4, 0x42),
    (0x00, 0x72, 0xB2),
    (0xD5, 0x5E, 0x00),
    (0xCC, 0x79, 0xA7),
    (0x00, 0x00, 0x00),
];

/// The order series take colours in. Yellow comes last among the colours: on white it has the
/// least contrast, so it is used only when there are six or more series.
const SERIES_ORDER: [usize; 7] = [4, 5, 2, 0, 1, 6, 3];

/// The colour of series `i` (cycling after seven).
pub fn series(i: usize) -> (u8, u8, u8) {
    OKABE_ITO[SERIES_ORDER[i % SERIES_ORDER.len()]]
}

/// `#rrggbb`, for CSS.
pub fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_colours_are_distinct_and_never_black() {
        let colours: Vec<_> = (0..7).map(series).collect();
        for (i, a) in colours.iter().enumerate() {
            assert_ne!(*a, (0, 0, 0));
            assert!(colours[i + 1..].iter().all(|b| b != a));
        }
        assert_eq!(hex(series(0)), "#0072b2");
    }
}

//! Sizes ("512MiB", "1.5G") and durations ("2m", "none") as users write them.
//!
//! Size suffixes, case-insensitive, optional space before the unit:
//! - none or `B`: bytes;
//! - `K`, `M`, `G`, `T` and `KiB`, `MiB`, `GiB`, `TiB`: binary (1024-based). A bare letter is
//!   binary because that is what docker (`--memory 1g`), systemd (`MemoryMax=1G`) and the
//!   cgroup files themselves mean by it;
//! - `KB`, `MB`, `GB`, `TB`: decimal (1000-based), the SI reading of an explicit "B" unit.
//!
//! Fractions are allowed ("1.5G") and rounded to the nearest byte.

use std::time::Duration;

/// Parses a size into bytes; the error is the reason, for "invalid size `...`: reason".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if number.is_empty() {
        return Err("it does not start with a number".into());
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(format!("unknown unit `{unit}`")),
    };
    if number.contains('.') {
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{number}` is not a number"))?;
        let bytes = (value * multiplier as f64).round();
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err("it is too large".into());
        }
        Ok(bytes as u64)
    } else {
        let value: u64 = number.parse().map_err(|_| "it is too large".to_string())?;
        value
            .checked_mul(multiplier)
            .ok_or_else(|| "it is too large".to_string())
    }
}

/// Human form of a byte count for `benchbox plan`: exact binary units when they divide evenly.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, name) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {name}", bytes / size);
        }
    }
    for (size, name) in UNITS {
        if bytes >= size {
            return format!("{:.2} {name}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} B")
}

/// Parses a duration that can be switched off: a humantime duration ("2m", "1h 30m",
/// "500ms"), or "none" (`None`). Zero is a duration like any other here: whether it is allowed
/// is the caller's to say (`timeout = "0s"` is refused, so that only "none" switches it off).
pub fn parse_duration_or_none(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    humantime::parse_duration(t)
        .map(Some)
        .map_err(|e| lowercase_first(&e.to_string()))
}

/// "2m", "1h 30m", "500ms", "7days": a duration as users write them (and humantime reads).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(crate) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("512B").unwrap(), 512);
        assert_eq!(parse_size("100k").unwrap(), 102_400);
        assert_eq!(parse_size("100K").unwrap(), 102_400);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("2T").unwrap(), 2 << 40);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("1kb").unwrap(), 1_000);
        assert_eq!(parse_size("0.5KiB").unwrap(), 512);
    }

    #[test]
    fn bad_sizes() {
        assert_eq!(parse_size("1 GiBs").unwrap_err(), "unknown unit `GiBs`");
        assert_eq!(
            parse_size("lots").unwrap_err(),
            "it does not start with a number"
        );
        assert_eq!(
            parse_size("").unwrap_err(),
            "it does not start with a number"
        );
        assert_eq!(parse_size("1.2.3G").unwrap_err(), "`1.2.3` is not a number");
        assert_eq!(parse_size("99999999999T").unwrap_err(), "it is too large");
        assert_eq!(
            parse_size("99999999999999999999").unwrap_err(),
            "it is too large"
        );
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(512 << 20), "512 MiB");
        assert_eq!(format_size(1000), "1000 B");
        assert_eq!(format_size(3 << 29), "1536 MiB");
        assert_eq!(format_size(1_000_000_000), "953.67 MiB");
    }

    #[test]
    fn durations() {
        let d = parse_duration_or_none;
        assert_eq!(d("2m").unwrap(), Some(Duration::from_secs(120)));
        assert_eq!(d("1h 30m").unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(d("500ms").unwrap(), Some(Duration::from_millis(500)));
        assert_eq!(d("none").unwrap(), None);
        assert_eq!(d(" None ").unwrap(), None);
        // Zero is a duration: the caller refuses it where it would switch something off.
        assert_eq!(d("0s").unwrap(), Some(Duration::ZERO));
        assert_eq!(d("0").unwrap(), Some(Duration::ZERO));
        assert!(d("2 fortnights").is_err());
        assert!(d("soon").is_err());
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "7days");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
    }
}

//! `CpuSet`: a set of cpu numbers in the kernel's list format ("0-1,3").
//!
//! Parsing accepts what `cpuset.cpus` accepts ("0", "0-3", "0,2-3", spaces around items
//! tolerated); display is the canonical form the kernel prints back, so a set read back from a
//! cgroup compares equal as text.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Cpu numbers above this are rejected: no real machine has them, and a typo like
/// "0-4000000000" must not allocate a four-billion-element set.
pub const MAX_CPU: u32 = 65_535;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CpuSet(BTreeSet<u32>);

/// Why a cpu list did not parse; the message is meant to follow "invalid cpuset `...`: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CpuSetError(pub String);

impl CpuSet {
    pub fn new(cpus: impl IntoIterator<Item = u32>) -> CpuSet {
        CpuSet(cpus.into_iter().collect())
    }

    /// The cpus, ascending.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }

    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromStr for CpuSet {
    type Err = CpuSetError;

    fn from_str(s: &str) -> Result<CpuSet, CpuSetError> {
        if s.trim().is_empty() {
            return Err(CpuSetError("the list is empty".into()));
        }
        let mut set = BTreeSet::new();
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(CpuSetError("empty item between commas".into()));
            }
            let (start, end) = match item.split_once('-') {
                Some((a, b)) => (parse_cpu(a)?, parse_cpu(b)?),
                None => {
                    let cpu = parse_cpu(item)?;
                    (cpu, cpu)
                }
            };
            if end < start {
                return Err(CpuSetError(format!("range `{item}` ends before it starts")));
            }
            set.extend(start..=end);
        }
        Ok(CpuSet(set))
    }
}

fn parse_cpu(s: &str) -> Result<u32, CpuSetError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CpuSetError(format!("`{s}` is not a cpu number")));
    }
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_CPU => Ok(n),
        _ => Err(CpuSetError(format!(
            "cpu `{s}` is too large (max {MAX_CPU})"
        ))),
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

// As text in results files, exactly as the kernel would print it.
impl Serialize for CpuSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CpuSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CpuSet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_kernel_lists() {
        assert_eq!("0".parse::<CpuSet>().unwrap(), CpuSet::new([0]));
        assert_eq!("0-3".parse::<CpuSet>().unwrap(), CpuSet::new(0..=3));
        assert_eq!("0,2-3".parse::<CpuSet>().unwrap(), CpuSet::new([0, 2, 3]));
        assert_eq!(" 1 , 0 ".parse::<CpuSet>().unwrap(), CpuSet::new([0, 1]));
        assert_eq!("3,3,2-3".parse::<CpuSet>().unwrap(), CpuSet::new([2, 3]));
    }

    #[test]
    fn rejects_bad_lists() {
        for bad in [
            "", " ", "3-1", "a", "1,,2", "1-", "-1", "1-2-3", "0x1", "+1", "99999999",
        ] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            "3-1".parse::<CpuSet>().unwrap_err().to_string(),
            "range `3-1` ends before it starts"
        );
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(CpuSet::new([0, 1, 3]).to_string(), "0-1,3");
        assert_eq!(CpuSet::new([5]).to_string(), "5");
        assert_eq!(CpuSet::new([0, 2, 4, 5, 6]).to_string(), "0,2,4-6");
        assert_eq!(CpuSet::new([]).to_string(), "");
        assert_eq!(CpuSet::new([0, 1, 3]).len(), 2 + 1);
    }

    #[test]
    fn serde_as_text() {
        let s = CpuSet::new([0, 1, 3]);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"0-1,3\"");
        assert_eq!(serde_json::from_str::<CpuSet>(&json).unwrap(), s);
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(cpus in proptest::collection::btree_set(0u32..300, 1..40)) {
            let set = CpuSet(cpus);
            let text = set.to_string();
            let back: CpuSet = text.parse().unwrap();
            prop_assert_eq!(&back, &set);
            // Canonical: printing again gives the same text.
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn parse_never_panics(s in "[0-9,\\- ]{0,12}") {
            let _ = s.parse::<CpuSet>();
        }
    }
}

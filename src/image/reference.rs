//! Image references as users write them, normalised the way Docker does: parsed by
//! `oci_client::Reference`, with benchbox's reasons for a refusal and its few stricter rules.
//!
//! `eclipse-temurin:21-jre` means `docker.io/library/eclipse-temurin:21-jre`: the first path
//! component names a registry only when it looks like a host (it has a `.` or a `:`, or is
//! `localhost`); otherwise the registry is Docker Hub, whose one-component names live under
//! `library/`. A reference may carry a tag (default `latest`), a digest (`@sha256:<64 hex>`), or
//! both (`name:tag@sha256:...`: the digest decides what is fetched, the tag is kept for display).

use std::fmt;

use super::ImageError;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/eclipse-temurin`, `team/app`.
    pub repository: String,
    /// `21-jre`; `None` only when the reference names a digest alone.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference is pinned.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference as a user writes it: the grammar and Docker's normalisation are
    /// oci-client's (`oci_client::Reference`, the parser its pulls use); what benchbox adds is
    /// a reason a person can act on when it refuses one, and the few rules it is stricter or
    /// wider in (below).
    pub fn parse(input: &str) -> Result<Reference, ImageError> {
        let bad = |why: String| ImageError::BadReference {
            reference: input.to_string(),
            why,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if s.contains("://") {
            return Err(bad(
                "write the reference without a scheme (no http:// or https://)".into(),
            ));
        }
        // The image store verifies sha256 only (oci-client also takes sha384, sha512 and
        // uppercase hex).
        if let Some((_, digest)) = s.split_once('@') {
            check_digest(digest).map_err(bad)?;
        }
        // oci-client's grammar predates bracketed IPv6 hosts, which Docker takes: such a host
        // is parsed as `localhost` and put back afterwards.
        let (v6_host, parsable) = match s.split_once('/') {
            Some((registry, rest)) if registry.starts_with('[') => match registry.rfind(']') {
                Some(end)
                    if registry[end + 1..].is_empty() || registry[end + 1..].starts_with(':') =>
                {
                    (
                        Some(&registry[..=end]),
                        format!("localhost{}/{rest}", &registry[end + 1..]),
                    )
                }
                _ => (None, s.to_string()),
            },
            _ => (None, s.to_string()),
        };
        let parsed: oci_client::Reference =
            parsable.parse().map_err(|e| bad(why_refused(s, &e)))?;
        let mut registry = parsed.registry().to_string();
        if let Some(host) = v6_host {
            // The stand-in is a host (`localhost` or `localhost:port`), so the client kept it.
            let port = registry.strip_prefix("localhost").unwrap_or_default();
            registry = format!("{host}{port}");
        }
        // Port numbers and host labels: oci-client's grammar takes `host:0` and `my_host.io`.
        check_registry(&registry).map_err(bad)?;
        let mut repository = parsed.repository().to_string();
        // oci-client folds index.docker.io into docker.io; Docker's other name for it too.
        if registry == "registry-1.docker.io" {
            registry = DOCKER_HUB.to_string();
            if !repository.contains('/') {
                repository = format!("library/{repository}");
            }
        }
        let tag = parsed.tag().map(str::to_string);
        // oci-client's tag grammar is `\w[\w.-]*` with Unicode word characters.
        if let Some(t) = &tag
            && let Err(why) = check_tag(t)
        {
            return Err(bad(why));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest: parsed.digest().map(str::to_string),
        })
    }

    /// The same repository at another digest (the tag is dropped: the digest is what counts).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host without a port: what the insecure-registry list matches against too.
    pub fn host(&self) -> &str {
        match self.registry.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => &self.registry,
        }
    }

    /// The oci-client form of this reference (the digest wins over the tag, as in the spec).
    pub(crate) fn to_client(&self) -> oci_client::Reference {
        match &self.digest {
            Some(d) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            None => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                self.tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Why oci-client refused `s` (whose digest, if any, is valid), in words a person can act on:
/// its tag, its registry, else its repository name, as the user wrote them.
fn why_refused(s: &str, error: &oci_client::ParseError) -> String {
    if matches!(error, oci_client::ParseError::NameTooLong) {
        return "the repository name is longer than 255 characters".into();
    }
    let rest = s.split_once('@').map_or(s, |(rest, _)| rest);
    // A tag is after the last ':' that comes after the last '/', so `host:5000/app` has none.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let name = match rest[last_slash..].rfind(':') {
        Some(i) => {
            if let Err(why) = check_tag(&rest[last_slash + i + 1..]) {
                return why;
            }
            &rest[..last_slash + i]
        }
        None => rest,
    };
    let repository = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if let Err(why) = check_registry(first) {
                return why;
            }
            path.to_string()
        }
        Some(_) => name.to_string(),
        None => format!("library/{name}"),
    };
    format!(
        "{repository:?} is not a valid repository name (lowercase letters, digits, '.', '_', '-', separated by '/')"
    )
}

/// A tag is 1 to 128 ASCII letters, digits, '_', '.' and '-', not starting with '.' or '-'.
fn check_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!("{tag:?} is not a valid tag"))
    }
}

/// A digest must be `sha256:` and 64 lowercase hex digits: that is all this store verifies.
pub fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) => {
            Ok(())
        }
        Some(_) => Err(format!(
            "{digest:?} is not a sha256 digest (sha256: then 64 lowercase hex digits)"
        )),
        None => Err(format!("{digest:?}: only sha256 digests are supported")),
    }
}

/// A registry is `host` or `host:port`, as Docker reads it: dot-separated labels of letters,
/// digits and inner `-` (or a bracketed IPv6 address), and a port from 1 to 65535.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        // `[::1]:5000` has a port, `[::1]` and `[::1` do not.
        Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => {
            (h, Some(p))
        }
        _ => (registry, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.split('.').all(label_ok),
    };
    if !host_ok {
        return Err(format!(
            "{host:?} is not a valid registry host (letters, digits and '-' in labels separated by '.')"
        ));
    }
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p > 0 && port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{port:?} is not a valid registry port (a number from 1 to 65535)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(
            p("eclipse-temurin:21-jre"),
            "docker.io/library/eclipse-temurin:21-jre"
        );
        assert_eq!(p("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(p("team/app:1"), "docker.io/team/app:1");
        assert_eq!(
            p("index.docker.io/library/alpine"),
            "docker.io/library/alpine:latest"
        );
    }

    #[test]
    fn hosts_ports_and_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/x/y@{d}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.host(), "127.0.0.1");
        assert_eq!(r.repository, "x/y");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(p("localhost/app"), "localhost/app:latest");
        assert_eq!(p("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(
            p("my-registry.example.com/a/b"),
            "my-registry.example.com/a/b:latest"
        );
        assert_eq!(p("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(
            p(&format!("ghcr.io/o/a:t@{d}")),
            format!("ghcr.io/o/a:t@{d}")
        );
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "",
            "Upper/Case",
            "a:b:c",
            "x@sha256:abc",
            "x@md5:00",
            "http://h/a",
            "a:",
            "::::@@@",
            "::::",
            "host:99999/app",
            "host:0/app",
            "my_host.io/app",
            "-host.io/app",
            "host.io:/app",
            "[::1/app",
        ] {
            let e = Reference::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid image reference"), "{bad}: {e}");
        }
    }

    #[test]
    fn refusals_name_the_part_at_fault() {
        let why = |s: &str| match Reference::parse(s).unwrap_err() {
            ImageError::BadReference { why, .. } => why,
            other => panic!("{other}"),
        };
        let hex = "a".repeat(64);
        assert_eq!(why(" "), "it is empty");
        assert!(why("https://ghcr.io/a").contains("without a scheme"));
        assert!(why(&format!("a@sha512:{hex}{hex}")).contains("only sha256"));
        assert!(why(&format!("a@sha256:{}", "A".repeat(64))).contains("not a sha256 digest"));
        assert_eq!(why("temurin:2 1"), "\"2 1\" is not a valid tag");
        assert_eq!(why("temurin:é"), "\"é\" is not a valid tag");
        assert_eq!(why("a:-x"), "\"-x\" is not a valid tag");
        assert!(why("Upper/Case").starts_with("\"Upper/Case\" is not a valid repository"));
        assert!(why("Upper").starts_with("\"library/Upper\" is not a valid repository"));
        assert!(why("ghcr.io/o/a..b").starts_with("\"o/a..b\" is not a valid repository"));
        assert!(why("host:0/app").contains("\"0\" is not a valid registry port"));
        assert!(why("my_host.io/app").contains("\"my_host.io\" is not a valid registry host"));
        assert!(why("[::g]:5000/app").contains("is not a valid registry host"));
        assert!(why("[::1]x/app").contains("\"[::1]x\" is not a valid registry host"));
        assert!(why(&"a".repeat(300)).contains("longer than 255"));
    }

    #[test]
    fn docker_hub_aliases_and_ipv6_hosts() {
        assert_eq!(
            p("registry-1.docker.io/alpine:3"),
            "docker.io/library/alpine:3"
        );
        assert_eq!(p("registry-1.docker.io/a/b"), "docker.io/a/b:latest");
        assert_eq!(p("[::1]/app:v2"), "[::1]/app:v2");
        let r = Reference::parse("[fe80::1]:5000/team/app").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.host()),
            ("[fe80::1]:5000", "team/app", "[fe80::1]")
        );
        // The client form names the same thing.
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Reference::parse(&format!("alpine:3@{d}")).unwrap();
        assert_eq!(
            r.to_client().whole(),
            format!("docker.io/library/alpine@{d}")
        );
    }
}

//! Image references as users write them, normalised the way Docker does.
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
    /// Parses a reference as a user writes it.
    pub fn parse(input: &str) -> Result<Reference, ImageError> {
        let bad = |why: &str| ImageError::BadReference {
            reference: input.to_string(),
            why: why.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.contains("://") {
            return Err(bad(
                "write the reference without a scheme (no http:// or https://)",
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|why| bad(&why))?;
                (rest, Some(digest.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/', so `host:5000/app` has none.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(bad(&format!("{tag:?} is not a valid tag")));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        check_registry(&registry).map_err(|why| bad(&why))?;
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(&format!(
                "{repository:?} is not a valid repository name (lowercase letters, digits, '.', '_', '-', separated by '/')"
            )));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
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
}

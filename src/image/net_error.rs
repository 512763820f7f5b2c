//! Why a registry could not be reached, in words a user acts on (pure: an error chain in, a
//! message and a hint out). The network code is `registry.rs`; this only reads its errors.
//!
//! The causes, from the error's sources (reqwest wraps hyper, which wraps the resolver's,
//! the socket's and rustls's errors): the host name does not resolve; nothing listens on the
//! port; the TLS handshake failed; the peer answered a TLS hello in plain HTTP (the one case
//! where marking the registry insecure is the fix); a timeout. Anything else keeps the chain.

use std::error::Error;

/// A connection to a registry that failed: the message and the hint of
/// [`super::ImageError::Unreachable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreachable {
    pub message: String,
    pub hint: String,
}

/// Where the connection went: `registry` as the reference names it (`host[:port]`), `host`
/// without the port, and whether it was spoken to in plain HTTP.
pub(crate) struct Target<'a> {
    pub registry: &'a str,
    pub host: &'a str,
    pub plain_http: bool,
}

impl Target<'_> {
    /// `host:port`, with the scheme's port when the reference names none.
    fn address(&self) -> String {
        if self.registry != self.host {
            self.registry.to_string()
        } else {
            format!("{}:{}", self.host, if self.plain_http { 80 } else { 443 })
        }
    }
}

/// The cause of `error` (the error of a request to `target`), from its chain of sources.
pub(crate) fn classify(
    error: &(dyn Error + 'static),
    target: &Target,
    timed_out: bool,
) -> Unreachable {
    let chain = chain(error);
    let text = chain_text(&chain);
    let address = target.address();
    let insecure_hint = format!(
        "mark it as a plain-HTTP registry: BENCHBOX_INSECURE_REGISTRIES={} (comma-separated; localhost, 127.0.0.1 and ::1 are always plain HTTP)",
        target.registry
    );
    // TLS first: a handshake error also carries an io::Error.
    if let Some(tls) = chain.iter().find_map(|e| rustls_error(*e)) {
        if matches!(
            tls,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
        ) {
            return Unreachable {
                message: format!(
                    "{address} answered the TLS handshake in plain text: it serves plain HTTP, not HTTPS"
                ),
                hint: insecure_hint,
            };
        }
        return Unreachable {
            message: format!("TLS handshake with {address} failed: {tls}"),
            hint: "check the registry's certificate (its name, its expiry, and that a CA this host trusts signed it) and the host's clock".into(),
        };
    }
    if target.plain_http && text.contains("HTTP request to an HTTPS server") {
        return Unreachable {
            message: format!("{address} expects HTTPS, but benchbox spoke plain HTTP to it"),
            hint: format!(
                "remove {} from BENCHBOX_INSECURE_REGISTRIES (localhost, 127.0.0.1 and ::1 are always plain HTTP: serve a TLS registry under another name)",
                target.registry
            ),
        };
    }
    // The most specific kind: wrappers say `Other`.
    let io_kind = chain
        .iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
        .rfind(|k| *k != std::io::ErrorKind::Other);
    if text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("Name or service not known")
    {
        return Unreachable {
            message: format!("cannot resolve host {}", target.host),
            hint: "check the name and your DNS (the registry is the part of the reference before the first `/`)".into(),
        };
    }
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            return Unreachable {
                message: format!("nothing listens on {address} (connection refused)"),
                hint: "check the port, and that the registry is running".into(),
            };
        }
        Some(std::io::ErrorKind::TimedOut) => {
            return timeout(&address);
        }
        Some(std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable) => {
            return Unreachable {
                message: format!("no route to {address}: {text}"),
                hint: "check the host's network connection (and a proxy in HTTPS_PROXY, if any)"
                    .into(),
            };
        }
        _ => {}
    }
    if timed_out || text.contains("timed out") {
        return timeout(&address);
    }
    Unreachable {
        message: format!("cannot reach {address}: {text}"),
        hint: "check the address and port, and that the registry is running".into(),
    }
}

fn timeout(address: &str) -> Unreachable {
    Unreachable {
        message: format!("{address} did not answer in time (10 s to connect, 60 s per read)"),
        hint: "check that the host is up and that no firewall drops the traffic; try again".into(),
    }
}

/// The rustls error `e` is, if it is one.
fn rustls_error<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>()
}

/// `error` and its sources, outermost first. An io::Error that wraps another error (hyper and
/// tokio-rustls wrap theirs, sometimes twice) is followed into it: its own `source` skips it.
fn chain<'a>(error: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    let mut out = vec![error];
    let mut current = error;
    loop {
        let inner = match current.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(wrapped) => Some(wrapped as &(dyn Error + 'static)),
                None => io.source(),
            },
            None => current.source(),
        };
        match inner {
            Some(next) => {
                out.push(next);
                current = next;
            }
            None => return out,
        }
    }
}

/// `a: b: c`, each source once (reqwest's top-level message alone says little).
fn chain_text(chain: &[&(dyn Error + 'static)]) -> String {
    let mut out = String::new();
    for e in chain {
        let text = e.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn Error + Send + Sync>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self.1.as_ref())
        }
    }

    const TLS: Target = Target {
        registry: "reg.example:5000",
        host: "reg.example",
        plain_http: false,
    };

    #[test]
    fn causes_from_the_chain() {
        let refused = Wrap(
            "error sending request",
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        );
        let u = classify(&refused, &TLS, false);
        assert_eq!(
            u.message,
            "nothing listens on reg.example:5000 (connection refused)"
        );
        assert!(!u.hint.contains("INSECURE"), "{u:?}");

        // As hyper hands it up: inside an io::Error inside an io::Error.
        let plain = Wrap(
            "client error (Connect)",
            Box::new(std::io::Error::other(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            ))),
        );
        let u = classify(&plain, &TLS, false);
        assert!(u.message.contains("plain HTTP, not HTTPS"), "{u:?}");
        assert!(
            u.hint
                .contains("BENCHBOX_INSECURE_REGISTRIES=reg.example:5000"),
            "{u:?}"
        );

        let cert = Wrap(
            "client error (Connect)",
            Box::new(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            )),
        );
        let u = classify(&cert, &TLS, false);
        assert!(
            u.message.starts_with(
                "TLS handshake with reg.example:5000 failed: invalid peer certificate"
            ),
            "{u:?}"
        );
        assert!(!u.hint.contains("INSECURE"), "{u:?}");

        let slow = Wrap("operation timed out", Box::new(std::io::Error::other("x")));
        let u = classify(&slow, &TLS, true);
        assert!(u.message.contains("did not answer in time"), "{u:?}");

        let host_only = Target {
            registry: "ghcr.io",
            host: "ghcr.io",
            plain_http: false,
        };
        let u = classify(
            &Wrap("boom", Box::new(std::io::Error::other("odd"))),
            &host_only,
            false,
        );
        assert_eq!(u.message, "cannot reach ghcr.io:443: boom: odd");
    }
}

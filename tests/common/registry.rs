//! Registries for the image tests: Debian's real `docker-registry` on 127.0.0.1 (port 0, temp
//! storage, stopped on drop), a tiny fault-injecting registry for transfer errors, and a raw HTTP
//! helper for what the client under test does not do (pushing an index).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// A running `docker-registry serve` with its own storage directory.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// stderr (the registry's own log) and stdout (its access log).
    log: PathBuf,
    access_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        assert!(
            std::path::Path::new(BINARY).exists(),
            "{BINARY} is missing: the image tests need a real registry (apt-get install docker-registry)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let access_log = dir.path().join("access.log");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&access_log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut reg = Registry {
            child,
            addr: String::new(),
            log,
            access_log,
            _dir: dir,
        };
        // The registry logs the address it really bound ("listening on 127.0.0.1:PORT").
        let deadline = Instant::now() + Duration::from_secs(20);
        while reg.addr.is_empty() {
            assert!(
                Instant::now() < deadline,
                "registry did not start:\n{}",
                reg.log()
            );
            if let Some(status) = reg.child.try_wait().unwrap() {
                panic!("registry exited with {status}:\n{}", reg.log());
            }
            if let Some(i) = reg.log().find("listening on ") {
                let rest = &reg.log()[i + "listening on ".len()..];
                reg.addr = rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .into();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        while http(&reg.addr, "GET", "/v2/", &[], b"").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "registry never answered /v2/:\n{}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        reg
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times a blob was served in full (access log: `"GET /v2/REPO/blobs/D ..." 200`).
    pub fn blob_downloads(&self, repo: &str, digest: &str) -> usize {
        let needle = format!("\"GET /v2/{repo}/blobs/{digest} HTTP/1.1\" 200");
        let access = std::fs::read_to_string(&self.access_log).unwrap_or_default();
        access.matches(&needle).count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; `(status, body)`, or None when nothing answers.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out[head_end + 4..].to_vec()))
}

/// What the fault-injecting registry does to one blob.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Announce the full length, send half, close: for the first N requests of the blob.
    TruncateFirst(usize),
    /// Send the right length with one byte flipped.
    Corrupt,
}

/// A minimal registry (GET only) that serves one repository from memory and misbehaves on one
/// blob. Each response closes its connection.
pub struct FaultyRegistry {
    pub addr: String,
    /// Requests per path.
    pub requests: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl FaultyRegistry {
    /// `manifests`: tag or digest -> (media type, bytes); `blobs`: digest -> bytes.
    pub fn start(
        repo: &str,
        manifests: HashMap<String, (String, Vec<u8>)>,
        blobs: HashMap<String, Vec<u8>>,
        faulty: &str,
        fault: Fault,
    ) -> FaultyRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        let (repo, faulty) = (repo.to_string(), faulty.to_string());
        let shared = Arc::new((manifests, blobs));
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (reqs, repo, faulty, shared) =
                            (reqs.clone(), repo.clone(), faulty.clone(), shared.clone());
                        std::thread::spawn(move || {
                            serve(conn, &repo, &shared.0, &shared.1, &faulty, fault, &reqs)
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultyRegistry {
            addr,
            requests,
            stop,
        }
    }

    pub fn count(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultyRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    conn: TcpStream,
    repo: &str,
    manifests: &HashMap<String, (String, Vec<u8>)>,
    blobs: &HashMap<String, Vec<u8>>,
    faulty: &str,
    fault: Fault,
    requests: &Mutex<HashMap<String, usize>>,
) {
    conn.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let n = {
        let mut r = requests.lock().unwrap();
        let n = r.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let mut conn = conn;
    let mut respond = |status: &str, ctype: &str, extra: &str, body: &[u8], send: usize| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes());
        if method != "HEAD" {
            let _ = conn.write_all(&body[..send.min(body.len())]);
        }
        let _ = conn.flush();
    };
    let not_found = br#"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#;
    if path == "/v2/" {
        respond("200 OK", "application/json", "", b"{}", 2);
    } else if let Some(r) = path.strip_prefix(&format!("/v2/{repo}/manifests/")) {
        match manifests.get(r) {
            Some((mt, body)) => {
                let d = format!("Docker-Content-Digest: {}\r\n", digest(body));
                respond("200 OK", mt, &d, body, body.len())
            }
            None => respond(
                "404 Not Found",
                "application/json",
                "",
                not_found,
                not_found.len(),
            ),
        }
    } else if let Some(d) = path.strip_prefix(&format!("/v2/{repo}/blobs/")) {
        match blobs.get(d) {
            Some(body) if d == faulty => match fault {
                Fault::TruncateFirst(k) if n <= k => respond(
                    "200 OK",
                    "application/octet-stream",
                    "",
                    body,
                    body.len() / 2,
                ),
                Fault::TruncateFirst(_) => {
                    respond("200 OK", "application/octet-stream", "", body, body.len())
                }
                Fault::Corrupt => {
                    let mut bad = body.clone();
                    bad[0] ^= 0xff;
                    respond("200 OK", "application/octet-stream", "", &bad, bad.len())
                }
            },
            Some(body) => respond("200 OK", "application/octet-stream", "", body, body.len()),
            None => respond(
                "404 Not Found",
                "application/json",
                "",
                not_found,
                not_found.len(),
            ),
        }
    } else {
        respond(
            "404 Not Found",
            "application/json",
            "",
            not_found,
            not_found.len(),
        );
    }
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

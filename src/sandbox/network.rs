//! A network namespace shared by several containers: a cell's services and its workload talk
//! over its loopback, and nothing else (no interface but `lo`, so no route to the host or
//! anywhere). benchbox holds it by a descriptor only: no bind mount under /run/netns, so a
//! benchbox that dies (even by SIGKILL) leaves nothing behind; the namespace goes when the
//! last descriptor and the last process in it are gone.
//!
//! Making one and probing a port in it both switch one thread's network namespace (a network
//! namespace is per thread): each happens on a short-lived thread of its own, so no other
//! thread of benchbox ever changes namespace. Both need CAP_SYS_ADMIN (root).

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sched::{CloneFlags, setns, unshare};

use super::{Result, SandboxError};

/// One network namespace with its loopback up.
#[derive(Debug)]
pub struct Network {
    ns: OwnedFd,
}

impl Network {
    /// A new, empty network namespace with `lo` up.
    pub fn create() -> Result<Network> {
        let made = std::thread::spawn(|| -> std::result::Result<OwnedFd, String> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot create a network namespace: {e}"))?;
            super::mounts::loopback_up()?;
            std::fs::File::open("/proc/thread-self/ns/net")
                .map(OwnedFd::from)
                .map_err(|e| format!("cannot open the new network namespace: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the thread making a network namespace panicked".into()));
        made.map(|ns| Network { ns }).map_err(SandboxError::Setup)
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` in this namespace (one
    /// attempt, waiting at most `timeout`).
    pub fn accepts_tcp(&self, port: u16, timeout: Duration) -> bool {
        let ns = match self.ns.try_clone() {
            Ok(ns) => ns,
            Err(_) => return false,
        };
        std::thread::spawn(move || {
            if setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
                return false;
            }
            loopback_accepts_tcp(port, timeout)
        })
        .join()
        .unwrap_or(false)
    }
}

/// Whether 127.0.0.1:`port` accepts a TCP connection within `timeout`, in the calling
/// thread's network namespace (the host's, for a cell with `network = "host"`).
pub fn loopback_accepts_tcp(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

impl AsRawFd for Network {
    fn as_raw_fd(&self) -> RawFd {
        self.ns.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_reachable_only_inside_its_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let net = Network::create().unwrap();
        // A listener made inside the namespace, on a thread that joined it.
        let ns = net.ns.try_clone().unwrap();
        let listener = std::thread::spawn(move || {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
        })
        .join()
        .unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(net.accepts_tcp(port, Duration::from_secs(1)));
        // Not from the host's namespace, and not in another fresh one.
        let outside = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(TcpStream::connect_timeout(&outside, Duration::from_millis(200)).is_err());
        assert!(
            !Network::create()
                .unwrap()
                .accepts_tcp(port, Duration::from_millis(200))
        );
        drop(listener);
        assert!(!net.accepts_tcp(port, Duration::from_millis(200)));
    }
}

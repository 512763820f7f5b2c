//! The byte protocol between benchbox and its container's processes, over pipes.
//!
//! Every message is a tag byte, a u32 length (little-endian) and the payload. Two directions:
//! the container reports to the parent ([`Report`], decoded once, as the parent reads it), and
//! the parent tells init which cgroup to use ([`ToInit`]).
//!
//! Both sides of the fork use this file. What the container's processes call ([`send`],
//! [`encode_status`], [`encode_cpu`], [`monotonic_ns`]) allocates nothing: init sends its last
//! messages from a cgroup that may be full. Decoding runs in the parent, except
//! [`ToInit::decode`], which init runs before its workload exists.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use nix::sys::time::TimeValLike;
use nix::time::{ClockId, clock_gettime};

use crate::measurement::Rusage;

// From the container to the parent, over the report pipe. Only the metrics file may exceed
// PIPE_BUF, and init sends it when no other process of the container writes to the pipe any
// more, so messages never interleave.
pub(super) const MSG_READY: u8 = b'R';
pub(super) const MSG_ERROR: u8 = b'E';
pub(super) const MSG_EXEC_ERROR: u8 = b'X';
pub(super) const MSG_STATUS: u8 = b'S';
pub(super) const MSG_EXEC_TIME: u8 = b'T';
pub(super) const MSG_METRICS: u8 = b'M';
/// Init's last message: nothing follows. Also the end of [`ToInit`]'s messages.
pub(super) const MSG_END: u8 = b'Z';
// From the parent to init, over their own pipe (see [`ToInit`]).
const MSG_BIRTH: u8 = b'B';
const MSG_JOIN: u8 = b'J';
const MSG_VIEW: u8 = b'V';

/// The most of the metrics file init passes on (a runaway workload could fill its tmpfs).
pub(super) const METRICS_LIMIT: u64 = 1 << 20;

/// The exec-time message: the exec's instant (ns) and the CPU time before it ([`encode_cpu`]).
pub(super) const EXEC_TIME_LEN: usize = 8 + 16;

/// Init's final status message: the workload's wait status, the instant init reaped it, and
/// the `wait` rusage of everything init reaped (the workload's whole tree).
pub(super) const STATUS_LEN: usize = 4 + 8 + 7 * 8;

/// One message in one `writev` (atomic on a pipe up to PIPE_BUF), with no allocation: init
/// sends its last messages from a cgroup that may be full.
pub(super) fn send(fd: RawFd, tag: u8, payload: &[u8]) {
    let mut head = [tag, 0, 0, 0, 0];
    head[1..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    write_all(fd, [&head, payload]);
}

/// Write both buffers whole, in as few `writev`s as the pipe allows.
pub(super) fn write_all(fd: RawFd, mut parts: [&[u8]; 2]) {
    while parts.iter().any(|p| !p.is_empty()) {
        let iov = parts.map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        });
        // SAFETY: the iovecs point into live buffers of the given lengths.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        if n < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        let mut written = n as usize;
        for part in &mut parts {
            let done = written.min(part.len());
            *part = &part[done..];
            written -= done;
        }
    }
}

/// One framed message; `None` at the end of the pipe (or a message cut short by it).
pub(super) fn read_message(file: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    file.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    file.read_exact(&mut payload).ok()?;
    Some((head[0], payload))
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of every instant in the messages.
pub(super) fn monotonic_ns() -> i64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.num_nanoseconds())
        .unwrap_or(0)
}

/// What the container tells the parent, decoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Report {
    /// The workload is confined and waits for "go".
    Ready,
    /// The container could not be set up.
    Error(String),
    /// The workload could not be started (`argv0` is "?" when the message did not say).
    ExecError { argv0: String, message: String },
    /// The exec's instant and the workload process's CPU time (user, system seconds) before it.
    ExecTime {
        start_ns: i64,
        setup_cpu: (f64, f64),
    },
    /// Init's final status: the workload's wait status, when init reaped it, the tree's rusage.
    Status {
        raw: i32,
        end_ns: i64,
        rusage: Rusage,
    },
    /// The workload's metrics file (cut at the last whole line when it reached the limit).
    Metrics(String),
    /// Init's last message.
    End,
    /// An unknown tag, or a payload of the wrong size: ignored.
    Malformed,
}

impl Report {
    pub(super) fn decode(tag: u8, payload: &[u8]) -> Report {
        match tag {
            MSG_READY => Report::Ready,
            MSG_ERROR => Report::Error(String::from_utf8_lossy(payload).into_owned()),
            MSG_EXEC_ERROR => {
                let text = String::from_utf8_lossy(payload);
                let (argv0, message) = text.split_once('\0').unwrap_or(("?", &text));
                Report::ExecError {
                    argv0: argv0.into(),
                    message: message.into(),
                }
            }
            MSG_EXEC_TIME if payload.len() == EXEC_TIME_LEN => Report::ExecTime {
                start_ns: i64::from_le_bytes(payload[..8].try_into().unwrap()),
                setup_cpu: decode_cpu(&payload[8..]),
            },
            MSG_STATUS if payload.len() == STATUS_LEN => {
                let (raw, end_ns, rusage) = decode_status(payload);
                Report::Status {
                    raw,
                    end_ns,
                    rusage,
                }
            }
            MSG_METRICS => {
                let mut text = payload;
                if text.len() as u64 >= METRICS_LIMIT {
                    // Cut at the limit: drop the partial last line rather than misread its
                    // number.
                    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    text = &text[..whole];
                }
                Report::Metrics(String::from_utf8_lossy(text).into_owned())
            }
            MSG_END => Report::End,
            _ => Report::Malformed,
        }
    }
}

/// The next report; `None` at the end of the pipe.
pub(super) fn read_report(file: &mut impl Read) -> Option<Report> {
    read_message(file).map(|(tag, payload)| Report::decode(tag, &payload))
}

/// What the parent tells init: where the workload is to be born and what to show at
/// /sys/fs/cgroup (see `cgroup::Group`), then an explicit end.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ToInit {
    /// The group's directory, to be born in with `clone3(CLONE_INTO_CGROUP)` (v2).
    Birth(PathBuf),
    /// A file to write "0" into, to join the group otherwise.
    Join(PathBuf),
    /// A directory of the container's view of its cgroups, and the host path shown there.
    View {
        dir: String,
        path: PathBuf,
    },
    End,
}

impl ToInit {
    /// Send this message (the parent's side: it may allocate).
    pub(super) fn send(&self, fd: RawFd) {
        match self {
            ToInit::Birth(dir) => send(fd, MSG_BIRTH, dir.as_os_str().as_bytes()),
            ToInit::Join(file) => send(fd, MSG_JOIN, file.as_os_str().as_bytes()),
            ToInit::View { dir, path } => {
                let mut payload = dir.clone().into_bytes();
                payload.push(0);
                payload.extend_from_slice(path.as_os_str().as_bytes());
                send(fd, MSG_VIEW, &payload);
            }
            ToInit::End => send(fd, MSG_END, b""),
        }
    }

    /// `None` for a message init does not know.
    pub(super) fn decode(tag: u8, payload: Vec<u8>) -> Option<ToInit> {
        Some(match tag {
            MSG_BIRTH => ToInit::Birth(PathBuf::from(OsString::from_vec(payload))),
            MSG_JOIN => ToInit::Join(PathBuf::from(OsString::from_vec(payload))),
            MSG_VIEW => {
                let split = payload.iter().position(|&b| b == 0)?;
                let dir = String::from_utf8_lossy(&payload[..split]).into_owned();
                let path = OsString::from_vec(payload[split + 1..].to_vec());
                ToInit::View {
                    dir,
                    path: PathBuf::from(path),
                }
            }
            MSG_END => ToInit::End,
            _ => return None,
        })
    }
}

pub(super) fn rusage_of(ru: &libc::rusage) -> Rusage {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Rusage {
        user_s: tv(ru.ru_utime),
        system_s: tv(ru.ru_stime),
        max_rss_bytes: ru.ru_maxrss as u64 * 1024,
        minor_faults: ru.ru_minflt as u64,
        major_faults: ru.ru_majflt as u64,
        voluntary_switches: ru.ru_nvcsw as u64,
        involuntary_switches: ru.ru_nivcsw as u64,
    }
}

/// The user and system CPU time in `ru`, as the workload's exec-time message carries it.
pub(super) fn encode_cpu(ru: &libc::rusage) -> [u8; 16] {
    let micros = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&micros(ru.ru_utime).to_le_bytes());
    payload[8..].copy_from_slice(&micros(ru.ru_stime).to_le_bytes());
    payload
}

/// (user, system) seconds from [`encode_cpu`]'s payload; nothing from any other.
fn decode_cpu(payload: &[u8]) -> (f64, f64) {
    if payload.len() != 16 {
        return (0.0, 0.0);
    }
    let micros = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap()) as f64 / 1e6;
    (micros(&payload[..8]), micros(&payload[8..]))
}

pub(super) fn encode_status(raw: i32, end_ns: i64, ru: &libc::rusage) -> [u8; STATUS_LEN] {
    let micros = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    let mut payload = [0u8; STATUS_LEN];
    payload[0..4].copy_from_slice(&raw.to_le_bytes());
    payload[4..12].copy_from_slice(&end_ns.to_le_bytes());
    for (i, field) in [
        micros(ru.ru_utime),
        micros(ru.ru_stime),
        ru.ru_maxrss as u64,
        ru.ru_minflt as u64,
        ru.ru_majflt as u64,
        ru.ru_nvcsw as u64,
        ru.ru_nivcsw as u64,
    ]
    .into_iter()
    .enumerate()
    {
        payload[12 + 8 * i..20 + 8 * i].copy_from_slice(&field.to_le_bytes());
    }
    payload
}

fn decode_status(payload: &[u8]) -> (i32, i64, Rusage) {
    let raw = i32::from_le_bytes(payload[0..4].try_into().unwrap());
    let end_ns = i64::from_le_bytes(payload[4..12].try_into().unwrap());
    let field = |i: usize| u64::from_le_bytes(payload[12 + 8 * i..20 + 8 * i].try_into().unwrap());
    // SAFETY: zeroed rusage is a valid plain-data struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let timeval = |us: u64| libc::timeval {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_usec: (us % 1_000_000) as libc::suseconds_t,
    };
    ru.ru_utime = timeval(field(0));
    ru.ru_stime = timeval(field(1));
    ru.ru_maxrss = field(2) as libc::c_long;
    ru.ru_minflt = field(3) as libc::c_long;
    ru.ru_majflt = field(4) as libc::c_long;
    ru.ru_nvcsw = field(5) as libc::c_long;
    ru.ru_nivcsw = field(6) as libc::c_long;
    (raw, end_ns, rusage_of(&ru))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = vec![MSG_READY, 0, 0, 0, 0];
        buf.extend([MSG_ERROR, 3, 0, 0, 0, b'a', b'b', b'c']);
        buf.extend([MSG_STATUS, 2, 0]); // truncated: ignored
        let mut input = &buf[..];
        assert_eq!(read_message(&mut input), Some((MSG_READY, vec![])));
        assert_eq!(read_message(&mut input), Some((MSG_ERROR, b"abc".to_vec())));
        assert_eq!(read_message(&mut input), None);
    }

    #[test]
    fn reports_decode() {
        assert_eq!(
            Report::decode(MSG_EXEC_ERROR, b"prog\0not found"),
            Report::ExecError {
                argv0: "prog".into(),
                message: "not found".into()
            }
        );
        assert_eq!(
            Report::decode(MSG_EXEC_ERROR, b"no separator"),
            Report::ExecError {
                argv0: "?".into(),
                message: "no separator".into()
            }
        );
        assert_eq!(Report::decode(MSG_STATUS, b"short"), Report::Malformed);
        assert_eq!(Report::decode(MSG_EXEC_TIME, b"short"), Report::Malformed);
        assert_eq!(Report::decode(b'?', b""), Report::Malformed);
        let mut payload = [0u8; EXEC_TIME_LEN];
        payload[..8].copy_from_slice(&42i64.to_le_bytes());
        assert_eq!(
            Report::decode(MSG_EXEC_TIME, &payload),
            Report::ExecTime {
                start_ns: 42,
                setup_cpu: (0.0, 0.0)
            }
        );
        // A metrics file at the limit loses its partial last line.
        let mut big = b"a 1\nb 2\n".to_vec();
        big.resize(METRICS_LIMIT as usize, b'x');
        assert_eq!(
            Report::decode(MSG_METRICS, &big),
            Report::Metrics("a 1\nb 2\n".into())
        );
        assert_eq!(
            Report::decode(MSG_METRICS, b"a 1\nb"),
            Report::Metrics("a 1\nb".into())
        );
    }

    #[test]
    fn messages_to_init_round_trip() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let sent = [
            ToInit::Birth("/sys/fs/cgroup/g".into()),
            ToInit::Join("/sys/fs/cgroup/cpu/g/cgroup.procs".into()),
            ToInit::View {
                dir: "cpu".into(),
                path: "/sys/fs/cgroup/cpu/g".into(),
            },
            ToInit::End,
        ];
        for message in &sent {
            use std::os::fd::AsRawFd;
            message.send(w.as_raw_fd());
        }
        drop(w);
        let mut pipe = std::fs::File::from(r);
        let mut received = Vec::new();
        while let Some((tag, payload)) = read_message(&mut pipe) {
            received.push(ToInit::decode(tag, payload).unwrap());
        }
        assert_eq!(received, sent);
        assert_eq!(ToInit::decode(MSG_VIEW, b"no nul".to_vec()), None);
        assert_eq!(ToInit::decode(MSG_READY, vec![]), None);
    }

    #[test]
    fn status_round_trips() {
        // SAFETY: zeroed rusage is a valid plain-data struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        ru.ru_utime = libc::timeval {
            tv_sec: 1,
            tv_usec: 250_000,
        };
        ru.ru_stime = libc::timeval {
            tv_sec: 0,
            tv_usec: 5,
        };
        ru.ru_maxrss = 2048;
        ru.ru_nivcsw = 7;
        let payload = encode_status(256, 42, &ru);
        assert_eq!(payload.len(), STATUS_LEN);
        let (raw, end, rusage) = decode_status(&payload);
        assert_eq!((raw, end), (256, 42));
        assert_eq!(rusage.user_s, 1.25);
        assert_eq!(rusage.system_s, 0.000005);
        assert_eq!(rusage.max_rss_bytes, 2048 * 1024);
        assert_eq!(rusage.involuntary_switches, 7);
        assert_eq!(decode_cpu(&encode_cpu(&ru)), (1.25, 0.000005));
        assert_eq!(decode_cpu(b""), (0.0, 0.0));
    }
}

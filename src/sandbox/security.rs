//! What a workload may do: its capabilities and its seccomp filter (the masked and read-only
//! kernel files are mounts, see [`super::mounts`]).
//!
//! The defaults follow Docker's: of root's capabilities the workload keeps only Docker's default
//! set, minus `MKNOD` (Docker pairs `MKNOD` with a device cgroup that allows only a few devices;
//! benchbox runs none, so a workload that could `mknod` the host's disk could read it). The
//! seccomp filter refuses with `EPERM` the system calls Docker's default profile refuses unless
//! the container holds the capability that would make them legal (mount and friends, module
//! loading, kexec, keyrings, bpf, new namespaces, reboot, swap, clock setting, ...), answers
//! `clone3` with `ENOSYS` (so libc falls back to `clone`, whose namespace flags the filter can
//! see), and refuses x32 system calls and 32-bit x86 ones outright: a deny list is only sound
//! when the numbers it lists are the only way to reach those calls.
//!
//! Docker's profile is an allow list; this filter is a deny list of the same dangerous calls,
//! which keeps new, harmless system calls working (the workload's own runtime may be newer than
//! benchbox). Opt-outs (`[security]` in the matrix) add capabilities, which also allows the
//! calls they guard, turn the filter off, or turn everything off (`privileged`).
//!
//! Pure but for [`apply`], which the workload process calls between its fork and its exec.

use std::collections::BTreeMap;

use caps::{CapSet, Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use serde::{Deserialize, Serialize};

/// What one container's workload is allowed, beyond the hardened defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Capabilities added to [`DEFAULT_CAPABILITIES`] (names as in [`capability_name`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// `true`: no seccomp filter (`seccomp = "unconfined"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seccomp_unconfined: bool,
    /// `true`: every capability, no seccomp filter, no masked or read-only kernel files. The
    /// cgroup view stays read-only, but a privileged workload can remount it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

impl Policy {
    /// True when nothing is loosened.
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// Mask and make read-only the kernel's sensitive files (`/proc/kcore`, `/proc/sys`, ...).
    pub fn masks_kernel_files(&self) -> bool {
        !self.privileged
    }

    /// The capabilities the workload keeps, sorted by number.
    pub fn kept_capabilities(&self) -> Vec<Capability> {
        let mut kept: Vec<Capability> = if self.privileged {
            caps::all().into_iter().collect()
        } else {
            DEFAULT_CAPABILITIES
                .iter()
                .copied()
                .chain(
                    self.capabilities
                        .iter()
                        .filter_map(|name| parse_capability(name)),
                )
                .collect()
        };
        kept.sort_by_key(|c| c.index());
        kept.dedup();
        kept
    }

    /// One line for `plan` and the reports: "default", or what is loosened.
    pub fn describe(&self) -> String {
        if self.privileged {
            return "privileged (all capabilities, no seccomp filter, kernel files unmasked)"
                .into();
        }
        let mut parts = Vec::new();
        if !self.capabilities.is_empty() {
            parts.push(format!("+{}", self.capabilities.join(" +")));
        }
        if self.seccomp_unconfined {
            parts.push("seccomp unconfined".into());
        }
        if parts.is_empty() {
            "default".into()
        } else {
            parts.join(", ")
        }
    }
}

impl Policy {
    /// What the workload ends up with, as `results.json` records it.
    pub fn effective(&self) -> Effective {
        Effective {
            capabilities: self
                .kept_capabilities()
                .into_iter()
                .map(capability_name)
                .collect(),
            added_capabilities: self.capabilities.clone(),
            seccomp: if self.privileged || self.seccomp_unconfined {
                Seccomp::Unconfined
            } else {
                Seccomp::Default
            },
            privileged: self.privileged,
        }
    }

    /// For the warnings of `run`, summary.md and report.html: "cell `X` runs with seccomp
    /// unconfined: its workload ...", saying what the opt-outs let the workload do; `None` for
    /// the default.
    pub fn warning(&self, cell_label: &str) -> Option<String> {
        if self.privileged {
            return Some(format!(
                "cell `{cell_label}` runs privileged: its workload holds every capability, has no seccomp filter and sees the kernel's files unmasked, so it can take over the host (mount its disks, load kernel modules, write to /proc/sys)"
            ));
        }
        let mut can = Vec::new();
        if !self.capabilities.is_empty() {
            can.push(format!(
                "holds {} beyond the default capabilities, with the system calls they guard",
                self.capabilities.join(", ")
            ));
        }
        if self.seccomp_unconfined {
            can.push(
                "has no seccomp filter, so it can make every system call its capabilities allow (io_uring, keyrings, userfaultfd, and with SYS_ADMIN mounts and namespaces)"
                    .to_string(),
            );
        }
        (!can.is_empty()).then(|| {
            format!(
                "cell `{cell_label}` runs with {}: its workload {}",
                self.describe(),
                can.join(", and ")
            )
        })
    }
}

/// A cell's policy as `results.json` records it, every field present even at the default: a
/// reader of an old file learns what the workload could do without knowing that version's
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    /// The capabilities the workload kept (`CHOWN`, ...), in the kernel's order.
    pub capabilities: Vec<String>,
    /// What the matrix added to the defaults (`[security] capabilities`).
    pub added_capabilities: Vec<String>,
    pub seccomp: Seccomp,
    pub privileged: bool,
}

impl Effective {
    /// The opt-outs this was made from (for [`Policy::describe`] and [`Policy::warning`]).
    pub fn policy(&self) -> Policy {
        Policy {
            capabilities: self.added_capabilities.clone(),
            seccomp_unconfined: !self.privileged && self.seccomp == Seccomp::Unconfined,
            privileged: self.privileged,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// The deny filter of this module.
    Default,
    /// No filter.
    Unconfined,
}

/// Docker's default capabilities without `MKNOD` (see the module doc).
pub const DEFAULT_CAPABILITIES: [Capability; 13] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// A capability as users write it: `SYS_PTRACE`, `sys_ptrace` or `CAP_SYS_PTRACE`.
pub fn parse_capability(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse().ok()
}

/// The name users write: `SYS_PTRACE`.
pub fn capability_name(cap: Capability) -> String {
    cap.to_string()
        .trim_start_matches("CAP_")
        .to_ascii_uppercase()
}

/// Every capability name this build knows, for hints.
pub fn capability_names() -> Vec<String> {
    let mut all: Vec<Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(capability_name).collect()
}

/// The namespace flags of `clone`/`unshare` a workload may not use without `SYS_ADMIN`.
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// System calls refused unless the workload holds the given capability (`None`: always
/// refused by the filter), after Docker's default profile.
fn guarded_syscalls() -> Vec<(Option<Capability>, Vec<libc::c_long>)> {
    use Capability::*;
    vec![
        (
            Some(CAP_SYS_ADMIN),
            vec![
                libc::SYS_mount,
                libc::SYS_umount2,
                libc::SYS_pivot_root,
                libc::SYS_fsopen,
                libc::SYS_fsconfig,
                libc::SYS_fsmount,
                libc::SYS_fspick,
                libc::SYS_move_mount,
                libc::SYS_open_tree,
                libc::SYS_mount_setattr,
                libc::SYS_setns,
                libc::SYS_unshare,
                libc::SYS_quotactl,
                libc::SYS_quotactl_fd,
                libc::SYS_lookup_dcookie,
                libc::SYS_fanotify_init,
                libc::SYS_sethostname,
                libc::SYS_setdomainname,
                libc::SYS_name_to_handle_at,
            ],
        ),
        (Some(CAP_DAC_READ_SEARCH), vec![libc::SYS_open_by_handle_at]),
        (
            Some(CAP_SYS_MODULE),
            vec![
                libc::SYS_init_module,
                libc::SYS_finit_module,
                libc::SYS_delete_module,
            ],
        ),
        (
            Some(CAP_SYS_BOOT),
            vec![
                libc::SYS_reboot,
                libc::SYS_kexec_load,
                libc::SYS_kexec_file_load,
            ],
        ),
        (
            Some(CAP_SYS_TIME),
            vec![
                libc::SYS_settimeofday,
                libc::SYS_clock_settime,
                libc::SYS_clock_adjtime,
                libc::SYS_adjtimex,
            ],
        ),
        (Some(CAP_SYSLOG), vec![libc::SYS_syslog]),
        (Some(CAP_SYS_PACCT), vec![libc::SYS_acct]),
        (Some(CAP_SYS_RAWIO), vec![libc::SYS_iopl, libc::SYS_ioperm]),
        (
            Some(CAP_SYS_NICE),
            vec![
                libc::SYS_mbind,
                libc::SYS_set_mempolicy,
                libc::SYS_get_mempolicy,
                libc::SYS_move_pages,
            ],
        ),
        (Some(CAP_BPF), vec![libc::SYS_bpf]),
        (Some(CAP_PERFMON), vec![libc::SYS_perf_event_open]),
        (
            None,
            vec![
                libc::SYS_add_key,
                libc::SYS_keyctl,
                libc::SYS_request_key,
                libc::SYS_swapon,
                libc::SYS_swapoff,
                libc::SYS_userfaultfd,
                libc::SYS_uselib,
                libc::SYS_ustat,
                libc::SYS_sysfs,
                libc::SYS__sysctl,
                libc::SYS_nfsservctl,
                libc::SYS_vhangup,
                // Docker 25 and later refuse io_uring: it bypasses this very filter.
                libc::SYS_io_uring_setup,
                libc::SYS_io_uring_enter,
                libc::SYS_io_uring_register,
            ],
        ),
    ]
}

/// The workload's seccomp filter, compiled before the fork; `None` when unconfined.
pub fn seccomp_program(policy: &Policy) -> Result<Option<BpfProgram>, String> {
    if policy.privileged || policy.seccomp_unconfined {
        return Ok(None);
    }
    let sys_admin = policy
        .kept_capabilities()
        .contains(&Capability::CAP_SYS_ADMIN);
    let mut program = prologue(sys_admin);
    program.extend(chunked(deny_rules(policy)?)?);
    Ok(Some(program))
}

/// What the filter refuses (with `EPERM`), by system call number, for a confined policy.
fn deny_rules(policy: &Policy) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let kept = policy.kept_capabilities();
    let holds = |cap: Capability| kept.contains(&cap);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (guard, calls) in guarded_syscalls() {
        // bpf and perf_event_open are also legal with SYS_ADMIN, as in the kernel.
        let allowed = guard.is_some_and(|cap| {
            holds(cap)
                || (matches!(cap, Capability::CAP_BPF | Capability::CAP_PERFMON)
                    && holds(Capability::CAP_SYS_ADMIN))
        });
        if !allowed {
            for call in calls {
                rules.insert(call, Vec::new());
            }
        }
    }
    if !holds(Capability::CAP_SYS_ADMIN) {
        // clone with a namespace flag. (clone3 passes its flags in memory the filter cannot
        // read: it gets ENOSYS below, and libc falls back to clone.)
        let with_flag = |flag: u64| -> Result<SeccompRule, String> {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(|e| e.to_string())?;
            SeccompRule::new(vec![cond]).map_err(|e| e.to_string())
        };
        rules.insert(
            libc::SYS_clone,
            NAMESPACE_FLAGS
                .iter()
                .map(|&f| with_flag(f))
                .collect::<Result<_, _>>()?,
        );
    }
    Ok(rules)
}

/// How many system calls one compiled chunk holds (see [`chunked`]).
const CHUNK: usize = 3;

/// The deny rules as several small seccompiler programs behind a binary search on the system
/// call number, instead of one long chain. The result is the same; the reason is the kernel's
/// cost of attaching a filter: it emulates the filter for every system call number to build
/// its allow cache, so a linear chain of ~70 rules cost ~1.3 ms per container on this machine
/// (measured with a bare fork + filter + exit), most of benchbox's per-invocation overhead.
/// With chunks of [`CHUNK`] behind a tree, every number takes a handful of steps.
fn chunked(rules: BTreeMap<i64, Vec<SeccompRule>>) -> Result<BpfProgram, String> {
    let entries: Vec<(i64, Vec<SeccompRule>)> = rules.into_iter().collect();
    let mut bodies = Vec::new();
    let mut bounds = Vec::new();
    for (i, chunk) in entries.chunks(CHUNK).enumerate() {
        if i > 0 {
            bounds.push(chunk[0].0 as u32);
        }
        let filter = SeccompFilter::new(
            chunk.iter().cloned().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            target_arch()?,
        )
        .map_err(|e| e.to_string())?;
        let body: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        bodies.push(body);
    }
    Ok(dispatch(&bounds, bodies))
}

/// A binary search over `bounds` (ascending; body `i` serves numbers in
/// `[bounds[i-1], bounds[i])`) that jumps to the right body. Laid out in pre-order: a node
/// is `JGE bound`, its lower half follows at once (jf = 0), its upper half after the lower
/// half's instructions (jt); a leaf is a `JA` to its body, whose offset is known once every
/// body before it is placed. A tree of n leaves is 2n - 1 instructions, so the conditional
/// offsets stay far below their 255 limit.
fn dispatch(bounds: &[u32], bodies: Vec<BpfProgram>) -> BpfProgram {
    const LD_W_ABS: u16 = 0x20;
    const JMP_JGE_K: u16 = 0x35;
    const JMP_JA: u16 = 0x05;
    let leaves = bodies.len();
    let mut program = vec![sock_filter {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0, // seccomp_data.nr
    }];
    let mut leaf_at = vec![0usize; leaves];
    fn node(
        program: &mut Vec<sock_filter>,
        leaf_at: &mut [usize],
        bounds: &[u32],
        lo: usize,
        hi: usize,
    ) {
        if hi - lo == 1 {
            leaf_at[lo] = program.len();
            program.push(sock_filter {
                code: JMP_JA,
                jt: 0,
                jf: 0,
                k: 0,
            });
            return;
        }
        let mid = (lo + hi) / 2;
        let lower_len = 2 * (mid - lo) - 1;
        program.push(sock_filter {
            code: JMP_JGE_K,
            jt: lower_len as u8,
            jf: 0,
            k: bounds[mid - 1],
        });
        node(program, leaf_at, bounds, lo, mid);
        node(program, leaf_at, bounds, mid, hi);
    }
    node(&mut program, &mut leaf_at, bounds, 0, leaves);
    for (i, body) in bodies.into_iter().enumerate() {
        let at = leaf_at[i];
        program[at].k = (program.len() - at - 1) as u32;
        program.extend(body);
    }
    program
}

fn target_arch() -> Result<TargetArch, String> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|_| format!("no seccomp filter for `{}`", std::env::consts::ARCH))
}

/// Hand-written instructions before the compiled filter (relative jumps make prepending safe):
/// x32 system calls (numbers with bit 30 set, which share x86-64's audit arch and so would slip
/// past a deny list) and, without `SYS_ADMIN`, `clone3` get `ENOSYS`.
fn prologue(sys_admin: bool) -> Vec<sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JMP_JGE_K: u16 = 0x35;
    const JMP_JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const NR_OFFSET: u32 = 0; // seccomp_data.nr
    let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let mut program = Vec::new();
    if cfg!(target_arch = "x86_64") {
        program.extend([
            sock_filter {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: NR_OFFSET,
            },
            sock_filter {
                code: JMP_JGE_K,
                jt: 0,
                jf: 1,
                k: 0x4000_0000,
            },
            sock_filter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: enosys,
            },
        ]);
    }
    if !sys_admin {
        program.extend([
            sock_filter {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: NR_OFFSET,
            },
            sock_filter {
                code: JMP_JEQ_K,
                jt: 0,
                jf: 1,
                k: libc::SYS_clone3 as u32,
            },
            sock_filter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: enosys,
            },
        ]);
    }
    program
}

/// The capabilities to keep and the filter to install, prepared before the fork.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `None`: privileged, keep everything.
    pub kept: Option<CapsHashSet>,
    pub seccomp: Option<BpfProgram>,
}

pub fn prepare(policy: &Policy) -> Result<Prepared, String> {
    Ok(Prepared {
        kept: (!policy.privileged).then(|| policy.kept_capabilities().into_iter().collect()),
        seccomp: seccomp_program(policy)?,
    })
}

/// Step one, in the workload process before it changes user: shrink the bounding set (what any
/// later exec can have) and install the seccomp filter (while it still holds `SYS_ADMIN`, so
/// no `no_new_privs` is needed and set-uid programs work as under Docker).
pub fn restrict(prepared: &Prepared) -> Result<(), String> {
    if let Some(kept) = &prepared.kept {
        shrink_bounding_set(kept)?;
    }
    if let Some(program) = &prepared.seccomp {
        install(program)?;
    }
    Ok(())
}

/// Without it, a kernel whose speculation mitigations are in `seccomp` mode (the default of
/// `spec_store_bypass_disable` and `spectre_v2_user` before Linux 5.16) would turn on SSBD and
/// IBPB for the workload because it has a filter: it would run slower than the same program
/// outside benchbox, which a benchmark must not do. With it the workload keeps the host's own
/// mitigations, like any host process.
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;

/// Drop from the bounding set (what any later exec can have) every capability not in `keep`.
fn shrink_bounding_set(keep: &CapsHashSet) -> Result<(), String> {
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("cannot drop {cap} from the bounding set: {e}"))?;
        }
    }
    Ok(())
}

/// Install a seccomp filter on this thread (which holds `SYS_ADMIN`, so without `no_new_privs`).
fn install(program: &BpfProgram) -> Result<(), String> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program; `fprog` points into a live vector.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot install the seccomp filter: {} (hint: `benchbox doctor` checks seccomp support; `[security] seccomp = \"unconfined\"` runs without it)",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Step two, after the user switch: the permitted and effective sets become the kept ones (a
/// non-root user has none left by then), the inheritable and ambient sets empty (as Docker
/// does since CVE-2022-24769).
pub fn finish(prepared: &Prepared) -> Result<(), String> {
    let Some(kept) = &prepared.kept else {
        return Ok(());
    };
    let now = caps::read(None, CapSet::Permitted).map_err(|e| e.to_string())?;
    let target: CapsHashSet = now.intersection(kept).copied().collect();
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("cannot clear ambient caps: {e}"))?;
    caps::clear(None, CapSet::Inheritable)
        .map_err(|e| format!("cannot clear inheritable caps: {e}"))?;
    caps::set(None, CapSet::Effective, &target)
        .and_then(|()| caps::set(None, CapSet::Permitted, &target))
        .map_err(|e| format!("cannot set the workload's capabilities: {e}"))?;
    Ok(())
}

/// What init still needs once the workload is forked: to SIGKILL what the workload leaves
/// (of any user) and to read the metrics file whatever its mode. Both are in the workload's
/// default set, so a workload able to ptrace init (with `SYS_PTRACE`) gains nothing by it.
const INIT_CAPABILITIES: [Capability; 2] = [Capability::CAP_KILL, Capability::CAP_DAC_OVERRIDE];

/// Init's own confinement, right after it forks the workload: it stays in the container's pid
/// namespace for the whole run, so it must hold nothing the workload could take from it. It
/// becomes non-dumpable (only a `SYS_PTRACE` holder may ptrace it or open its /proc files),
/// installs the workload's seccomp filter (so a workload that can ptrace it cannot make
/// through it the calls the filter refuses) and keeps only [`INIT_CAPABILITIES`]. A
/// privileged container's init keeps everything.
pub fn confine_init(prepared: &Prepared) -> Result<(), String> {
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "cannot make init non-dumpable: {}",
            std::io::Error::last_os_error()
        ));
    }
    if let Some(program) = &prepared.seccomp {
        install(program)?;
    }
    if prepared.kept.is_none() {
        return Ok(());
    }
    let keep: CapsHashSet = INIT_CAPABILITIES.into_iter().collect();
    shrink_bounding_set(&keep)?;
    caps::clear(None, CapSet::Ambient).map_err(|e| e.to_string())?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| e.to_string())?;
    caps::set(None, CapSet::Effective, &keep)
        .and_then(|()| caps::set(None, CapSet::Permitted, &keep))
        .map_err(|e| format!("init cannot set its capabilities: {e}"))
}

/// What this kernel offers the sandbox, probed with harmless calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSupport {
    /// seccomp filters with the `errno` action (CONFIG_SECCOMP_FILTER).
    pub seccomp_filter: bool,
    /// `open_tree`, `move_mount` and `mount_setattr` (Linux 5.12+): how the container's mounts
    /// are made inside its own root after the pivot.
    pub mount_api: bool,
}

pub fn kernel_support() -> KernelSupport {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
    let errno_action: u32 = 0x0005_0000;
    // SAFETY: a query that reads one u32 we own.
    let seccomp_filter = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &errno_action as *const u32,
        )
    } == 0;
    // Each call is given a bad descriptor: EBADF says the call exists, ENOSYS that it does not.
    let exists = |rc: libc::c_long| rc == 0 || nix::Error::last() != nix::Error::ENOSYS;
    // SAFETY: invalid descriptors and null/empty arguments: the kernel only validates them.
    let mount_api = unsafe {
        exists(libc::syscall(libc::SYS_open_tree, -1, c"".as_ptr(), 0))
            && exists(libc::syscall(
                libc::SYS_move_mount,
                -1,
                c"".as_ptr(),
                -1,
                c"".as_ptr(),
                0,
            ))
            && exists(libc::syscall(
                libc::SYS_mount_setattr,
                -1,
                c"".as_ptr(),
                0,
                std::ptr::null::<u8>(),
                0,
            ))
    };
    KernelSupport {
        seccomp_filter,
        mount_api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_parse_in_every_spelling() {
        for name in ["SYS_PTRACE", "sys_ptrace", "CAP_SYS_PTRACE", " Sys_Ptrace "] {
            assert_eq!(
                parse_capability(name),
                Some(Capability::CAP_SYS_PTRACE),
                "{name}"
            );
        }
        assert_eq!(parse_capability("SYS_PTRACEX"), None);
        assert_eq!(capability_name(Capability::CAP_SYS_PTRACE), "SYS_PTRACE");
        assert!(capability_names().contains(&"NET_ADMIN".to_string()));
    }

    #[test]
    fn default_keeps_docker_set_without_mknod_and_adds_what_is_asked() {
        let default = Policy::default().kept_capabilities();
        assert_eq!(default.len(), 13);
        for dangerous in [
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_DAC_READ_SEARCH,
            Capability::CAP_SYS_MODULE,
            Capability::CAP_SYS_RAWIO,
            Capability::CAP_SYS_PTRACE,
            Capability::CAP_NET_ADMIN,
            Capability::CAP_SYS_TIME,
            Capability::CAP_SYSLOG,
            Capability::CAP_BPF,
            Capability::CAP_PERFMON,
            Capability::CAP_MKNOD,
        ] {
            assert!(!default.contains(&dangerous), "{dangerous}");
        }
        let ptrace = Policy {
            capabilities: vec!["SYS_PTRACE".into()],
            ..Policy::default()
        };
        let kept = ptrace.kept_capabilities();
        assert_eq!(kept.len(), 14);
        assert!(kept.contains(&Capability::CAP_SYS_PTRACE));
        let privileged = Policy {
            privileged: true,
            ..Policy::default()
        };
        assert_eq!(privileged.kept_capabilities().len(), caps::all().len());
    }

    #[test]
    fn filter_compiles_and_loosens_with_capabilities() {
        let default = seccomp_program(&Policy::default()).unwrap().unwrap();
        let admin = seccomp_program(&Policy {
            capabilities: vec!["SYS_ADMIN".into()],
            ..Policy::default()
        })
        .unwrap()
        .unwrap();
        // SYS_ADMIN allows the mount family and namespaces: fewer rules.
        assert!(admin.len() < default.len());
        assert!(
            seccomp_program(&Policy {
                seccomp_unconfined: true,
                ..Policy::default()
            })
            .unwrap()
            .is_none()
        );
    }

    /// The verdict of a classic BPF seccomp program for one system call, and how many
    /// instructions it ran (what the kernel's cache preparation pays per number).
    fn run_filter(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
        let word = |offset: u32| -> u32 {
            match offset {
                0 => nr,
                4 => arch,
                16..=63 => {
                    let arg = args[((offset - 16) / 8) as usize];
                    if offset.is_multiple_of(8) {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load at {offset}"),
            }
        };
        let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let ins = &program[pc];
            steps += 1;
            pc += 1;
            match ins.code {
                0x20 => acc = word(ins.k),
                0x54 => acc &= ins.k,
                0x05 => pc += ins.k as usize,
                0x06 => return (ins.k, steps),
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let taken = match ins.code {
                        0x15 => acc == ins.k,
                        0x25 => acc > ins.k,
                        0x35 => acc >= ins.k,
                        _ => acc & ins.k != 0,
                    };
                    pc += if taken { ins.jt } else { ins.jf } as usize;
                }
                code => panic!("opcode {code:#x}"),
            }
        }
    }

    #[test]
    fn the_chunked_filter_decides_like_one_seccompiler_chain_in_a_few_steps() {
        const X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
        const I386: u32 = 3 | 0x4000_0000;
        for policy in [
            Policy::default(),
            Policy {
                capabilities: vec!["SYS_ADMIN".into(), "SYS_PTRACE".into()],
                ..Policy::default()
            },
        ] {
            let chunked = seccomp_program(&policy).unwrap().unwrap();
            // The reference: the same prologue and rules as one seccompiler chain.
            let sys_admin = policy
                .kept_capabilities()
                .contains(&Capability::CAP_SYS_ADMIN);
            let mut linear = prologue(sys_admin);
            let one: BpfProgram = SeccompFilter::new(
                deny_rules(&policy).unwrap(),
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u32),
                target_arch().unwrap(),
            )
            .unwrap()
            .try_into()
            .unwrap();
            linear.extend(one);
            let clone_args = [
                0,
                (libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_THREAD) as u64,
                libc::CLONE_NEWUSER as u64,
                libc::CLONE_NEWNS as u64 | libc::SIGCHLD as u64,
                libc::CLONE_NEWCGROUP as u64,
            ];
            for arch in [X86_64, I386] {
                for nr in (0..1100).chain([0x4000_0000 + 165, 0x4000_0000 + 600]) {
                    for &a0 in &clone_args {
                        let args = [a0, 0, 0, 0, 0, 0];
                        let want = run_filter(&linear, nr, arch, args).0;
                        let got = run_filter(&chunked, nr, arch, args).0;
                        assert_eq!(got, want, "nr {nr} arch {arch:#x} arg0 {a0:#x}");
                    }
                }
            }
            // mount is refused with EPERM without SYS_ADMIN, allowed with it.
            let mount = run_filter(&chunked, libc::SYS_mount as u32, X86_64, [0; 6]).0;
            assert_eq!(mount == (0x0005_0000 | libc::EPERM as u32), !sys_admin);
            // What the kernel pays when it attaches the filter: one emulation per number.
            let cost = |program: &[sock_filter]| -> usize {
                (0..500)
                    .map(|nr| run_filter(program, nr, X86_64, [0; 6]).1)
                    .sum()
            };
            let (chunked_cost, linear_cost) = (cost(&chunked), cost(&linear));
            assert!(
                chunked_cost * 4 < linear_cost,
                "{chunked_cost} vs {linear_cost}"
            );
        }
    }

    #[test]
    fn this_kernel_supports_the_sandbox() {
        // The development and CI hosts run Linux 6.x.
        let support = kernel_support();
        assert!(support.seccomp_filter && support.mount_api, "{support:?}");
    }

    #[test]
    fn effective_records_every_field_and_gives_the_policy_back() {
        let default = Policy::default().effective();
        assert_eq!(
            serde_json::to_value(&default).unwrap(),
            serde_json::json!({
                "capabilities": [
                    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
                    "SETPCAP", "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "AUDIT_WRITE",
                    "SETFCAP"
                ],
                "added_capabilities": [],
                "seccomp": "default",
                "privileged": false
            })
        );
        assert!(default.policy().is_default());
        for policy in [
            Policy {
                capabilities: vec!["SYS_PTRACE".into()],
                seccomp_unconfined: true,
                privileged: false,
            },
            Policy {
                privileged: true,
                ..Policy::default()
            },
        ] {
            assert_eq!(policy.effective().policy(), policy);
        }
        let privileged = Policy {
            privileged: true,
            ..Policy::default()
        }
        .effective();
        assert_eq!(privileged.seccomp, Seccomp::Unconfined);
        assert_eq!(privileged.capabilities.len(), caps::all().len());
        assert!(privileged.capabilities.contains(&"SYS_ADMIN".to_string()));
    }

    #[test]
    fn warnings_say_what_the_workload_can_do() {
        assert_eq!(Policy::default().warning("a"), None);
        let seccomp = Policy {
            seccomp_unconfined: true,
            ..Policy::default()
        };
        assert_eq!(
            seccomp.warning("level=1").unwrap(),
            "cell `level=1` runs with seccomp unconfined: its workload has no seccomp filter, so it can make every system call its capabilities allow (io_uring, keyrings, userfaultfd, and with SYS_ADMIN mounts and namespaces)"
        );
        let both = Policy {
            capabilities: vec!["SYS_PTRACE".into()],
            seccomp_unconfined: true,
            privileged: false,
        };
        let w = both.warning("x").unwrap();
        assert!(
            w.starts_with("cell `x` runs with +SYS_PTRACE, seccomp unconfined: its workload holds SYS_PTRACE beyond the default capabilities, with the system calls they guard, and has no seccomp filter"),
            "{w}"
        );
        let privileged = Policy {
            privileged: true,
            ..Policy::default()
        };
        assert!(
            privileged
                .warning("x")
                .unwrap()
                .starts_with("cell `x` runs privileged: its workload holds every capability")
        );
    }

    #[test]
    fn describe_says_what_is_loosened() {
        assert_eq!(Policy::default().describe(), "default");
        let p = Policy {
            capabilities: vec!["SYS_PTRACE".into(), "PERFMON".into()],
            seccomp_unconfined: true,
            privileged: false,
        };
        assert_eq!(p.describe(), "+SYS_PTRACE +PERFMON, seccomp unconfined");
    }
}

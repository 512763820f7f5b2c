#!/usr/bin/env bash
# Builds the two images of envs/redis.toml from Debian packages, imports them into benchbox's
# image store, pins them in envs/redis.lock, and runs the matrix. Run it as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

usage() {
    cat <<EOF
Usage: sudo $0 [--build-only] [--rebuild] [--workdir DIR] [--mirror URL]

Builds a minimal Debian root filesystem per suite with debootstrap (redis-server and
redis-tools from the suite's own packages), imports each as a reproducible single-layer image
(benchbox import), writes their digests to envs/redis.lock and runs envs/redis.toml:

  benchbox.invalid/debian-redis:bookworm   Debian 12's redis-server (7.0) and redis-tools
  benchbox.invalid/debian-redis:trixie     Debian 13's redis-server (8.0) and redis-tools

The .invalid host is on purpose: these references exist only in the local image store, and a
registry can never answer for them.

Options:
  --build-only    build, import and pin the images, do not run the matrix
  --rebuild       debootstrap and import again even if an image is already built
  --workdir DIR   where the root filesystems are built (default: /var/tmp/benchbox-redis-images)
  --mirror URL    the Debian mirror (default: http://deb.debian.org/debian)
  -h, --help      this help

Environment:
  BENCHBOX        the benchbox binary (default: benchbox on PATH, else target/release/benchbox)
  BENCHBOX_CACHE  the image store benchbox imports into (benchbox's own default otherwise)

Running it again skips what is already built: a root filesystem is kept in --workdir once
debootstrap finished, an image is imported again only when the store does not have it.
EOF
}

build_only=0
rebuild=0
workdir=/var/tmp/benchbox-redis-images
mirror=http://deb.debian.org/debian
while [ $# -gt 0 ]; do
    case "$1" in
    --build-only) build_only=1 ;;
    --rebuild) rebuild=1 ;;
    --workdir)
        [ $# -ge 2 ] || { echo "error: --workdir needs a directory" >&2; exit 2; }
        workdir=$2
        shift
        ;;
    --mirror)
        [ $# -ge 2 ] || { echo "error: --mirror needs a URL" >&2; exit 2; }
        mirror=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "error: unknown argument \`$1\`" >&2
        echo "  hint: see $0 --help" >&2
        exit 2
        ;;
    esac
    shift
done

if [ "$(id -u)" -ne 0 ]; then
    echo "error: debootstrap and benchbox run need root" >&2
    echo "  hint: sudo $0" >&2
    exit 3
fi
if ! command -v debootstrap >/dev/null; then
    echo "error: debootstrap is not installed" >&2
    echo "  hint: apt-get install -y debootstrap" >&2
    exit 3
fi

if [ -n "${BENCHBOX:-}" ]; then
    benchbox=$BENCHBOX
elif command -v benchbox >/dev/null; then
    benchbox=benchbox
elif [ -x "$repo/target/release/benchbox" ]; then
    benchbox=$repo/target/release/benchbox
else
    echo "error: no benchbox binary" >&2
    echo "  hint: cargo build --release (in $repo), or set BENCHBOX=/path/to/benchbox" >&2
    exit 3
fi

matrix=$here/redis.toml
lock=$here/redis.lock
repository=benchbox.invalid/debian-redis
suites=(bookworm trixie)
mkdir -p "$workdir"

# The root filesystem of one suite: debootstrap into a temporary directory, renamed into place
# only once it succeeded, so an interrupted build is never taken for a finished one.
build_rootfs() {
    local suite=$1 dir=$workdir/$1
    if [ -d "$dir" ] && [ "$rebuild" -eq 0 ]; then
        echo "rootfs $suite: already built in $dir"
        return
    fi
    echo "rootfs $suite: debootstrap from $mirror (a few minutes)"
    rm -rf "$dir.tmp"
    debootstrap --variant=minbase --include=redis-server,redis-tools \
        "$suite" "$dir.tmp" "$mirror" >"$workdir/$suite.log" 2>&1 || {
        echo "error: debootstrap $suite failed; its log: $workdir/$suite.log" >&2
        tail -n 5 "$workdir/$suite.log" >&2
        exit 1
    }
    # What debootstrap leaves that no container needs: package lists and caches, logs.
    rm -rf "$dir.tmp"/var/lib/apt/lists/* "$dir.tmp"/var/cache/apt/*
    find "$dir.tmp/var/log" -type f -delete
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    # The versions, for the record: the image is pinned by digest, this says what is in it.
    chroot "$dir" dpkg-query -W -f '${Package}=${Version}\n' redis-server redis-tools \
        >"$workdir/$suite.versions"
    rm -f "$workdir/$suite.digest"
}

# Imports a suite's root filesystem unless the store already has the digest it was imported as.
import_image() {
    local suite=$1 ref=$repository:$1 digest_file=$workdir/$1.digest
    if [ -f "$digest_file" ] && [ "$rebuild" -eq 0 ]; then
        local digest
        digest=$(cat "$digest_file")
        # `benchbox images` prints each image's references and the first 19 chars of its digest.
        if "$benchbox" images | grep -F "$ref" | grep -qF "${digest:0:19}"; then
            echo "image $ref: already imported ($digest)"
            return
        fi
    fi
    echo "image $ref: importing $workdir/$suite"
    # Prints `REFERENCE  DIGEST`.
    "$benchbox" import "$workdir/$suite" --tag "$ref" | awk '{ print $2 }' >"$digest_file.tmp"
    mv "$digest_file.tmp" "$digest_file"
    echo "image $ref: $(cat "$digest_file")"
}

for suite in "${suites[@]}"; do
    build_rootfs "$suite"
    import_image "$suite"
done

# The lock file pins each reference to the digest just imported, so `benchbox run` uses exactly
# these images (a later --rebuild makes new digests and rewrites it). Its platform is this
# host's, written as benchbox writes it: the import makes images for this host only.
case "$(uname -m)" in
x86_64) platform=linux/amd64 ;;
aarch64) platform=linux/arm64/v8 ;;
*)
    echo "error: no platform name for $(uname -m) here" >&2
    echo "  hint: run benchbox run $matrix without a lock file; it pins the images itself" >&2
    exit 1
    ;;
esac
{
    echo "# benchbox lock file: the image digests this matrix resolved to."
    echo "# Written by envs/redis-images.sh from the images it built; run it again to rebuild."
    echo "version = 1"
    for suite in "${suites[@]}"; do
        echo
        echo "[images.\"$repository:$suite\"]"
        echo "digest = \"$(cat "$workdir/$suite.digest")\""
        echo "platform = \"$platform\""
    done
} >"$lock.tmp"
mv "$lock.tmp" "$lock"
echo "pinned in $lock"
for suite in "${suites[@]}"; do
    echo "  $suite: $(tr '\n' ' ' <"$workdir/$suite.versions")"
done

if [ "$build_only" -eq 1 ]; then
    echo "built; run the matrix with: $benchbox run $matrix"
    exit 0
fi
echo "running: $benchbox run $matrix"
exec "$benchbox" run "$matrix"

# Sourced by the bench scripts (from the repository's root): sets $bin, the benchbox they
# measure: $BENCHBOX when set, else this tree's release build (built first).
if [[ -n "${BENCHBOX:-}" ]]; then
    bin=$BENCHBOX
else
    cargo build --release --quiet
    bin="$PWD/target/release/benchbox"
fi

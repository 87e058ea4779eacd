#!/usr/bin/env bash
# README command 2: set up, then every test, formatting and lints.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh --chromium
# shellcheck source=env.sh
source scripts/env.sh
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  echo "[test] installing rustfmt and clippy" >&2
  rustup component add rustfmt clippy
fi
echo "[test] cargo fmt --all --check" >&2
cargo fmt --all --check
echo "[test] cargo clippy --workspace --all-targets -- -D warnings (with and without the mpi feature)" >&2
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet --workspace --no-default-features --all-targets -- -D warnings
echo "[test] cargo test (tests/mpi.rs runs seqbench under mpirun)" >&2
cargo test --quiet --workspace 2>&1 | tee "$SEQBENCH_HOME/last-test.log"
echo "[test] cargo test --benches (criterion micro-benchmarks, each run once as a smoke check)" >&2
bench_log="$SEQBENCH_HOME/last-bench-smoke.log"
cargo test --quiet --benches >"$bench_log" 2>&1 || { cat "$bench_log"; exit 1; }
tail -3 "$bench_log"
echo "[test] scripts/gpu_check.sh --dry-run (the GPU check's suites validated without a GPU)" >&2
bash scripts/gpu_check.sh --dry-run

#!/usr/bin/env bash
# README command 1: set up, build (release), run the quick suite, show the report.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
echo "[quickstart] building seqbench (release; the first build takes about 10 minutes on 2 cores)" >&2
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/seqbench"
jobs="${SEQBENCH_JOBS:-2}"
echo "[quickstart] running suites/quick.yaml with --jobs $jobs" >&2
status=0
"$bin" run suites/quick.yaml --jobs "$jobs" --out results > /dev/null || status=$?
run_dir="$(ls -d results/quick/*/ | sort | tail -n 1)"
echo
echo "Report: ${run_dir}report.md (tables in ${run_dir}tables/)"
echo
# The main table: the task section of the report.
sed -n '/^## mqar/,/^## Jobs not ok/p' "${run_dir}report.md" | sed '$d'
sed -n '/^## Jobs not ok/,$p' "${run_dir}report.md"
exit "$status"

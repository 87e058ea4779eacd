#!/usr/bin/env bash
# README command 1: set up, build (release), run the quick suite, show the report.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh --only system
# shellcheck source=env.sh
source scripts/env.sh
echo "[quickstart] building seqbench (release; the first build takes about 10 minutes on 2 cores)" >&2
# On a fresh machine the venv (torch, a few GB to unpack) is made while the crates that need no
# libtorch (polars, the largest part of the build) compile; then the rest builds against it.
venv_log="$SEQBENCH_HOME/setup-venv.log"
mkdir -p "$SEQBENCH_HOME"
bash scripts/setup.sh --only venv >"$venv_log" 2>&1 &
venv_pid=$!
cargo build --release --quiet -p seqbench-core || true # errors show again in the full build below
wait "$venv_pid" || { cat "$venv_log" >&2; echo "[quickstart] the venv could not be made (log above)" >&2; exit 1; }
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/seqbench"
# On PATH for later use from anywhere (the model presets are built into the binary).
mkdir -p "$HOME/.local/bin"
ln -sf "$bin" "$HOME/.local/bin/seqbench"
echo "[quickstart] linked $HOME/.local/bin/seqbench → $bin" >&2
jobs="${SEQBENCH_JOBS:-2}"
echo "[quickstart] running suites/quick.yaml with --jobs $jobs" >&2
status=0
"$bin" run suites/quick.yaml --jobs "$jobs" --out results > /dev/null || status=$?
run_dir="$(readlink -f results/quick/latest)/"
echo
echo "Report: ${run_dir}report.md and ${run_dir}report.html (tables in ${run_dir}tables/, charts in ${run_dir}charts/)"
echo
# The main table (the task's section of the report), then the jobs that did not end ok.
section() { awk -v want="## $1" '/^## /{p = ($0 == want)} p' "${run_dir}report.md"; }
section mqar
section "Jobs not ok"
exit "$status"

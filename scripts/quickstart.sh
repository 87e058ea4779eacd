#!/usr/bin/env bash
# README command 1: set up, build (release), run the quick suite, show the report.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh --only system
# shellcheck source=env.sh
source scripts/env.sh
echo "[quickstart] building seqbench (release; the first build takes about 10 minutes on 2 cores)" >&2
# The venv (torch, a few GB to unpack on a fresh machine) is made while cargo compiles: the build
# scripts that need it wait in scripts/after-venv/python3, installed by setup.sh under
# SEQBENCH_HOME (torch-sys finds it first on PATH; pyo3 and build.rs run it as PYO3_PYTHON, see
# env.sh) until the venv is complete, then run the venv's interpreter. Everything that needs no
# torch (polars, the largest part) compiles meanwhile.
mkdir -p "$SEQBENCH_HOME"
export SEQBENCH_VENV_MADE="$SEQBENCH_HOME/venv-made"
rm -f "$SEQBENCH_VENV_MADE"
{ if bash scripts/setup.sh --only venv >"$SEQBENCH_HOME/setup-venv.log" 2>&1; then echo ok; else echo failed; fi >"$SEQBENCH_VENV_MADE"; } &
built=0
PATH="$SEQBENCH_AFTER_VENV:$PATH" cargo build --release --quiet || built=$?
wait
if [[ "$(cat "$SEQBENCH_VENV_MADE")" != ok ]]; then
  cat "$SEQBENCH_HOME/setup-venv.log" >&2
  echo "[quickstart] the Python venv could not be made (log above)" >&2
  exit 1
fi
((built == 0)) || exit "$built"
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

# Sourced by the other scripts: where seqbench keeps its toolchain pieces and build output.
# Everything lives outside the clone so that repeated builds (and CI runs) on one machine are
# incremental and the repository stays small.
SEQBENCH_HOME="${SEQBENCH_HOME:-$HOME/.cache/seqbench}"
SEQBENCH_VENV="$SEQBENCH_HOME/venv"
export SEQBENCH_HOME SEQBENCH_VENV
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SEQBENCH_HOME/target}"
# tch's build script (torch-sys) takes libtorch from the torch wheel in our venv: it runs the
# first `python3`/`python` on PATH, so the venv goes first. build.rs then bakes that wheel's
# torch/lib into the binary's rpath, so running seqbench needs no environment at all.
export LIBTORCH_USE_PYTORCH=1
export PATH="$SEQBENCH_VENV/bin:$PATH"
# pyo3's build script and build.rs ask this interpreter for libpython and the venv's prefix: a
# fixed path rather than whichever python3 comes first on PATH (pyo3 rebuilds whenever PATH
# changes unless PYO3_PYTHON is set), the same for every clone that shares SEQBENCH_HOME.
# setup.sh installs it there from scripts/after-venv/python3; it runs the venv's python3.
SEQBENCH_AFTER_VENV="$SEQBENCH_HOME/after-venv"
export SEQBENCH_AFTER_VENV
export PYO3_PYTHON="${PYO3_PYTHON:-$SEQBENCH_AFTER_VENV/python3}"

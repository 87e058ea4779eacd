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

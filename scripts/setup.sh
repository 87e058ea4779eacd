#!/usr/bin/env bash
# Installs what building and running seqbench needs. Idempotent: quiet when all is present.
#   - Debian packages: a C++ compiler (torch-sys builds a wrapper), pkg-config, python3-venv,
#     OpenMPI and libclang (for the `mpi` feature)
#   - a Python venv with torch==2.11.0 (the libtorch that tch 0.24 binds) and numpy
#   - with --chromium: Debian's chromium, for the report's browser test and screenshots
#     (best effort: where it cannot be installed, that test says it was skipped)
#   - with --only system / --only venv: just the system part (packages, toolchain check) or just
#     the venv, so that quickstart.sh can build the crates that need no libtorch meanwhile
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

TORCH_VERSION=2.11.0
DEB_PACKAGES=(g++ pkg-config python3-venv openmpi-bin libopenmpi-dev libclang-dev)

log() { echo "[setup] $*" >&2; }

chromium=false
part=all
while (($#)); do
  case "$1" in
    --chromium) chromium=true ;;
    --only)
      part="${2:-}"
      shift
      [[ "$part" == system || "$part" == venv ]] || { log "--only takes 'system' or 'venv', not '$part'"; exit 2; }
      ;;
    *) log "unknown argument '$1' (expected --chromium or --only system|venv)"; exit 2 ;;
  esac
  shift
done

venv_ok() {
  [[ -x "$SEQBENCH_VENV/bin/python" ]] &&
    "$SEQBENCH_VENV/bin/python" -c "import torch, numpy, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null
}
make_venv() {
  venv_ok && return 0
  log "creating Python venv with torch==$TORCH_VERSION in $SEQBENCH_VENV (a few GB, ~2 min)"
  mkdir -p "$SEQBENCH_HOME"
  python3 -m venv "$SEQBENCH_VENV"
  "$SEQBENCH_VENV/bin/python" -m pip install -q --upgrade pip
  "$SEQBENCH_VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" numpy
  venv_ok || { log "torch $TORCH_VERSION did not import from $SEQBENCH_VENV"; exit 1; }
}
# The interpreter stand-in that env.sh names as PYO3_PYTHON (see scripts/after-venv/python3).
install_after_venv() {
  mkdir -p "$SEQBENCH_AFTER_VENV"
  cmp -s "$here/after-venv/python3" "$SEQBENCH_AFTER_VENV/python3" ||
    install -m 755 "$here/after-venv/python3" "$SEQBENCH_AFTER_VENV/python3"
  ln -sf python3 "$SEQBENCH_AFTER_VENV/python"
}
install_after_venv
if [[ "$part" == venv ]]; then
  make_venv
  exit 0
fi

missing_debs=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_debs+=("$p")
done
sudo_cmd=""
[[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
if ((${#missing_debs[@]})); then
  log "installing Debian packages: ${missing_debs[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing_debs[@]}" >/dev/null
fi

# `arch: python` embeds the venv's Python: it needs Python.h and a shared libpython. pyenv and
# most builds have both; Debian's python3 has them in python3-dev.
python_embeddable() {
  python3 -c "import os, sys, sysconfig; h = os.path.join(sysconfig.get_paths()['include'], 'Python.h'); \
lib = os.path.join(sysconfig.get_config_var('LIBDIR') or '', sysconfig.get_config_var('LDLIBRARY') or ''); \
sys.exit(not (os.path.exists(h) and lib.endswith('.so') and os.path.exists(lib)))" 2>/dev/null
}
if ! python_embeddable; then
  log "installing python3-dev (headers and libpython, for \`arch: python\`)"
  { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-dev >/dev/null; } ||
    log "could not install python3-dev: build with --no-default-features --features mpi to leave out \`arch: python\`"
fi

if $chromium && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  log "installing chromium (headless browser for the report test; ~1 min)"
  { $sudo_cmd apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
    log "could not install chromium: the browser test will report itself skipped"
fi

if [[ "$part" == all ]]; then
  make_venv
fi

if ! command -v cargo >/dev/null; then
  log "cargo not found: install the Rust toolchain (rustup) first"
  exit 1
fi

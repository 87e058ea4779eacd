#!/usr/bin/env bash
# Dispatch overhead: N noop jobs (a task that does nothing) through the local pool and through
# `mpirun -n RANKS --oversubscribe`, with process and inline isolation. Prints jobs/s and the
# harness's cost per job.
#
#   bash scripts/bench_dispatch.sh [N=10000] [RANKS=8] [PROCESS_N=N]
#
# PROCESS_N caps the process-isolation runs: each of those jobs starts a seqbench process that
# loads libtorch, so on a 2-core machine 10,000 of them take a long time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
n="${1:-10000}"
ranks="${2:-8}"
process_n="${3:-$n}"
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/seqbench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mpi_flags=(--oversubscribe)
if [ "$(id -u)" = 0 ]; then mpi_flags+=(--allow-run-as-root); fi
slots=$(nproc)

suite() { # name isolation count
  {
    echo "name: $1"
    echo "defaults:"
    echo "  steps: 1"
    echo "  isolation: $2"
    echo "  seeds: [$(seq -s, 0 $(($3 - 1)))]"
    echo "models:"
    echo "  - arch: lstm"
    echo "tasks:"
    echo "  - task: noop"
  } > "$work/$1.yaml"
}

measure() { # label count command...
  local label="$1" count="$2"
  shift 2
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null 2> "$work/last.log" || { tail -5 "$work/last.log"; exit 1; }
  end=$(date +%s.%N)
  awk -v l="$label" -v n="$count" -v s="$start" -v e="$end" \
    'BEGIN { t = e - s; printf "| %s | %d | %.1f | %.0f | %.2f |\n", l, n, t, n / t, 1000 * t / n }'
}

suite inline inline "$n"
suite process process "$process_n"
echo "| dispatch | jobs | wall s | jobs/s | ms per job |"
echo "| --- | ---: | ---: | ---: | ---: |"
measure "local pool, $slots slots, inline" "$n" "$bin" run "$work/inline.yaml" --out "$work/r" --jobs "$slots" --yes
measure "local pool, $slots slots, process" "$process_n" "$bin" run "$work/process.yaml" --out "$work/r" --jobs "$slots" --yes
measure "mpirun -n $ranks, inline" "$n" mpirun "${mpi_flags[@]}" -n "$ranks" "$bin" run "$work/inline.yaml" --out "$work/r" --yes
measure "mpirun -n $ranks, process" "$process_n" mpirun "${mpi_flags[@]}" -n "$ranks" "$bin" run "$work/process.yaml" --out "$work/r" --yes

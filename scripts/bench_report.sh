#!/usr/bin/env bash
# Times `seqbench report` on N synthetic records (default 1,000,000; examples/gen_records.rs),
# read from records.jsonl alone, against a baseline commit's binary in the same run: the two
# alternate, three times each, so that the machine's drift hits both alike.
#   bash scripts/bench_report.sh [N] [BASELINE_REV]
# BASELINE_REV defaults to ad0c42b (before the record redesign); `none` skips it. Its binary is
# built once in a worktree and kept in $SEQBENCH_HOME/baseline/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
# shellcheck source=env.sh
source scripts/env.sh
n="${1:-1000000}"
rev="${2:-ad0c42b}"
baseline=""
if [[ "$rev" != none ]]; then
  baseline="$SEQBENCH_HOME/baseline/seqbench-$rev"
  if [[ ! -x "$baseline" ]]; then
    echo "building the baseline $rev (once)" >&2
    tree="$SEQBENCH_HOME/baseline/tree-$rev"
    rm -rf "$tree" && git worktree prune
    git worktree add --detach --quiet "$tree" "$rev"
    # Both trees build the package `seqbench` into the same target dir under the same artifact
    # names, and each would take the other's artifacts for fresh: clean the package before each
    # build (its dependencies stay built, so only seqbench itself compiles, twice).
    cargo clean --release --quiet -p seqbench
    (cd "$tree" && cargo build --release --quiet --bin seqbench)
    cp "$CARGO_TARGET_DIR/release/seqbench" "$baseline"
    cargo clean --release --quiet -p seqbench
    cargo build --release --quiet --bin seqbench
    git worktree remove --force "$tree"
  fi
fi
cargo build --release --quiet --bin seqbench --example gen_records
run="${TMPDIR:-/tmp}/seqbench-bench-report/$n/run"
if [[ ! -s "$run/records.jsonl" ]]; then
  echo "generating $n records in $run" >&2
  "$CARGO_TARGET_DIR/release/examples/gen_records" "$n" "$run"
fi
rm -f "$run/records.bin" # the binary copy older commits kept: time them on the JSON alone
size="$(du -h "$run/records.jsonl" | cut -f1)"

# Prints the wall seconds of `$1 report $run`.
time_report() {
  local start end
  start=$(date +%s%N)
  "$1" report "$run" >/dev/null 2>"$run/../report.log" ||
    { cat "$run/../report.log" >&2; echo "bench_report.sh: $1 report failed" >&2; exit 1; }
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }'
}

printf '%-9s %-13s %-4s %-12s %-16s %s\n' records records.jsonl run "this (s)" "$rev (s)" ratio
for i in 1 2 3; do
  this="$(time_report "$CARGO_TARGET_DIR/release/seqbench")"
  base="-" ratio="-"
  if [[ -n "$baseline" ]]; then
    base="$(time_report "$baseline")"
    ratio="$(awk -v a="$this" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
  fi
  printf '%-9s %-13s %-4s %-12s %-16s %s\n' "$n" "$size" "$i" "$this" "$base" "$ratio"
done

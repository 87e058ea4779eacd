#!/usr/bin/env bash
# Times `seqbench report` on N synthetic records (default 1,000,000; examples/gen_records.rs).
#   bash scripts/bench_report.sh [N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
# shellcheck source=env.sh
source scripts/env.sh
n="${1:-1000000}"
cargo build --release --quiet --bin seqbench --example gen_records
run="${TMPDIR:-/tmp}/seqbench-bench-report/$n/run"
if [[ ! -s "$run/records.jsonl" ]]; then
  echo "generating $n records in $run" >&2
  "$CARGO_TARGET_DIR/release/examples/gen_records" "$n" "$run"
fi
size="$(du -h "$run/records.jsonl" | cut -f1)"
copy="$( [[ -f "$run/records.bin" ]] && du -h "$run/records.bin" | cut -f1 || echo none)"
printf '%-12s %-10s %-12s %-8s %s\n' records records.jsonl records.bin run "seconds (wall)"
for i in 1 2 3; do
  start=$(date +%s%N)
  "$CARGO_TARGET_DIR/release/seqbench" report "$run" >/dev/null 2>"$run/../report.log" ||
    { cat "$run/../report.log" >&2; echo "bench_report.sh: seqbench report failed" >&2; exit 1; }
  end=$(date +%s%N)
  ms=$(((end - start) / 1000000))
  printf '%-12s %-10s %-12s %-8s %d.%02d\n' "$n" "$size" "$copy" "$i" $((ms / 1000)) $((ms % 1000 / 10))
done

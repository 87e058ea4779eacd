#!/usr/bin/env bash
# The fused scans against the libtorch-op reference scans they replace, in one binary: each
# scanned mixer runs with `scan: reference` and `scan: fused` one after the other, ROUNDS times,
# so machine noise hits both. Training tokens/s (median after the warm-up steps) and the job's own
# memory (peak RSS minus the RSS before data and model were built), with the LSTM on the same
# shape for scale. Defaults: batch 16, L = 1024, d_model 128, 2 layers, no MLP, one libtorch
# thread, glibc's default malloc (SEQBENCH_MALLOC unset), denormals flushed (seqbench's default).
#   bash scripts/bench_scan.sh [ROUNDS] [BATCH] [LENGTH] [D_MODEL] [STEPS]
# BENCH_ARCHS="mamba lru" restricts the scanned mixers (default: mamba lru mingru minlstm hawk).
# BASELINE=<git revision> also runs the same models with that revision's binary (built from a
# git worktree into the same target dir, so only seqbench itself compiles), before each round's
# current run: "faster than the code at <revision>", measured on the same machine in one go.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
rounds="${1:-2}" batch="${2:-16}" length="${3:-1024}" d="${4:-128}" steps="${5:-8}"
archs="${BENCH_ARCHS:-mamba lru mingru minlstm hawk}"
for arch in $archs; do
  case "$arch" in
    mamba | lru | mingru | minlstm | hawk) ;;
    *) echo "bench_scan.sh: BENCH_ARCHS: \`$arch\` has no fused scan (expected mamba, lru, mingru, minlstm or hawk)" >&2; exit 2 ;;
  esac
done
unset SEQBENCH_MALLOC
cargo build --release --quiet --bins
work="$(mktemp -d)"
cleanup() {
  [ -n "${BASELINE:-}" ] && git worktree remove --force "$work/baseline-src" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
baseline_bin=""
if [ -n "${BASELINE:-}" ]; then
  git rev-parse --verify --quiet "$BASELINE^{commit}" >/dev/null ||
    { echo "bench_scan.sh: BASELINE=$BASELINE is not a commit of this repository" >&2; exit 2; }
  git worktree add --detach "$work/baseline-src" "$BASELINE" >/dev/null 2>&1
  echo "building the baseline ($BASELINE)" >&2
  # Both trees build the package `seqbench` into the same target dir under the same artifact
  # names, and each would take the other's artifacts for fresh: clean the package before each
  # build (its dependencies stay built, so only seqbench itself compiles, twice).
  cargo clean --release --quiet -p seqbench
  (cd "$work/baseline-src" && cargo build --release --quiet --bin seqbench)
  cp "$CARGO_TARGET_DIR/release/seqbench" "$work/seqbench-baseline"
  cargo clean --release --quiet -p seqbench
  cargo build --release --quiet --bins
  baseline_bin="$work/seqbench-baseline"
fi
header() {
  cat <<YAML
name: $1
defaults:
  device: cpu
  steps: $steps
  measure_warmup_steps: 2
  batch_size: $batch
  lr: 1.0e-3
  lr_warmup_steps: 0
  schedule: constant
  generate_tokens: 0
  threads: 1
  seeds: [0]
tasks:
  - {task: induction, vocab_size: 64, seq_len: $length, train_examples: $((batch * steps)), test_examples: $batch}
models:
YAML
}
if [ -n "$baseline_bin" ]; then
  {
    header bench-scan-baseline
    for arch in $archs; do echo "  - {name: $arch/baseline, arch: $arch, d_model: $d, n_layers: 2, mlp_ratio: 0}"; done
  } >"$work/baseline.yaml"
fi
{
  header bench-scan
  echo "  - {name: lstm, arch: lstm, d_model: $d, n_layers: 2, mlp_ratio: 0}"
  for arch in $archs; do
    for scan in reference fused; do
      echo "  - {name: $arch/$scan, arch: $arch, d_model: $d, n_layers: 2, mlp_ratio: 0, scan: $scan}"
    done
  done
} >"$work/suite.yaml"
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  if [ -n "$baseline_bin" ]; then
    "$baseline_bin" run "$work/baseline.yaml" --out "$work/base-$round" >"$work/base-$round.log" 2>&1 ||
      { cat "$work/base-$round.log" >&2; echo "bench_scan.sh: the baseline run failed" >&2; exit 1; }
    cat "$work/base-$round/bench-scan-baseline/latest/records.jsonl" >>"$work/records-$round.jsonl"
  fi
  "$CARGO_TARGET_DIR/release/seqbench" run "$work/suite.yaml" --out "$work/runs-$round" >"$work/run-$round.log" 2>&1 ||
    { cat "$work/run-$round.log" >&2; echo "bench_scan.sh: the seqbench run failed" >&2; exit 1; }
  cat "$work/runs-$round/bench-scan/latest/records.jsonl" >>"$work/records-$round.jsonl"
done
"$SEQBENCH_VENV/bin/python" - "$work" "$rounds" "$batch×$length×d$d, 2 layers, 1 thread" "$archs" "${BASELINE:-}" <<'PY'
import json, statistics, sys
work, rounds, shape, archs, baseline = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5]
runs = []
for r in range(1, rounds + 1):
    recs = {}
    for line in open(f"{work}/records-{r}.jsonl"):
        rec = json.loads(line)
        if rec.get("status") != "ok":
            sys.exit(f"bench_scan.sh: job {rec.get('model')} ended {rec.get('status')}: {rec.get('error')}")
        recs[rec["model"]] = rec
    runs.append(recs)
def speed(name):
    return [run[name]["train_tokens_per_s"] for run in runs]
def own_mib(name):
    return [(run[name]["peak_mem_bytes"] - run[name]["baseline_rss_bytes"]) / 2**20 for run in runs]
def ratios(a, b):
    return [x / y for x, y in zip(a, b)]
def spread(values):
    return f"{min(values):.2f}–{max(values):.2f}"
lstm = speed("lstm")
med = statistics.median
print(f"{shape}; median of {rounds} rounds (range: lowest and highest per-round ratio); "
      "own MiB = peak RSS minus the RSS before data and model\n")
# Against the reference scan of this code, and (with BASELINE) against the code at that revision.
against = [("reference", "reference")] + ([("baseline", f"code at {baseline}")] if baseline else [])
cols = ["arch", "fused tok/s"]
for key, label in against:
    cols += [f"{label} tok/s", f"speed-up vs {label}", "range", f"{label} own MiB", f"own memory ÷ vs {label}"]
cols += ["fused own MiB", "fused / LSTM tok/s"]
print("| " + " | ".join(cols) + " |")
print("| --- |" + " ---: |" * (len(cols) - 1))
for arch in archs:
    fused, mem_fused = speed(f"{arch}/fused"), own_mib(f"{arch}/fused")
    cells = [arch, f"{med(fused):,.0f}"]
    for key, _ in against:
        other, mem_other = speed(f"{arch}/{key}"), own_mib(f"{arch}/{key}")
        up = ratios(fused, other)
        cells += [f"{med(other):,.0f}", f"{med(up):.2f}×", spread(up), f"{med(mem_other):,.0f}", f"{med(ratios(mem_other, mem_fused)):.1f}×"]
    cells += [f"{med(mem_fused):,.0f}", f"{med(ratios(fused, lstm)):.2f}"]
    print("| " + " | ".join(cells) + " |")
print(f"\nlstm: {med(lstm):,.0f} tok/s, {med(own_mib('lstm')):,.0f} own MiB")
impl = {run[name].get("implementation") for run in runs for name in run if name.endswith("/fused")}
print("\nfused jobs' implementation: " + "; ".join(sorted(i for i in impl if i)))
PY

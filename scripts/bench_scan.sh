#!/usr/bin/env bash
# The fused scans against the libtorch-op reference scans they replace, in one binary: each
# scanned mixer runs with `scan: reference` and `scan: fused` one after the other, ROUNDS times,
# so machine noise hits both. Training tokens/s (median after the warm-up steps) and the job's own
# memory (peak RSS minus the RSS before data and model were built), with the LSTM on the same
# shape for scale. Defaults: batch 16, L = 1024, d_model 128, 2 layers, no MLP, one libtorch
# thread, glibc's default malloc (SEQBENCH_MALLOC unset), denormals flushed (seqbench's default).
#   bash scripts/bench_scan.sh [ROUNDS] [BATCH] [LENGTH] [D_MODEL] [STEPS]
# BENCH_ARCHS="mamba lru" restricts the scanned mixers (default: mamba lru mingru minlstm hawk).
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
cargo build --release --quiet --bin seqbench
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
{
  cat <<YAML
name: bench-scan
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
  - {name: lstm, arch: lstm, d_model: $d, n_layers: 2, mlp_ratio: 0}
YAML
  for arch in $archs; do
    for scan in reference fused; do
      echo "  - {name: $arch/$scan, arch: $arch, d_model: $d, n_layers: 2, mlp_ratio: 0, scan: $scan}"
    done
  done
} >"$work/suite.yaml"
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  "$CARGO_TARGET_DIR/release/seqbench" run "$work/suite.yaml" --out "$work/runs-$round" >"$work/run-$round.log" 2>&1 ||
    { cat "$work/run-$round.log" >&2; echo "bench_scan.sh: the seqbench run failed" >&2; exit 1; }
  cp "$work/runs-$round/bench-scan/latest/records.jsonl" "$work/records-$round.jsonl"
done
"$SEQBENCH_VENV/bin/python" - "$work" "$rounds" "$batch×$length×d$d, 2 layers, 1 thread" "$archs" <<'PY'
import json, statistics, sys
work, rounds, shape, archs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
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
print(f"{shape}; median of {rounds} rounds (range: lowest and highest per-round ratio)\n")
print("| arch | reference tok/s | fused tok/s | speed-up | range | reference own MiB | fused own MiB | memory ratio | fused / LSTM tok/s |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for arch in archs:
    ref, fused = speed(f"{arch}/reference"), speed(f"{arch}/fused")
    mem_ref, mem_fused = own_mib(f"{arch}/reference"), own_mib(f"{arch}/fused")
    up, mem = ratios(fused, ref), ratios(mem_ref, mem_fused)
    print(f"| {arch} | {statistics.median(ref):,.0f} | {statistics.median(fused):,.0f} | {statistics.median(up):.2f}× | {spread(up)} "
          f"| {statistics.median(mem_ref):,.0f} | {statistics.median(mem_fused):,.0f} | {statistics.median(mem):.1f}× "
          f"| {statistics.median(ratios(fused, lstm)):.2f} |")
print(f"| lstm | {statistics.median(lstm):,.0f} | | | | {statistics.median(own_mib('lstm')):,.0f} | | | 1.00 |")
impl = {run[name].get("implementation") for run in runs for name in run if name.endswith("/fused")}
print("\nfused jobs' implementation: " + "; ".join(sorted(i for i in impl if i)))
PY

#!/usr/bin/env bash
# Denormal floats and CPU speed: an LSTM (d_model 128, 2 layers, batch 16, one thread) trained
# on `induction` at L = 256, whose only label is the last position (so backpropagation through
# time drives the gradients of early positions through the denormal range), with denormals
# flushed (seqbench's default) and kept (PyTorch's default), against the same backbone on a
# dense-label task: ETTh1 forecasting (one channel, L = 256), where every position gets a
# gradient from the head directly. Each setting runs ROUNDS times, alternating. Expected: with
# the flag the induction figure is within 2× of the dense one; without it, several times slower.
#   bash scripts/bench_denormal.sh [ROUNDS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
# shellcheck source=env.sh
source scripts/env.sh
rounds="${1:-3}"
cargo build --release --quiet --bins
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
data="$(cd .. && pwd)/shared/datasets"
for flush in true false; do
  cat >"$work/$flush.yaml" <<YAML
name: denormal-$flush
data_dir: $data
defaults:
  device: cpu
  steps: 30
  measure_warmup_steps: 5
  batch_size: 16
  lr: 1.0e-3
  schedule: constant
  weight_decay: 0.0
  grad_clip: 0.0
  generate_tokens: 0
  threads: 1
  flush_denormal: $flush
  seeds: [0]
models:
  - {arch: lstm, d_model: 128, n_layers: 2, mlp_ratio: 4}
tasks:
  - {task: induction, vocab_size: 64, seq_len: 256, train_examples: 480, test_examples: 16}
  - {task: forecast, dataset: ETTh1, features: S, seq_len: 256, pred_len: 96, overrides: {patience: 0}}
YAML
done
for round in $(seq "$rounds"); do
  for flush in true false; do
    echo "round $round/$rounds: flush_denormal $flush" >&2
    "$CARGO_TARGET_DIR/release/seqbench" run "$work/$flush.yaml" --out "$work/runs-$round" >"$work/log" 2>&1 ||
      { cat "$work/log" >&2; echo "bench_denormal.sh: the run failed" >&2; exit 1; }
  done
done
"$SEQBENCH_VENV/bin/python" - "$work" <<'PY'
import glob, json, statistics, sys
rates = {}
for path in glob.glob(f"{sys.argv[1]}/runs-*/*/*/records.jsonl"):
    if "/latest/" in path:
        continue  # the `latest` link: the same run again
    for line in open(path):
        r = json.loads(line)
        if r["status"] != "ok":
            sys.exit(f"bench_denormal.sh: {r['task']} ended {r['status']}: {r.get('reason')}")
        rates.setdefault((r["task"], r["denormals"]), []).append(r["train_tokens_per_s"])
print("| task | labels | denormals | train tok/s (median) | rounds | ÷ dense, flushed |")
print("| --- | --- | --- | ---: | ---: | ---: |")
dense = statistics.median(rates[("forecast", "flushed")])
for (task, mode), values in sorted(rates.items()):
    labels = "last position" if task == "induction" else "every position (dense)"
    m = statistics.median(values)
    print(f"| {task} | {labels} | {mode} | {m:,.0f} | {len(values)} | {m / dense:.2f} |")
ratio = statistics.median(rates[("induction", "flushed")]) / dense
verdict = "within" if 0.5 <= ratio <= 2.0 else "NOT within"
print(f"\ninduction with denormals flushed is {ratio:.2f}× the dense task: {verdict} a factor of two")
PY

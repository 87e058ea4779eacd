#!/usr/bin/env bash
# What a layer written in PyTorch costs in seqbench: the same mixer (minGRU) native and as
# examples/python/mingru.py under `arch: python`, plus the GLA example beside the native `gla`,
# ROUNDS times in one binary (each round runs every model once, so machine noise hits all).
# Training and inference tokens/s and the job's own memory (peak RSS minus the RSS before data
# and model), medians over the rounds. Then the TorchScript probe (scripts/torchscript_probe.py):
# the road not taken, eager against torch.jit.script.
#   bash scripts/bench_python_layer.sh [ROUNDS] [BATCH] [LENGTH] [D_MODEL] [STEPS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
rounds="${1:-3}" batch="${2:-16}" length="${3:-256}" d="${4:-64}" steps="${5:-20}"
cargo build --release --quiet --bins
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
examples="$PWD/examples/python"
cat >"$work/suite.yaml" <<YAML
name: bench-python-layer
defaults:
  device: cpu
  steps: $steps
  measure_warmup_steps: 3
  batch_size: $batch
  lr: 1.0e-3
  schedule: constant
  generate_tokens: 0
  threads: 1
  seeds: [0]
tasks:
  - {task: induction, vocab_size: 64, seq_len: $length, train_examples: $((batch * steps)), test_examples: $((batch * 4))}
models:
  - {name: mingru native scan=reference, arch: mingru, d_model: $d, n_layers: 2, scan: reference}
  - {name: mingru native scan=fused, arch: mingru, d_model: $d, n_layers: 2, scan: fused}
  - {name: mingru.py python, arch: python, module: $examples/mingru.py, class: MinGRU, d_model: $d, n_layers: 2}
  - {name: gla native, arch: gla, d_model: $d, n_layers: 2, n_heads: 4}
  - {name: gla.py python, arch: python, module: $examples/gla.py, class: GatedLinearAttention, d_model: $d, n_layers: 2}
YAML
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  "$CARGO_TARGET_DIR/release/seqbench" run "$work/suite.yaml" --out "$work/runs-$round" >"$work/run-$round.log" 2>&1 ||
    { cat "$work/run-$round.log" >&2; echo "bench_python_layer.sh: the seqbench run failed" >&2; exit 1; }
  cat "$work/runs-$round/bench-python-layer/latest/records.jsonl" >>"$work/records.jsonl"
done
"$SEQBENCH_VENV/bin/python" - "$work/records.jsonl" "$rounds" "$batch×$length×d$d, 2 layers, 1 thread" <<'PY'
import json, statistics, sys
path, rounds, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3]
by_model = {}
for line in open(path):
    rec = json.loads(line)
    if rec.get("status") != "ok":
        sys.exit(f"bench_python_layer.sh: {rec.get('model')} ended {rec.get('status')}: {rec.get('reason')}")
    by_model.setdefault(rec["model"], []).append(rec)
med = statistics.median
print(f"{shape}; median of {rounds} rounds; own MiB = peak RSS minus the RSS before data and model\n")
print("| model | train tok/s | infer tok/s | own MiB |")
print("| --- | ---: | ---: | ---: |")
for name, recs in by_model.items():
    train = med(r["train_tokens_per_s"] for r in recs)
    infer = med(r["infer_tokens_per_s"] for r in recs)
    own = med((r["peak_mem_bytes"] - r["baseline_rss_bytes"]) / 2**20 for r in recs)
    print(f"| {name} | {train:,.0f} | {infer:,.0f} | {own:,.0f} |")
PY
echo
(cd examples/python && "$SEQBENCH_VENV/bin/python" "$here/torchscript_probe.py")

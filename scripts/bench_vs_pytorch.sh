#!/usr/bin/env bash
# seqbench against what a user would otherwise run: the same backbone in PyTorch eager
# (scripts/reference/bench_models.py, in the venv setup.sh made) at the same shape, batch,
# thread count, optimizer (AdamW, no clipping) and timing rule (median tokens/s after 5 warm-up
# steps), for every arch but `linear`; each mixer keeps its seqbench defaults, the backbone is the
# same for all (2 layers, mlp_ratio 4: equal MLP cost, so the mixer is what differs). The two
# alternate, ROUNDS times, so machine noise hits both; the table shows the median over rounds and
# the ratio seqbench / PyTorch (> 1: seqbench faster) with its range over rounds; a warning flags
# unequal n_params. SEQBENCH_MALLOC=keep runs both sides with glibc keeping freed memory (seqbench
# through mallopt, Python through glibc's MALLOC_*_ variables, the same settings). Both sides
# flush denormal floats (seqbench's default, torch.set_flush_denormal(True) in the reference);
# SEQBENCH_FLUSH_DENORMAL=false keeps them on both sides (PyTorch's default). BENCH_ARCHS="hawk
# slstm" restricts both sides to those architectures. Hawk runs in Griffin's residual block on
# both sides (RMSNorm, gated GeLU MLP), as seqbench builds it.
#   bash scripts/bench_vs_pytorch.sh [ROUNDS] [BATCH] [LENGTH] [D_MODEL] [THREADS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
rounds="${1:-3}" batch="${2:-16}" length="${3:-256}" d="${4:-128}" threads="${5:-1}"
malloc="${SEQBENCH_MALLOC:-default}"
flush="${SEQBENCH_FLUSH_DENORMAL:-true}"
case "$flush" in
  true | false) ;;
  *) echo "bench_vs_pytorch.sh: SEQBENCH_FLUSH_DENORMAL=$flush: expected true or false" >&2; exit 2 ;;
esac
torch_env=()
case "$malloc" in
  default) ;;
  keep) torch_env=(MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_TOP_PAD_=67108864) ;;
  *) echo "bench_vs_pytorch.sh: SEQBENCH_MALLOC=$malloc: expected keep or default" >&2; exit 2 ;;
esac
export SEQBENCH_MALLOC="$malloc"
cargo build --release --quiet --bins
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/suite.yaml" <<YAML
name: vs-pytorch
defaults:
  device: cpu
  steps: 30
  measure_warmup_steps: 5
  batch_size: $batch
  lr: 1.0e-3
  lr_warmup_steps: 0
  schedule: constant
  optimizer: adamw
  weight_decay: 0.0
  grad_clip: 0.0
  generate_tokens: 0
  threads: $threads
  flush_denormal: $flush
  seeds: [0]
models:
  - {arch: lstm, d_model: $d, n_layers: 2, mlp_ratio: 4}
  - {arch: gru, d_model: $d, n_layers: 2, mlp_ratio: 4}
  - {arch: transformer, d_model: $d, n_layers: 2, n_heads: 4, mlp_ratio: 4, positions: rope}
  - {arch: s4d, d_model: $d, n_layers: 2, mlp_ratio: 4, d_state: 64, init: lin}
  - {arch: lru, d_model: $d, n_layers: 2, mlp_ratio: 4, d_state: 0}
  - {arch: mingru, d_model: $d, n_layers: 2, mlp_ratio: 4, expand: 1}
  - {arch: minlstm, d_model: $d, n_layers: 2, mlp_ratio: 4, expand: 1}
  - {arch: retnet, d_model: $d, n_layers: 2, mlp_ratio: 4, n_heads: 4, chunk: 64}
  - {arch: mamba, d_model: $d, n_layers: 2, mlp_ratio: 4, d_state: 16, expand: 2, d_conv: 4, dt_rank: 0}
  - {arch: hawk, d_model: $d, n_layers: 2, mlp_ratio: 4, num_heads: 4, conv_width: 4}
  - {arch: slstm, d_model: $d, n_layers: 2, mlp_ratio: 4, n_heads: 4, conv_size: 4}
tasks:
  - {task: induction, vocab_size: 64, seq_len: $length, train_examples: $((batch * 30)), test_examples: $batch}
YAML
archs="${BENCH_ARCHS:-lstm gru transformer s4d lru mingru minlstm retnet mamba hawk slstm}"
# Only the chosen architectures' model lines stay in the suite.
awk -v keep=" $archs " '/^  - \{arch: / { a = $3; sub(/,$/, "", a); if (index(keep, " " a " ") == 0) next } { print }' \
  "$work/suite.yaml" >"$work/suite.tmp" && mv "$work/suite.tmp" "$work/suite.yaml"
for round in $(seq "$rounds"); do
  echo "round $round/$rounds: PyTorch" >&2
  env ${torch_env[@]+"${torch_env[@]}"} "$SEQBENCH_VENV/bin/python" scripts/reference/bench_models.py --arch $archs --batch "$batch" \
    --length "$length" --d-model "$d" --threads "$threads" --flush-denormal "$flush" >"$work/torch-$round.jsonl"
  echo "round $round/$rounds: seqbench" >&2
  "$CARGO_TARGET_DIR/release/seqbench" run "$work/suite.yaml" --out "$work/runs-$round" >"$work/seqbench-$round.log" 2>&1 ||
    { cat "$work/seqbench-$round.log" >&2; echo "bench_vs_pytorch.sh: the seqbench run failed" >&2; exit 1; }
  cp "$work/runs-$round/vs-pytorch/latest/records.jsonl" "$work/seqbench-$round.jsonl"
done
"$SEQBENCH_VENV/bin/python" - "$work" "$rounds" "$batch×$length×d$d, $threads thread(s)" "$malloc" "$flush" <<'PY'
import json, statistics, sys
work, rounds, shape, malloc, flush = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def rows(prefix, key):
    out = {}
    for r in range(1, rounds + 1):
        for line in open(f"{work}/{prefix}-{r}.jsonl"):
            rec = json.loads(line)
            out.setdefault(rec[key], []).append(rec)
    return out
torch, seq = rows("torch", "arch"), rows("seqbench", "model")
want = "flushed" if flush == "true" else "kept"
for arch, recs in seq.items():
    got = {r.get("denormals") for r in recs if r.get("status") == "ok"}
    if got - {want}:
        sys.exit(f"bench_vs_pytorch.sh: seqbench's {arch} jobs say denormals {got}, expected {want}")
print(f"malloc: {malloc}; denormals: {want} on both sides; median of {rounds} rounds; range = lowest and highest per-round ratio\n")
print("| arch | shape | what | PyTorch tok/s | seqbench tok/s | seqbench / PyTorch | range |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
for arch in torch:
    for what, key in (("train", "train_tokens_per_s"), ("inference", "infer_tokens_per_s")):
        t = statistics.median(r[key] for r in torch[arch])
        values = [r[key] for r in seq.get(arch, []) if r.get(key)]
        if not values:
            print(f"| {arch} | {shape} | {what} | {t:,.0f} | n/a (job not ok) | n/a | |")
            continue
        s = statistics.median(values)
        if torch[arch][0].get("n_params") != seq[arch][0].get("n_params"):
            print(f"warning: {arch}: n_params differ (PyTorch {torch[arch][0].get('n_params')}, "
                  f"seqbench {seq[arch][0].get('n_params')}): not the same model", file=sys.stderr)
        per_round = [r[key] / p[key] for r, p in zip(seq.get(arch, []), torch[arch]) if r.get(key)]
        spread = f"{min(per_round):.2f}–{max(per_round):.2f}"
        print(f"| {arch} | {shape} | {what} | {t:,.0f} | {s:,.0f} | {s / t:.2f} | {spread} |")
PY

#!/usr/bin/env bash
# The GPU check, one script for the first GPU machine (about 8 minutes on one GPU): builds
# with CUDA, calibrates the matmul peak (fp32, TF32, bf16), runs the quick suite on `cuda` in
# float32 and bfloat16, a short scaling run (transformer, Mamba with the fused scan and with
# `scan: reference`, GLA, Gated DeltaNet and Mamba-2 (the chunkwise engine) at 1K…16K tokens: the fused scan's ATen form must run every length in
# less memory than the reference), the
# quick suite again under `mpirun` with two workers sharing the GPU, then checks the records
# (device cuda, allocator peak memory, implementation fields, bf16 at least 1.5× fp32 for a
# transformer where compute counts: d_model 512, 4 layers, L 1,024 — the quick suite's tiny one
# is bound by kernel launches, 476k bf16 against 530k fp32 tokens/s on an H200) and prints one
# table. Exit status 1 when a check fails.
#
#   bash scripts/gpu_check.sh                 # on the GPU machine
#   bash scripts/gpu_check.sh --dry-run       # anywhere: validate the suites, print what would run
#   bash scripts/gpu_check.sh --prebuilt DIR  # on a GPU machine with no toolchain or network:
#       DIR holds a release `seqbench-torch` built elsewhere against the same torch version as
#       the machine's python3 (and DIR/lib any shared libraries the machine lacks); it runs on
#       the machine's own libtorch, and the MPI part is skipped when there is no `mpirun`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
dry_run=false
prebuilt=""
case "${1:-}" in
  --dry-run) dry_run=true ;;
  --prebuilt)
    prebuilt="$(cd "${2:?--prebuilt needs a directory}" && pwd)"
    [[ -x "$prebuilt/seqbench-torch" ]] || { echo "gpu_check.sh: no executable $prebuilt/seqbench-torch" >&2; exit 2; }
    ;;
  "") ;;
  *) echo "gpu_check.sh: unknown argument '$1' (expected --dry-run or --prebuilt DIR)" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
log() { echo "[gpu_check] $*" >&2; }

# On a machine without CUDA the dry run plans the same suites on `auto`.
device=cuda
$dry_run && device=auto
cat >"$work/gpu-quick.yaml" <<EOF
name: gpu-quick
description: the quick suite's MQAR on one GPU, float32 against bfloat16 and float16 autocast
defaults: { device: $device, dtype: [float32, bfloat16, float16], steps: 300, batch_size: 64, lr: 3.0e-3, lr_warmup_steps: 50, seeds: [0], timeout_s: 300 }
models:
  - { arch: lstm, d_model: 64, n_layers: 2 }
  - { preset: transformer-tiny }
tasks:
  - { task: mqar, vocab_size: 128, seq_len: 32, num_kv_pairs: 4, train_examples: 20000, test_examples: 1000 }
EOF
cat >"$work/gpu-scaling.yaml" <<EOF
name: gpu-scaling
description: transformer, Mamba, GLA, Gated DeltaNet and Mamba-2 at 1K-16K tokens in bfloat16 with TF32 allowed
defaults: { device: $device, dtype: bfloat16, matmul_precision: high, steps: 8, measure_warmup_steps: 2, batch_size: 8, generate_tokens: 16, seeds: [0], timeout_s: 240 }
models:
  - { preset: transformer-tiny, name: transformer }
  - { preset: mamba-tiny, name: mamba }
  - { preset: mamba-tiny, name: mamba-reference, scan: reference }
  - { preset: gla-tiny, name: gla }
  - { preset: gated_deltanet-tiny, name: gated_deltanet }
  - { preset: mamba2-tiny, name: mamba2 }
tasks:
  - { task: induction, vocab_size: 64, seq_len: [1024, 4096, 16384], train_examples: 64, test_examples: 16 }
EOF
cat >"$work/gpu-dtype.yaml" <<EOF
name: gpu-dtype
description: a transformer where compute counts, float32 against bfloat16 autocast
defaults: { device: $device, dtype: [float32, bfloat16], steps: 20, measure_warmup_steps: 5, batch_size: 16, generate_tokens: 0, seeds: [0], timeout_s: 120 }
models:
  - { preset: transformer-tiny, name: transformer-512, d_model: 512, n_heads: 8, n_layers: 4 }
tasks:
  - { task: induction, vocab_size: 64, seq_len: 1024, train_examples: 256, test_examples: 16 }
EOF
sed -e 's/^name: gpu-quick/name: gpu-mpi/' -e 's/dtype: \[float32, bfloat16, float16\]/dtype: bfloat16/' \
  "$work/gpu-quick.yaml" >"$work/gpu-mpi.yaml"

# shellcheck source=env.sh
source scripts/env.sh
if $dry_run; then
  bin="$CARGO_TARGET_DIR/debug/seqbench"
  [[ -x "$bin" ]] || bin="$CARGO_TARGET_DIR/release/seqbench"
  [[ -x "$bin" ]] || { cargo build --quiet; bin="$CARGO_TARGET_DIR/debug/seqbench"; }
  for suite in gpu-quick gpu-dtype gpu-scaling gpu-mpi; do
    jobs=$("$bin" plan "$work/$suite.yaml" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
    log "$suite: $jobs jobs (checked)"
  done
  "$bin" plan suites/scaling-gpu.yaml --json >/dev/null && log "suites/scaling-gpu.yaml: checked"
  cat >&2 <<EOF
[gpu_check] would run, with device cuda:
  bash scripts/setup.sh && cargo build --release
  seqbench calibrate --device cuda
  seqbench run $work/gpu-quick.yaml
  seqbench run $work/gpu-dtype.yaml
  seqbench run $work/gpu-scaling.yaml
  mpirun -n 3 seqbench run $work/gpu-mpi.yaml --ranks-per-gpu 2
  then the record checks and the table
EOF
  rm -rf "$work"
  exit 0
fi

if [[ -n "$prebuilt" ]]; then
  torch_lib="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
  export LD_LIBRARY_PATH="$prebuilt/lib:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  bin="$prebuilt/seqbench-torch"
else
  bash scripts/setup.sh
  log "building (release, CUDA libtorch)"
  cargo build --release --quiet
  bin="$CARGO_TARGET_DIR/release/seqbench"
fi
"$bin" calibrate --device cuda
out="${GPU_CHECK_OUT:-$work/results}" # GPU_CHECK_OUT keeps the records after the check
"$bin" run "$work/gpu-quick.yaml" --out "$out" -q || true
"$bin" run "$work/gpu-dtype.yaml" --out "$out" -q || true
"$bin" run "$work/gpu-scaling.yaml" --out "$out" -q || true
root=()
[[ "$(id -u)" == 0 ]] && root=(--allow-run-as-root)
if command -v mpirun >/dev/null; then
  mpirun "${root[@]}" --oversubscribe -n 3 "$bin" run "$work/gpu-mpi.yaml" --out "$out" --ranks-per-gpu 2 -q || true
else
  log "no mpirun on this machine: the MPI part is NOT checked"
fi

python3 - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows, problems = [], []
for records in sorted(out.glob("*/latest/records.jsonl")):  # each suite ran once
    suite = records.parent.parent.name
    for line in records.read_text().splitlines():
        r = json.loads(line)
        p = r.get("params", {})
        rows.append((suite, r["model"], p.get("train.dtype"), p.get("task.seq_len"), r["status"],
                     r.get("train_tokens_per_s"), r.get("peak_mem_bytes"), r.get("implementation")))
        if r["status"] != "ok":
            if r["status"] != "oom":
                problems.append(f"{suite} {r['model']} {p.get('task.seq_len')}: {r['status']} {r.get('reason')}")
            continue
        if not str(r.get("device", "")).startswith("cuda"):
            problems.append(f"{suite} {r['model']}: device {r.get('device')}")
        if r.get("mem_kind") != "cuda_allocator_peak":
            problems.append(f"{suite} {r['model']}: mem_kind {r.get('mem_kind')}")
        if not r.get("implementation"):
            problems.append(f"{suite} {r['model']}: no implementation field")
# The fused scan's chunked ATen form (what runs off the CPU): every length, less memory than
# the reference scan wherever both ran.
scaling = {(m, l): (st, mem) for s, m, _, l, st, _, mem, _ in rows if s == "gpu-scaling"}
for (m, l), (st, mem) in sorted(scaling.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
    if m != "mamba":
        continue
    if st != "ok":
        problems.append(f"mamba (fused scan) at L={l}: {st}")
    ref_status, ref_mem = scaling.get(("mamba-reference", l), (None, None))
    if st == "ok" and ref_status == "ok" and mem and ref_mem and mem >= ref_mem:
        problems.append(f"mamba at L={l}: fused scan peak {mem / 2**20:.0f} MiB not below the reference's {ref_mem / 2**20:.0f} MiB")
# The chunkwise engine's mixers are small at these lengths: each must run every length.
for (m, l), (st, _) in sorted(scaling.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
    if m in ("gla", "gated_deltanet", "mamba2") and st != "ok":
        problems.append(f"{m} at L={l}: {st}")
# A per-dimension decay runs `chunk: auto`, which is 64 on CUDA (launch-bound below that).
for s, m, _, l, st, _, _, impl in rows:
    if s == "gpu-scaling" and m == "gla" and st == "ok" and "chunks of 64" not in (impl or ""):
        problems.append(f"gla at L={l}: `chunk: auto` did not pick 64 on CUDA: {impl}")
speed = {d: t for s, _, d, _, st, t, _, _ in rows if s == "gpu-dtype" and st == "ok"}
fp32, bf16 = speed.get("float32"), speed.get("bfloat16")
if not (fp32 and bf16 and bf16 >= 1.5 * fp32):
    problems.append(f"transformer-512: bf16 not 1.5x fp32: {bf16} vs {fp32} tokens/s")
print(f"{'suite':12} {'model':17} {'dtype':9} {'L':>6} {'status':8} {'train tok/s':>12} {'peak MiB':>9}  implementation")
for s, m, d, l, st, t, mem, impl in rows:
    print(f"{s:12} {m:17} {d or '':9} {l or '':>6} {st:8} {t or 0:12.0f} {(mem or 0) / 2**20:9.0f}  {impl or ''}")
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
EOF

#!/usr/bin/env bash
# The linear-attention engine's speed and memory, two tables:
#   1. the token loop against the chunkwise form, forward + backward, per decay kind, with and
#      without the delta rule (examples/bench_engine.rs: d_k = d_v = 32, 4 heads, batch 4,
#      L = 1,024, one thread);
#   2. suites/linear-attention-scaling.yaml (--jobs 1): training tokens/s and the job's own peak
#      memory of every engine mixer beside transformer, mamba and lstm at L = 2,048, 4,096 and
#      8,192, with each mixer's throughput against the transformer's at the same L and its memory growth
#      from L = 2,048 to 8,192 (linear growth: 4×).
#   bash scripts/bench_linear_attention.sh [RESULTS_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
out="${1:-$SEQBENCH_HOME/bench-linear-attention}"
cargo build --release --quiet --example bench_engine
cargo build --release --quiet
echo "## Token loop vs chunkwise (forward + backward)"
"$CARGO_TARGET_DIR/release/examples/bench_engine"
echo
echo "## Training throughput and job memory vs L ($(git rev-parse --short HEAD))"
"$CARGO_TARGET_DIR/release/seqbench" run suites/linear-attention-scaling.yaml --out "$out" --jobs 1 >&2 || true
run="$(readlink -f "$out"/linear-attention-scaling/latest)"
python3 - "$run/records.jsonl" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    m = r.get("measurements", r)
    mem = None
    if m.get("peak_mem_bytes") is not None and m.get("baseline_rss_bytes") is not None:
        mem = (m["peak_mem_bytes"] - m["baseline_rss_bytes"]) / 2**20
    rows[(r["model"], r["params"]["task.seq_len"])] = (r["status"], m.get("train_tokens_per_s"), mem)
models = sorted({k[0] for k in rows}, key=lambda n: (n not in ("transformer", "mamba", "lstm"), n))
lengths = sorted({k[1] for k in rows})
print("| model | " + " | ".join(f"L={l} tok/s (job MiB)" for l in lengths) + " | ×transformer at 4096 | mem 8192/2048 |")
print("| --- |" + " ---: |" * (len(lengths) + 2))
def cell(key):
    status, tps, mem = rows.get(key, ("missing", None, None))
    if status != "ok" or tps is None:
        return status
    return f"{tps:,.0f} ({mem:,.0f})" if mem is not None else f"{tps:,.0f}"
for model in models:
    base = rows.get(("transformer", 4096), ("", None, None))[1]
    mine = rows.get((model, 4096), ("", None, None))[1]
    ratio = f"{mine / base:.2f}" if base and mine else "—"
    m2, m8 = rows.get((model, 2048), (0, 0, None))[2], rows.get((model, 8192), (0, 0, None))[2]
    growth = f"{m8 / m2:.1f}" if m2 and m8 else "—"
    print(f"| {model} | " + " | ".join(cell((model, l)) for l in lengths) + f" | {ratio} | {growth} |")
PY

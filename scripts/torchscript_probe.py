"""The alternative to embedding Python for `arch: python`: TorchScript (what tch's CModule loads).
Times minGRU's forward and backward eager and scripted, in this Python (one thread), and tries to
script the GLA example. Run by scripts/bench_python_layer.sh from examples/python."""
import sys, time, warnings, torch
sys.path.insert(0, ".")
from mingru import MinGRU
from gla import GatedLinearAttention
torch.set_num_threads(1)
torch.manual_seed(0)
def bench(f, x, n=30):
    for _ in range(5): f(x).square().mean().backward()
    t = time.perf_counter()
    for _ in range(n): f(x).square().mean().backward()
    return (time.perf_counter() - t) / n * 1e3
for shape in [(1, 8, 64), (16, 256, 64)]:
    x = torch.randn(*shape)
    m = MinGRU(64)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = torch.jit.script(MinGRU(64))
        dep = [str(i.message)[:90] for i in w]
    rows = []
    for r in range(3):
        rows.append((bench(m, x), bench(s, x)))
    e = sorted(a for a, _ in rows)[1]; j = sorted(b for _, b in rows)[1]
    print(f"minGRU fwd+bwd {shape}: eager {e:.3f} ms, torch.jit.script {j:.3f} ms")
print("deprecation:", dep[:1])
try:
    torch.jit.script(GatedLinearAttention(64))
    print("GLA scripted")
except Exception as ex:
    print("GLA cannot be scripted:", type(ex).__name__, str(ex).strip().splitlines()[0][:150])

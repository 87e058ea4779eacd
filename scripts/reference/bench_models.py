"""PyTorch eager versions of seqbench's backbone (embedding → N × [LayerNorm → mixer → residual →
LayerNorm → GELU MLP → residual] → LayerNorm → head), timed the way seqbench times a job: AdamW
training steps (forward + backward + step) and forward-only passes, median tokens/s after warm-up.

Every mixer of src/models/ except `linear` (a fixed time map, a forecasting baseline) has a
version here with the same parameters (names, shapes, count), the same defaults (those of the
Rust config structs) and the same training-mode computation, op for op: what a user would write
from docs/models.md, so the comparison measures the runtime, not a different algorithm.

    python bench_models.py --arch lstm gru transformer --batch 16 --length 256 --d-model 128

Prints one JSON object per architecture (with n_params, which must equal seqbench's record).
Used by scripts/bench_vs_pytorch.sh.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# src/models/scan.rs: time steps scanned in parallel at once; chunks are chained sequentially.
CHUNK = 64


def rope(x):
    """Rotary positions (GPT-NeoX rotate-half, base 10000) on x: (b, heads, l, head_dim)."""
    b, h, l, hd = x.shape
    half = hd // 2
    freq = 10000.0 ** (-torch.arange(half, dtype=torch.float32, device=x.device) / half)
    angle = torch.arange(l, dtype=torch.float32, device=x.device)[:, None] * freq[None, :]
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def linear_scan(a, b):
    """h_t = a_t ⊙ h_{t−1} + b_t along dim 1, h_0 = 0 (real or complex). As seqbench: a loop over
    time on CPU (least arithmetic), the chunked doubling scan elsewhere (fewest launches)."""
    return sequential_scan(a, b) if a.device.type == "cpu" else doubling_scan_chunked(a, b)


def sequential_scan(a, b):
    """unbind, not indexing per step: the backward then stacks the step gradients once."""
    a, b = a.unbind(1), b.unbind(1)
    h = b[0]
    steps = [h]
    for a_t, b_t in zip(a[1:], b[1:]):
        h = a_t * h + b_t
        steps.append(h)
    return torch.stack(steps, 1)


def doubling_scan_chunked(a, b):
    """Hillis–Steele doubling inside chunks of CHUNK, chunks chained through the carry."""
    length, carry, outputs = a.shape[1], None, []
    for start in range(0, length, CHUNK):
        n = min(CHUNK, length - start)
        prefix, h = a[:, start:start + n], b[:, start:start + n]
        offset = 1
        while offset < n:
            keep = n - offset
            tail = prefix[:, offset:]
            h = torch.cat([h[:, :offset], h[:, offset:] + tail * h[:, :keep]], 1)
            prefix = torch.cat([prefix[:, :offset], tail * prefix[:, :keep]], 1)
            offset *= 2
        if carry is not None:
            h = h + prefix * carry.unsqueeze(1)
        carry = h[:, n - 1]
        outputs.append(h)
    return torch.cat(outputs, 1)


def log_space_scan(log_coeff, log_value):
    """h_t = exp(log_coeff_t) h_{t−1} + exp(log_value_t) in log space (Heinsen 2023), in chunks
    of CHUNK so the cumulative sum stays near zero; the previous chunk's log h enters as one more
    log-sum-exp term."""
    length, carry, outputs = log_coeff.shape[1], None, []
    for start in range(0, length, CHUNK):
        n = min(CHUNK, length - start)
        a_star = log_coeff[:, start:start + n].cumsum(1)
        terms = log_value[:, start:start + n] - a_star
        skip = 0
        if carry is not None:
            terms, skip = torch.cat([carry.unsqueeze(1), terms], 1), 1
        log_h = a_star + terms.logcumsumexp(1)[:, skip:skip + n]
        carry = log_h[:, n - 1]
        outputs.append(log_h)
    return torch.cat(outputs, 1).exp()


class Attention(nn.Module):
    """Causal multi-head attention with rotary positions (rotate-half), as seqbench's."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        b, l, d = x.shape
        qkv = self.qkv(x).view(b, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = rope(qkv[0]), rope(qkv[1]), qkv[2]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, l, d))


class Recurrent(nn.Module):
    def __init__(self, cell, d):
        super().__init__()
        self.rnn = cell(d, d, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


class S4D(nn.Module):
    """S4D (src/models/s4d.rs): diagonal SSM, ZOH with a learnable step, S4D-Lin init, applied as
    one causal FFT convolution of length 2L. c_re/c_im keep seqbench's leading channel axis (1:
    unidirectional, the only form a causal task allows)."""

    def __init__(self, d, d_state=64, dt_min=0.001, dt_max=0.1):
        super().__init__()
        p = d_state // 2
        log_dt = torch.rand(d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.a_log_re = nn.Parameter(torch.full((d, p), math.log(0.5)))
        self.a_im = nn.Parameter((torch.arange(p, dtype=torch.float32) * math.pi).repeat(d, 1))
        self.c_re = nn.Parameter(torch.randn(1, d, p) * math.sqrt(0.5))
        self.c_im = nn.Parameter(torch.randn(1, d, p) * math.sqrt(0.5))
        self.d_skip = nn.Parameter(torch.randn(d))
        self.out = nn.Linear(d, 2 * d)

    def kernel(self, length):
        a = torch.complex(-self.a_log_re.exp(), self.a_im)
        dt_a = a * self.log_dt.exp().unsqueeze(1)
        b_bar = (dt_a.exp() - 1.0) / a
        j = torch.arange(length, dtype=torch.float32, device=a.device)
        powers = (dt_a.unsqueeze(-1) * j).exp()  # Āʲ: (H, P, L)
        cb = torch.complex(self.c_re, self.c_im) * b_bar  # (1, H, P)
        return (cb.unsqueeze(-1) * powers.unsqueeze(0)).sum(-2).real * 2.0  # (1, H, L)

    def forward(self, x):
        length = x.shape[1]
        u = x.transpose(1, 2)  # (b, H, L)
        n = 2 * length
        spectrum = torch.fft.rfft(u, n=n) * torch.fft.rfft(self.kernel(length)[0], n=n)
        y = torch.fft.irfft(spectrum, n=n)[..., :length] + u * self.d_skip.unsqueeze(-1)
        return F.glu(self.out(F.gelu(y.transpose(1, 2))), -1)


class LRU(nn.Module):
    """Linear Recurrent Unit (src/models/lru.rs): complex diagonal recurrence, exponential
    parameterisation, ring init, γ normalisation; the linear scan (a loop on CPU) as seqbench."""

    def __init__(self, d, d_state=0, r_min=0.9, r_max=0.999, max_phase=2 * math.pi):
        super().__init__()
        n = d_state or d
        u1, u2 = torch.rand(n), torch.rand(n)
        magnitude_sq = u1 * (r_max**2 - r_min**2) + r_min**2
        self.nu_log = nn.Parameter((magnitude_sq.log() * -0.5).log())
        self.theta_log = nn.Parameter((u2 * max_phase).log())
        self.gamma_log = nn.Parameter((1.0 - magnitude_sq).sqrt().log())
        self.b_re = nn.Parameter(torch.randn(n, d) / math.sqrt(2 * d))
        self.b_im = nn.Parameter(torch.randn(n, d) / math.sqrt(2 * d))
        self.c_re = nn.Parameter(torch.randn(d, n) / math.sqrt(n))
        self.c_im = nn.Parameter(torch.randn(d, n) / math.sqrt(n))
        self.d_skip = nn.Parameter(torch.randn(d))

    def forward(self, x):
        lam = torch.polar((-self.nu_log.exp()).exp(), self.theta_log.exp())
        inp = torch.complex(x @ self.b_re.t(), x @ self.b_im.t()) * self.gamma_log.exp()
        h = linear_scan(lam.expand_as(inp), inp)
        return h.real @ self.c_re.t() - h.imag @ self.c_im.t() + x * self.d_skip


def log_g(x):
    """log g(x), g(x) = x + ½ for x ≥ 0, σ(x) otherwise (positive, for the log-space scan)."""
    return torch.where(x >= 0, (x.relu() + 0.5).log(), -F.softplus(-x))


class MinRNN(nn.Module):
    """minGRU / minLSTM (src/models/minrnn.rs): input-only gates, so the recurrence is linear in
    h and runs as seqbench's chunked log-space scan."""

    def __init__(self, d, lstm, expand=1):
        super().__init__()
        self.lstm = lstm
        self.in_proj = nn.Linear(d, (3 if lstm else 2) * expand * d)
        self.out_proj = nn.Linear(expand * d, d, bias=False)

    def forward(self, x):
        parts = self.in_proj(x).chunk(3 if self.lstm else 2, -1)
        if self.lstm:  # f' = f/(f+i), i' = i/(f+i), in log space
            diff = F.softplus(-parts[0]) - F.softplus(-parts[1])
            log_coeff, log_value = -F.softplus(diff), -F.softplus(-diff) + log_g(parts[2])
        else:  # 1 − z and z, z = σ(k)
            log_coeff, log_value = -F.softplus(parts[0]), -F.softplus(-parts[0]) + log_g(parts[1])
        return self.out_proj(log_space_scan(log_coeff, log_value))


class Retention(nn.Module):
    """RetNet retention (src/models/retnet.rs), chunkwise: decay-masked parallel form inside a
    chunk, a (d × d) state per head across chunks; per-head norm written out as seqbench does."""

    def __init__(self, d, heads=4, chunk=64):
        super().__init__()
        self.heads, self.chunk = heads, chunk
        self.q, self.k, self.v, self.g, self.out = (nn.Linear(d, d, bias=False) for _ in range(5))
        self.norm_weight = nn.Parameter(torch.ones(d))
        self.norm_bias = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        b, length, dm = x.shape
        hd = dm // self.heads
        split = lambda t: t.view(b, length, self.heads, hd).transpose(1, 2)
        q, k, v = rope(split(self.q(x))), rope(split(self.k(x))) * hd**-0.5, split(self.v(x))
        h = torch.arange(self.heads, dtype=torch.float32, device=x.device)
        log_gamma = (1.0 - ((h + 5.0) * -math.log(2.0)).exp()).log().view(-1, 1, 1)
        state = torch.zeros(b, self.heads, hd, hd, dtype=q.dtype, device=q.device)
        outputs = []
        for start in range(0, length, self.chunk):
            n = min(self.chunk, length - start)
            qc, kc, vc = q[:, :, start:start + n], k[:, :, start:start + n], v[:, :, start:start + n]
            i = torch.arange(n, dtype=torch.float32, device=x.device)
            gap = i.unsqueeze(1) - i.unsqueeze(0)
            mask = (gap.clamp_min(0.0) * log_gamma).exp() * (gap >= 0).float()
            inner = ((qc @ kc.transpose(-1, -2)) * mask) @ vc
            from_state = (qc @ state) * ((i + 1.0).unsqueeze(-1) * log_gamma).exp()
            outputs.append(inner + from_state)
            k_decayed = kc * (((n - 1) - i).unsqueeze(-1) * log_gamma).exp()
            state = state * (log_gamma * n).exp() + k_decayed.transpose(-1, -2) @ vc
        o = torch.cat(outputs, 2)
        mean, var = o.mean(-1, keepdim=True), o.var(-1, unbiased=False, keepdim=True)
        normed = ((o - mean) / (var + 1e-5).sqrt()).transpose(1, 2).reshape(b, length, dm)
        return self.out(F.silu(self.g(x)) * (normed * self.norm_weight + self.norm_bias))


class Mamba(nn.Module):
    """Mamba block (src/models/mamba.rs): causal depthwise conv, input-dependent Δ, B, C, the
    selective scan materialised as (b, L, E, N) and run by seqbench's linear scan (a loop on
    CPU), not a fused kernel — seqbench has none either."""

    def __init__(self, d, d_state=16, expand=2, d_conv=4, dt_rank=0, dt_min=0.001, dt_max=0.1):
        super().__init__()
        e, r = expand * d, dt_rank or (d + 15) // 16
        self.sizes, self.d_conv = (r, d_state, d_state), d_conv
        self.in_proj = nn.Linear(d, 2 * e, bias=False)
        bound = 1.0 / math.sqrt(d_conv)
        self.conv_weight = nn.Parameter(torch.empty(e, 1, d_conv).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(e).uniform_(-bound, bound))
        self.x_proj = nn.Linear(e, r + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(r, e)
        dt = (torch.rand(e) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).exp().clamp_min(1e-4)
        with torch.no_grad():  # Δ starts log-uniform: bias = softplus⁻¹(Δ)
            self.dt_proj.bias.copy_(dt + (-torch.expm1(-dt)).log())
        a_log = torch.arange(1, d_state + 1, dtype=torch.float32).log().repeat(e, 1)
        self.a_log = nn.Parameter(a_log)
        self.d_skip = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, d, bias=False)

    def forward(self, u):
        length = u.shape[1]
        x, z = self.in_proj(u).chunk(2, -1)
        x = F.conv1d(x.transpose(1, 2), self.conv_weight, self.conv_bias, padding=self.d_conv - 1,
                     groups=x.shape[-1])
        x = F.silu(x[..., :length].transpose(1, 2))
        delta, b, c = self.x_proj(x).split(self.sizes, -1)
        delta = F.softplus(self.dt_proj(delta)).unsqueeze(-1)
        decay = (delta * -self.a_log.exp()).exp()
        h = linear_scan(decay, delta * b.unsqueeze(-2) * x.unsqueeze(-1))  # (b, L, E, N)
        y = (h * c.unsqueeze(-2)).sum(-1) + x * self.d_skip
        return self.out_proj(y * F.silu(z))


class Hawk(nn.Module):
    """Hawk's recurrent block (src/models/hawk.rs, from recurrentgemma): GeLU branch times conv ->
    RG-LRU (block-diagonal gates, c = 8, sqrt(1 - a^2) input scaling), the scan in float32."""

    def __init__(self, d, heads, conv_width=4):
        super().__init__()
        self.heads, self.bw, self.k = heads, d // heads, conv_width
        self.linear_y, self.linear_x, self.linear_out = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.conv = nn.Conv1d(d, d, conv_width, groups=d, padding=conv_width - 1)
        self.gate_w = nn.Parameter(torch.randn(2, heads, self.bw, self.bw) / self.bw ** 0.5)
        self.gate_b = nn.Parameter(torch.zeros(2, heads, self.bw))
        self.a_param = nn.Parameter(torch.rand(d))

    def forward(self, u):
        b, L, d = u.shape
        y = F.gelu(self.linear_y(u), approximate="tanh")
        x = self.conv(self.linear_x(u).transpose(1, 2))[..., :L].transpose(1, 2)
        xh = x.view(b, L, self.heads, self.bw)
        gates = torch.sigmoid(torch.einsum("blhi,ghij->glbhj", xh, self.gate_w) + self.gate_b[:, None, None])
        gate_x, gate_a = (g.reshape(L, b, d).transpose(0, 1) for g in gates)
        log_a = -8.0 * gate_a * F.softplus(self.a_param)
        multiplier = torch.sqrt(1 - torch.exp(2 * log_a))
        multiplier = torch.cat([torch.ones_like(multiplier[:, :1]), multiplier[:, 1:]], 1)  # 1 at t = 0
        h = linear_scan(torch.exp(log_a), x * gate_x * multiplier)
        return self.linear_out(h * y)


class SLSTM(nn.Module):
    """The sLSTM of xLSTM (src/models/slstm.rs): conv + SiLU on the i/f gates, block-diagonal gate
    maps and recurrence per head, exponential gating with the max-stabiliser, per-head group norm.
    A loop over time."""

    def __init__(self, d, heads, k=4):
        super().__init__()
        self.nh, self.dh = heads, d // heads
        self.conv = nn.Conv1d(d, d, k, groups=d, padding=k - 1)
        self.w = nn.Parameter(torch.randn(4, heads, self.dh, self.dh) * (2 / (5 * d)) ** 0.5)
        self.r = nn.Parameter(torch.zeros(heads, self.dh, 4, self.dh))
        self.bias = nn.Parameter(torch.zeros(heads, 4, self.dh))
        self.norm_w = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        b, L, d = x.shape
        xc = F.silu(self.conv(x.transpose(1, 2))[..., :L].transpose(1, 2))
        ins = [xc, xc, x, x]
        wx = torch.stack([torch.einsum("blhd,hod->blho", t.view(b, L, self.nh, self.dh), self.w[g])
                          for g, t in enumerate(ins)], 2) + self.bias.transpose(0, 1)
        h = c = n = m = None
        hs = []
        for t in wx.unbind(1):
            if h is None:
                i_raw, _, z_raw, o_raw = t.unbind(1)
                z = torch.tanh(z_raw)
                c, n, m = z, torch.ones_like(z), i_raw
                h = torch.sigmoid(o_raw) * z
            else:
                raw = t + torch.einsum("bhd,hdgo->bgho", h, self.r)
                i_raw, f_raw, z_raw, o_raw = raw.unbind(1)
                lfm = m + F.logsigmoid(f_raw)
                m_new = torch.maximum(i_raw, lfm)
                i, f = torch.exp(i_raw - m_new).clamp(max=1), torch.exp(lfm - m_new).clamp(max=1)
                c = f * c + i * torch.tanh(z_raw)
                n = f * n + i
                h, m = torch.sigmoid(o_raw) * c / n, m_new
            hs.append(h)
        hs = torch.stack(hs, 1)
        normed = F.group_norm(hs.reshape(b * L, d), self.nh, eps=1e-5).view(b, L, d)
        return normed * (1 + self.norm_w)


class Block(nn.Module):
    """mlp_ratio 0 removes the MLP sub-block, as in seqbench (Mamba's paper default). `griffin`:
    Griffin's residual block (RMSNorm eps 1e-6, gated GeLU MLP), as seqbench builds Hawk."""

    def __init__(self, mixer, d, mlp_ratio, griffin=False):
        super().__init__()
        norm = (lambda: nn.RMSNorm(d, eps=1e-6)) if griffin else (lambda: nn.LayerNorm(d))
        self.norm1, self.mixer, self.norm2 = norm(), mixer, norm()
        self.mlp, self.griffin = mlp_ratio > 0, griffin
        if self.mlp:
            self.fc1 = nn.Linear(d, (2 if griffin else 1) * mlp_ratio * d)
            self.fc2 = nn.Linear(mlp_ratio * d, d)

    def forward(self, h):
        h = h + self.mixer(self.norm1(h))
        if not self.mlp:
            return h
        up = self.fc1(self.norm2(h))
        if self.griffin:
            a, g = up.chunk(2, -1)
            return h + self.fc2(F.gelu(a, approximate="tanh") * g)
        return h + self.fc2(F.gelu(up))


MIXERS = {
    "lstm": lambda d, heads: Recurrent(nn.LSTM, d),
    "gru": lambda d, heads: Recurrent(nn.GRU, d),
    "transformer": lambda d, heads: Attention(d, heads),
    "s4d": lambda d, heads: S4D(d),
    "lru": lambda d, heads: LRU(d),
    "mingru": lambda d, heads: MinRNN(d, lstm=False),
    "minlstm": lambda d, heads: MinRNN(d, lstm=True),
    "retnet": lambda d, heads: Retention(d, heads),
    "mamba": lambda d, heads: Mamba(d),
    "hawk": lambda d, heads: Hawk(d, heads),
    "slstm": lambda d, heads: SLSTM(d, heads),
}


class Model(nn.Module):
    def __init__(self, arch, vocab, d, layers, mlp_ratio, heads):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        griffin = arch == "hawk"
        self.blocks = nn.ModuleList(Block(MIXERS[arch](d, heads), d, mlp_ratio, griffin) for _ in range(layers))
        self.norm_f = nn.RMSNorm(d, eps=1e-6) if griffin else nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, x):
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm_f(h))


def median_rate(fn, tokens, warmup, timed):
    rates = []
    for i in range(warmup + timed):
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        if i >= warmup:
            rates.append(tokens / seconds)
    return statistics.median(rates)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", nargs="+", choices=list(MIXERS), default=list(MIXERS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--mlp-ratio", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=30, help="training steps, warm-up included")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--infer-steps", type=int, default=20, help="timed forward passes after warm-up")
    p.add_argument("--flush-denormal", choices=["true", "false"], default="true",
                   help="flush denormal floats to zero (torch.set_flush_denormal), as seqbench's jobs do "
                        "by default; set before any tensor op so that the intra-op threads, started "
                        "later, inherit it")
    a = p.parse_args()
    if not torch.set_flush_denormal(a.flush_denormal == "true") and a.flush_denormal == "true":
        raise SystemExit("this CPU cannot flush denormals (no SSE3)")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tokens = a.batch * a.length
    for arch in a.arch:
        model = Model(arch, a.vocab, a.d_model, a.layers, a.mlp_ratio, a.heads)
        n_params = sum(t.numel() for t in model.parameters() if t.requires_grad)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
        x = torch.randint(0, a.vocab, (a.batch, a.length))
        y = torch.full((a.batch, a.length), -100)
        y[:, -1] = torch.randint(0, a.vocab, (a.batch,))

        def train_step():
            loss = F.cross_entropy(model(x).view(-1, a.vocab), y.view(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()

        def infer_step():
            with torch.no_grad():
                model(x).sum().item()

        train = median_rate(train_step, tokens, a.warmup, a.steps - a.warmup)
        infer = median_rate(infer_step, tokens, a.warmup, a.infer_steps)
        record = {"arch": arch, "n_params": n_params, "flush_denormal": a.flush_denormal == "true", "train_tokens_per_s": train, "infer_tokens_per_s": infer}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()

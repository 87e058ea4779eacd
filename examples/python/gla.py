"""Gated linear attention (Yang et al. 2024, "Gated Linear Attention Transformers with
Hardware-Efficient Training") in plain PyTorch, in the shape of flash-linear-attention's
`GatedLinearAttention` layer: q, k, v and output-gate projections, a low-rank data-dependent
decay per key dimension (logsigmoid / 16), per-head RMSNorm, swish output gate. Trains through a
chunkwise form written with ordinary tensor ops; `step` is the recurrent form.

This is an example of a user's layer, not a reference: seqbench's native `gla` is the one
checked against the official code.
"""
import torch
import torch.nn.functional as F
from torch import nn


class GatedLinearAttention(nn.Module):
    def __init__(self, d_model, n_heads=4, expand_k=0.5, expand_v=1.0, gate_low_rank=16, chunk=16):
        super().__init__()
        self.n_heads, self.chunk = n_heads, chunk
        self.key_dim, self.value_dim = int(d_model * expand_k), int(d_model * expand_v)
        self.dk, self.dv = self.key_dim // n_heads, self.value_dim // n_heads
        self.q_proj = nn.Linear(d_model, self.key_dim, bias=False)
        self.k_proj = nn.Linear(d_model, self.key_dim, bias=False)
        self.v_proj = nn.Linear(d_model, self.value_dim, bias=False)
        self.g_proj = nn.Linear(d_model, self.value_dim, bias=False)
        self.gk_proj = nn.Sequential(
            nn.Linear(d_model, gate_low_rank, bias=False), nn.Linear(gate_low_rank, self.key_dim, bias=True)
        )
        self.g_norm = nn.RMSNorm(self.dv, eps=1e-5)
        self.o_proj = nn.Linear(self.value_dim, d_model, bias=False)

    def _heads(self, t, width):
        return t.unflatten(-1, (self.n_heads, width)).transpose(-3, -2)  # (B, H, L, width)

    def _inputs(self, x):
        q = self._heads(self.q_proj(x), self.dk) * self.dk**-0.5
        k = self._heads(self.k_proj(x), self.dk)
        v = self._heads(self.v_proj(x), self.dv)
        log_a = self._heads(F.logsigmoid(self.gk_proj(x)) / 16, self.dk)
        return q, k, v, log_a

    def _output(self, o, x):
        o = self.g_norm(o.transpose(-3, -2))  # (B, L, H, dv)
        return self.o_proj(o.flatten(-2) * F.silu(self.g_proj(x)))

    def forward(self, x):
        q, k, v, log_a = self._inputs(x)
        batch, heads, length, _ = q.shape
        c = self.chunk
        pad = (-length) % c
        if pad:
            q, k, v, log_a = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, log_a))
        n = (length + pad) // c
        q, k, v, log_a = (t.unflatten(2, (n, c)) for t in (q, k, v, log_a))  # (B, H, n, C, .)
        cum = log_a.cumsum(dim=3)  # decay from the chunk's start, inclusive
        # Within a chunk: o_i = sum_{j<=i} (q_i * exp(cum_i - cum_j)) . k_j v_j
        causal = torch.ones(c, c, dtype=torch.bool, device=x.device).tril()
        relative = (cum.unsqueeze(4) - cum.unsqueeze(3)).masked_fill(~causal[..., None], float("-inf"))
        scores = (q.unsqueeze(4) * k.unsqueeze(3) * relative.exp()).sum(-1)
        intra = scores @ v
        # Across chunks, through the state S (B, H, dk, dv).
        state = q.new_zeros(batch, heads, self.dk, self.dv)
        inter = []
        for i in range(n):
            inter.append((q[:, :, i] * cum[:, :, i].exp()) @ state)
            last = cum[:, :, i, -1:]
            state = last.transpose(-1, -2).exp() * state + (k[:, :, i] * (last - cum[:, :, i]).exp()).transpose(-1, -2) @ v[:, :, i]
        o = (intra + torch.stack(inter, dim=2)).flatten(2, 3)[:, :, :length]
        return self._output(o, x)

    def step(self, x, state):
        """x (batch, d_model), state S (batch, H, dk, dv) or None -> (y, S)."""
        q, k, v, log_a = (t.squeeze(2) for t in self._inputs(x.unsqueeze(1)))  # (B, H, .)
        kv = k.unsqueeze(-1) * v.unsqueeze(-2)
        state = kv if state is None else log_a.exp().unsqueeze(-1) * state + kv
        o = (q.unsqueeze(-2) @ state).squeeze(-2)  # (B, H, dv)
        return self._output(o.unsqueeze(2), x.unsqueeze(1)).squeeze(1), state

    def flops_per_token(self, seq_len):
        d = self.o_proj.out_features
        projections = 2 * d * (2 * self.key_dim + 3 * self.value_dim) + 2 * 16 * (d + self.key_dim)
        recurrence = 4 * self.n_heads * self.dk * self.dv + 2 * self.n_heads * self.chunk * (self.dk + self.dv)
        return float(projections + recurrence)

"""PyTorch eager versions of seqbench's backbone (embedding → N × [LayerNorm → mixer → residual →
LayerNorm → GELU MLP → residual] → LayerNorm → head) for the architectures with a torch.nn or
straightforward PyTorch form, timed the way seqbench times a job: AdamW training steps
(forward + backward + step) and forward-only passes, median tokens/s after warm-up.

    python bench_models.py --arch lstm gru transformer --batch 16 --length 256 --d-model 128

Prints one JSON object per architecture. Used by scripts/bench_vs_pytorch.sh.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Causal multi-head attention with rotary positions (rotate-half), as seqbench's."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def rope(self, x):
        b, h, l, hd = x.shape
        half = hd // 2
        freq = 10000.0 ** (-torch.arange(half, dtype=torch.float32) / half)
        angle = torch.arange(l, dtype=torch.float32)[:, None] * freq[None, :]
        cos, sin = angle.cos(), angle.sin()
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    def forward(self, x):
        b, l, d = x.shape
        qkv = self.qkv(x).view(b, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = self.rope(qkv[0]), self.rope(qkv[1]), qkv[2]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, l, d))


class Recurrent(nn.Module):
    def __init__(self, cell, d):
        super().__init__()
        self.rnn = cell(d, d, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


class Block(nn.Module):
    def __init__(self, mixer, d, mlp_ratio):
        super().__init__()
        self.norm1, self.mixer, self.norm2 = nn.LayerNorm(d), mixer, nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, mlp_ratio * d), nn.Linear(mlp_ratio * d, d)

    def forward(self, h):
        h = h + self.mixer(self.norm1(h))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class Model(nn.Module):
    def __init__(self, arch, vocab, d, layers, mlp_ratio, heads):
        super().__init__()
        make = {
            "lstm": lambda: Recurrent(nn.LSTM, d),
            "gru": lambda: Recurrent(nn.GRU, d),
            "transformer": lambda: Attention(d, heads),
        }[arch]
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(make(), d, mlp_ratio) for _ in range(layers))
        self.norm_f, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

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
    p.add_argument("--arch", nargs="+", default=["lstm", "gru", "transformer"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--mlp-ratio", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tokens = a.batch * a.length
    for arch in a.arch:
        model = Model(arch, a.vocab, a.d_model, a.layers, a.mlp_ratio, a.heads)
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
        infer = median_rate(infer_step, tokens, a.warmup, 20)
        print(json.dumps({"arch": arch, "train_tokens_per_s": train, "infer_tokens_per_s": infer}), flush=True)


if __name__ == "__main__":
    main()

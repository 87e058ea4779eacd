"""minGRU with its scan compiled by `torch.compile` (inductor; C++ on the CPU, Triton on a GPU):
anything PyTorch runs works inside a seqbench layer. The first forward of each process compiles
(about 30 s on a 2-core CPU: once while the suite is checked, once in each job).
"""
import torch
from torch import nn
import torch.nn.functional as F


class CompiledMinGRU(nn.Module):
    """minGRU whose scan is compiled by torch.compile (inductor, C++ on the CPU)."""

    def __init__(self, d_model):
        super().__init__()
        self.in_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.core = torch.compile(self._core)

    @staticmethod
    def _core(k, h_tilde):
        log_coeffs = -F.softplus(k)
        log_values = -F.softplus(-k) + torch.where(h_tilde >= 0, (F.relu(h_tilde) + 0.5).log(), -F.softplus(-h_tilde))
        a_star = log_coeffs.cumsum(dim=1)
        return (a_star + torch.logcumsumexp(log_values - a_star, dim=1)).exp()

    def forward(self, x):
        k, h = self.in_proj(x).chunk(2, dim=-1)
        return self.out_proj(self.core(k, h))

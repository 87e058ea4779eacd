"""minGRU ("Were RNNs All We Needed?", Feng et al. 2024) in plain PyTorch, as a seqbench mixer.

A mixer maps (batch, L, d_model) to (batch, L, d_model). seqbench passes `d_model` and the
suite's `kwargs` to the constructor; `step` (generation) and `flops_per_token` are optional.
Parameter names match seqbench's native `mingru`, so the two can load each other's weights.
"""
import torch
import torch.nn.functional as F
from torch import nn


def log_g(x):
    """log g(x) with g(x) = x + 1/2 for x >= 0, sigmoid(x) below: a positive candidate state."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def parallel_scan_log(log_coeffs, log_values):
    """h_t = a_t h_{t-1} + b_t from h_0 = 0, in log space (Heinsen's scan): (batch, L, E)."""
    a_star = log_coeffs.cumsum(dim=1)
    return (a_star + torch.logcumsumexp(log_values - a_star, dim=1)).exp()


class MinGRU(nn.Module):
    def __init__(self, d_model, expand=1):
        super().__init__()
        self.hidden = expand * d_model
        self.in_proj = nn.Linear(d_model, 2 * self.hidden)  # gate z and candidate h~
        self.out_proj = nn.Linear(self.hidden, d_model, bias=False)

    def _log_terms(self, x):
        k, h_tilde = self.in_proj(x).chunk(2, dim=-1)
        # log(1 - z) and log z + log g(h~), with z = sigmoid(k)
        return -F.softplus(k), -F.softplus(-k) + log_g(h_tilde)

    def forward(self, x):
        log_coeffs, log_values = self._log_terms(x)
        return self.out_proj(parallel_scan_log(log_coeffs, log_values))

    def step(self, x, state):
        """x (batch, d_model), state h (batch, hidden) or None -> (y, h)."""
        log_coeff, log_value = self._log_terms(x)
        h = log_value.exp() if state is None else log_coeff.exp() * state + log_value.exp()
        return self.out_proj(h), h

    def flops_per_token(self, seq_len):
        d, e = self.out_proj.out_features, self.hidden
        return 2.0 * d * 2 * e + 2.0 * e * d

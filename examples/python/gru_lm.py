"""A whole model written in PyTorch (`arch: python_model`): tokens (batch, L) -> logits
(batch, L, num_classes). seqbench passes vocab_size, num_classes and seq_len to the constructor,
with the suite's kwargs; `step` (generation) and `flops_per_token` are optional, as for layers.
"""
from torch import nn


class GruLM(nn.Module):
    def __init__(self, vocab_size, num_classes, seq_len, d_model=64, n_layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.rnn = nn.GRU(d_model, d_model, n_layers, batch_first=True)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens):
        hidden, _ = self.rnn(self.embed(tokens))
        return self.head(hidden)

    def step(self, tokens, state):
        """tokens (batch,), state (n_layers, batch, d_model) or None -> (logits, state)."""
        hidden, state = self.rnn(self.embed(tokens).unsqueeze(1), state)
        return self.head(hidden.squeeze(1)), state

    def flops_per_token(self, seq_len):
        d, layers = self.rnn.hidden_size, self.rnn.num_layers
        return float(layers * 2 * 3 * (2 * d * d) + 2 * d * self.head.out_features)

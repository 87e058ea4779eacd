"""DLinear on ETTh1 under Time-Series-Library's protocol, in plain PyTorch, as an independent
check of seqbench's forecasting protocol (splits, scaler, windows, training, metrics).

    ~/.cache/seqbench/venv/bin/python scripts/reference/tslib_dlinear.py [LR] [PRED_LEN] [SEED]

It follows TSLib's data_provider (Dataset_ETT_hour borders, StandardScaler fit on the training
rows, every window, drop_last off), models/DLinear.py (moving average 25, shared Linear(L, H)
maps with weights 1/L) and exp_long_term_forecasting.py (Adam, MSE, lr type1 = halved every
epoch, early stopping with patience 3 on validation MSE, best checkpoint tested). Prints test
MSE and MAE on scaled values.
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("SEQBENCH_DATA", os.path.join(HERE, "..", "..", "..", "shared", "datasets"))


def load(seq_len):
    raw = np.genfromtxt(os.path.join(DATA, "ett", "ETTh1.csv"), delimiter=",", skip_header=1)[:, 1:]
    month = 30 * 24
    b1 = [0, 12 * month - seq_len, 16 * month - seq_len]
    b2 = [12 * month, 16 * month, 20 * month]
    train = raw[b1[0]:b2[0]]
    mean, std = train.mean(0), train.std(0)
    data = ((raw - mean) / std).astype(np.float32)
    return [data[a:b] for a, b in zip(b1, b2)]


class Windows(torch.utils.data.Dataset):
    def __init__(self, data, seq_len, pred_len):
        self.data, self.l, self.h = torch.from_numpy(data), seq_len, pred_len

    def __len__(self):
        return len(self.data) - self.l - self.h + 1

    def __getitem__(self, i):
        return self.data[i:i + self.l], self.data[i + self.l:i + self.l + self.h]


class DLinear(nn.Module):
    def __init__(self, seq_len, pred_len, kernel=25):
        super().__init__()
        self.kernel = kernel
        self.seasonal, self.trend = nn.Linear(seq_len, pred_len), nn.Linear(seq_len, pred_len)
        for lin in (self.seasonal, self.trend):
            lin.weight = nn.Parameter(torch.ones(pred_len, seq_len) / seq_len)

    def forward(self, x):  # (b, L, C)
        pad = (self.kernel - 1) // 2
        padded = torch.cat([x[:, :1].repeat(1, pad, 1), x, x[:, -1:].repeat(1, pad, 1)], 1)
        trend = nn.functional.avg_pool1d(padded.permute(0, 2, 1), self.kernel, 1).permute(0, 2, 1)
        seasonal = x - trend
        out = self.seasonal(seasonal.permute(0, 2, 1)) + self.trend(trend.permute(0, 2, 1))
        return out.permute(0, 2, 1)


def validation_loss(model, loader):
    """TSLib's vali(): the mean of per-batch MSEs."""
    model.eval()
    with torch.no_grad():
        losses = [((model(x) - y) ** 2).mean().item() for x, y in loader]
    model.train()
    return sum(losses) / len(losses)


def evaluate(model, loader):
    model.eval()
    se = ae = n = 0.0
    with torch.no_grad():
        for x, y in loader:
            d = model(x) - y
            se, ae, n = se + (d ** 2).sum().item(), ae + d.abs().sum().item(), n + d.numel()
    model.train()
    return se / n, ae / n


def main():
    lr = float(sys.argv[1]) if len(sys.argv) > 1 else 1e-4
    pred_len = int(sys.argv[2]) if len(sys.argv) > 2 else 96
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    torch.manual_seed(seed)
    seq_len = 96
    train, val, test = load(seq_len)
    mk = lambda d, shuffle: torch.utils.data.DataLoader(Windows(d, seq_len, pred_len), 32, shuffle=shuffle)
    train_l, val_l, test_l = mk(train, True), mk(val, False), mk(test, False)
    model = DLinear(seq_len, pred_len)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, stale = float("inf"), None, 0
    for epoch in range(10):
        for x, y in train_l:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        val_mse = validation_loss(model, val_l)
        if val_mse < best:
            best, best_state, stale = val_mse, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= 3:
                break
        # TSLib: adjust_learning_rate(opt, epoch + 1) sets lr * 0.5 ** ((epoch + 1) - 1).
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 ** epoch
    model.load_state_dict(best_state)
    mse, mae = evaluate(model, test_l)
    print(f"lr {lr} pred_len {pred_len} seed {seed}: test windows {len(test_l.dataset)} mse {mse:.4f} mae {mae:.4f}")


if __name__ == "__main__":
    main()

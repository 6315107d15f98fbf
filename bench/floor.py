# Verbatim copy of the project's shared reference loop /work/shared/bench/floor.py (this project's
# own file, copied unchanged below this header): the plain eager loop the app is held against.
# ruff: noqa  (kept byte-for-byte as the reference is written, not to this project's style)
"""The floor: a bare PyTorch loop (no Lightning) doing the work of the KnowIt tutorial run.

usage: python floor.py RESULTS_JSONL [--gather pre|batch] [--batch B] [--epochs E] [--n-train N] [--n-valid M]
                       [--anomaly]

Same sample count and shapes as KnowIt's synth_2 run ([33, 4] window -> 1 value), same MLP
(132 -> 256 -> 256 -> 256 -> 1, BatchNorm1d, ReLU, Dropout 0.2, bias-free output layer), Adam
lr 1e-3, MSE, shuffled training without the last partial batch, a validation pass every epoch.
Data are synthetic. --gather pre: all windows gathered once into one contiguous tensor;
--gather batch: each batch's windows gathered from the series by index arithmetic.
--anomaly turns on autograd anomaly detection, as KnowIt's Trainer(detect_anomaly=True) does.
One JSON line per run is appended to RESULTS_JSONL.
"""
import time

T0 = time.perf_counter()
import argparse
import json
import resource

import torch
from torch import nn

WINDOW, COMPONENTS = 33, 4
OFFSETS = torch.arange(-(WINDOW - 1), 1)


def mlp(width: int = 256, depth: int = 3, dropout: float = 0.2) -> nn.Module:
    layers, d = [nn.Flatten()], WINDOW * COMPONENTS
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 1, bias=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('results')
    ap.add_argument('--gather', choices=('pre', 'batch'), default='pre')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=5)
    ap.add_argument('--n-train', type=int, default=72083)  # split sizes of the KnowIt run
    ap.add_argument('--n-valid', type=int, default=24344)
    ap.add_argument('--anomaly', action='store_true')
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.autograd.set_detect_anomaly(a.anomaly)

    t_setup = time.perf_counter()
    n = a.n_train + a.n_valid
    series = torch.randn(n + WINDOW - 1, COMPONENTS)  # one synthetic series; window i ends at step i + 32
    target = torch.randn(n + WINDOW - 1, 1)
    ends = torch.randperm(n) + WINDOW - 1
    split = {'train': ends[:a.n_train], 'valid': ends[a.n_train:]}
    if a.gather == 'pre':
        pre = {k: (series[e[:, None] + OFFSETS].contiguous(), target[e]) for k, e in split.items()}

        def fetch(part, idx):
            x, y = pre[part]
            return x[idx], y[idx]
    else:
        def fetch(part, idx):
            e = split[part][idx]
            return series[e[:, None] + OFFSETS], target[e]
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    setup_s = time.perf_counter() - t_setup
    epochs = []
    for _ in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(a.n_train)
        train_loss = torch.zeros(())
        for i in range(a.n_train // a.batch):
            x, y = fetch('train', perm[i * a.batch:(i + 1) * a.batch])
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            train_loss += loss.detach()
        t1 = time.perf_counter()
        model.eval()
        valid_loss = 0.0
        with torch.inference_mode():
            for i in range(0, a.n_valid, a.batch):
                x, y = fetch('valid', torch.arange(i, min(i + a.batch, a.n_valid)))
                valid_loss += loss_fn(model(x), y).item() * len(y)
        t2 = time.perf_counter()
        epochs.append({'train_s': t1 - t0, 'valid_s': t2 - t1, 'epoch_s': t2 - t0,
                       'train_loss': train_loss.item() / (a.n_train // a.batch),
                       'valid_loss': valid_loss / a.n_valid})

    rec = {'gather': a.gather, 'batch': a.batch, 'anomaly': a.anomaly, 'n_train': a.n_train, 'n_valid': a.n_valid,
           'torch_threads': torch.get_num_threads(), 'import_s': t_setup - T0, 'setup_s': setup_s,
           'loop_s': sum(e['epoch_s'] for e in epochs), 'epochs': epochs,
           'maxrss_self_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           'process_s': time.perf_counter() - T0}
    with open(a.results, 'a') as f:
        f.write(json.dumps(rec) + '\n')
    print(json.dumps({k: v for k, v in rec.items() if k != 'epochs'}))


if __name__ == '__main__':
    main()

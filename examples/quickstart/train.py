"""Quick start: a small classifier trained with NumPy, reporting to the haneul server.

    .venv/bin/haneul run -f -- python examples/quickstart/train.py --epochs 20 --lr 0.5

Inside a session ``haneul.report`` streams each point to the server (live charts on the session's
page) and ``haneul.save`` stores a checkpoint; run outside a session, the same script logs to
``HANEUL_HOME/local``. Logistic regression on two noisy Gaussian blobs: it finishes in a second.
"""

from __future__ import annotations

import argparse

import numpy as np

import haneul


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate")
    parser.add_argument("--batch", type=int, default=64, help="examples per step")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x = np.concatenate([rng.normal(-1.0, 1.0, (1000, 2)), rng.normal(1.0, 1.0, (1000, 2))])
    y = np.concatenate([np.zeros(1000), np.ones(1000)])
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    train_x, train_y, val_x, val_y = x[:1600], y[:1600], x[1600:], y[1600:]

    w, b, step = np.zeros(2), 0.0, 0
    for epoch in range(args.epochs):
        for start in range(0, len(train_y), args.batch):
            xb, yb = train_x[start:start + args.batch], train_y[start:start + args.batch]
            p = 1.0 / (1.0 + np.exp(-(xb @ w + b)))
            loss = float(-np.mean(yb * np.log(p + 1e-12) + (1 - yb) * np.log(1 - p + 1e-12)))
            w -= args.lr * xb.T @ (p - yb) / len(yb)
            b -= args.lr * float(np.mean(p - yb))
            haneul.report(step=step, loss=loss)
            step += 1
        val_acc = float(np.mean(((val_x @ w + b) > 0) == val_y))
        haneul.report(step=step, epoch=epoch, val_acc=val_acc)
    haneul.save("final", {"w": w.tolist(), "b": b, "val_acc": val_acc})
    print(f"done: {step} steps, validation accuracy {val_acc:.3f}", flush=True)


if __name__ == "__main__":
    main()

"""What a run writes besides checkpoints: TensorBoard scalars, eval.csv, a status line, the curve."""

from __future__ import annotations

import csv
import math
import os
import pathlib
import sys
import time
from typing import Mapping

EVAL_COLUMNS = ("step", "success_rate", "mean_return")


class RunLog:
    """TensorBoard scalars (namespaced: train/*, eval/*, env/*) and the eval history as CSV."""

    def __init__(self, run_dir: pathlib.Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.writer = SummaryWriter(log_dir=str(run_dir))
        self.eval_csv = run_dir / "eval.csv"
        if not self.eval_csv.exists():
            with open(self.eval_csv, "w", newline="") as f:
                csv.writer(f).writerow(EVAL_COLUMNS)

    def scalars(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def evaluation(self, step: int, success_rate: float, mean_return: float) -> None:
        self.scalars({"eval/success_rate": success_rate, "eval/mean_return": mean_return}, step)
        with open(self.eval_csv, "a", newline="") as f:
            csv.writer(f).writerow([step, f"{success_rate:.4f}", f"{mean_return:.4f}"])
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        self.writer.close()


def read_eval_csv(path: pathlib.Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", "nan") else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def plot_curve(eval_csv: pathlib.Path, png: pathlib.Path, title: str, xlabel: str = "env steps") -> pathlib.Path | None:
    """Learning curve (eval success rate and return against env steps) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_eval_csv(eval_csv)
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, [r["mean_return"] for r in rows], "o-", color="tab:blue", label="mean return")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("eval mean return", color="tab:blue")
    if not all(math.isnan(r["success_rate"]) for r in rows):
        twin = ax.twinx()
        twin.plot(steps, [r["success_rate"] for r in rows], "s-", color="tab:green", label="success rate")
        twin.set_ylim(-0.05, 1.05)
        twin.set_ylabel("eval success rate", color="tab:green")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png.with_name(png.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png)
    return png


class Progress:
    """A status line: rewritten in place on a terminal, printed every ``period_s`` otherwise."""

    def __init__(self, total: int, period_s: float = 10.0) -> None:
        self.total = total
        self.period_s = period_s if not sys.stdout.isatty() else 0.5
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = sys.stdout.isatty()

    def update(self, step: int, fields: Mapping[str, str], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.period_s:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / max(step, 1) * (self.total - step)
        text = f"step {step}/{self.total} | " + " | ".join(f"{k} {v}" for k, v in fields.items()) + f" | ETA {eta / 60:.1f} min"
        if self.tty:
            print("\r" + text.ljust(120), end="", flush=True)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.tty:
            print(flush=True)

"""What a run writes besides checkpoints: TensorBoard scalars, eval.csv and its curve, a status line."""

from __future__ import annotations

import collections
import csv
import math
import os
import pathlib
import sys
import time
from typing import Mapping

import numpy as np

EVAL_COLUMNS = ("step", "success_rate", "mean_return")


class RunLog:
    """TensorBoard scalars (namespaced: train/*, eval/*, env/*), the eval history as CSV and its
    curve (``curve.png``, redrawn at every evaluation, so a stopped run keeps an up-to-date one)."""

    def __init__(self, run_dir: pathlib.Path, title: str = "", xlabel: str = "env steps") -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir, self.title, self.xlabel = run_dir, title, xlabel
        self.curve_png = run_dir / "curve.png"
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
        plot_curve(self.eval_csv, self.curve_png, self.title, self.xlabel)

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


class RecentRate:
    """Events per second over the last ``window_s`` seconds (the status line's rates follow load
    changes instead of averaging since the start)."""

    def __init__(self, window_s: float = 30.0) -> None:
        self.window_s = window_s
        self._marks: collections.deque[tuple[float, int]] = collections.deque([(time.monotonic(), 0)])

    def __call__(self, count: int) -> float:
        """The rate, given the running total ``count``."""
        now = time.monotonic()
        self._marks.append((now, count))
        while len(self._marks) > 2 and now - self._marks[1][0] >= self.window_s:
            self._marks.popleft()
        start, first = self._marks[0]
        return (count - first) / (now - start) if now > start else 0.0


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


class EpisodeWindow:
    """Rolling episode statistics for the status line and env/* scalars."""

    def __init__(self, window: int = 20, hil: bool = False) -> None:
        self.window, self.hil = window, hil
        self.intervention_rates: list[float] = []
        self.returns: list[float] = []
        self.successes: list[float] = []
        self.episodes = 0
        self.last_eval: tuple[float, float] | None = None

    def add(self, episode) -> None:
        self.episodes += 1
        self.returns = (self.returns + [episode.ret])[-self.window :]
        self.successes = (self.successes + [episode.success])[-self.window :]
        self.intervention_rates = (self.intervention_rates + [episode.intervention_rate])[-self.window :]

    def metrics(self, episode) -> dict[str, float]:
        out = {"env/episode_return": episode.ret, "env/episode_length": float(episode.length)}
        if not np.isnan(episode.success):
            out["env/success_rate"] = float(np.nanmean(self.successes))
        if self.hil:
            out["actor/intervention_rate"] = episode.intervention_rate
        return out

    def fields(self, steps_per_s: float, updates_per_s: float) -> dict[str, str]:
        fields = {"episodes": str(self.episodes)}
        if self.successes and not np.isnan(self.successes).all():
            fields[f"success(last {len(self.successes)})"] = f"{np.nanmean(self.successes):.0%}"
        elif self.returns:
            fields["return"] = f"{np.mean(self.returns):.1f}"
        if self.hil and self.intervention_rates:
            fields["human"] = f"{np.mean(self.intervention_rates):.0%}"
        if self.last_eval is not None:
            fields["eval"] = f"{self.last_eval[0]:.0%}" if not np.isnan(self.last_eval[0]) else f"{self.last_eval[1]:.1f}"
        fields["steps/s"] = f"{steps_per_s:.0f}"
        fields["updates/s"] = f"{updates_per_s:.0f}"
        return fields

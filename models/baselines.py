"""Simple alternatives beside every model, scored on the same held-out rows, and the serving rule.

A model earns its place only when it beats what a person could compute by hand. Each model's training
reports, on its held-out data, its own score and those of its baselines (the best single feature, a
linear/logistic model, the rule a person would use), each with a bootstrap confidence interval.

``choose_served`` is the promotion rule's first half: among the methods that can be served (ordered from
simplest to most complex), a more complex one replaces a simpler one only when its held-out score is
higher by more than ``margin`` (``[models] baseline_margin``). The second half, beating the champion,
is ``models.common.validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Scored:
    """One method's held-out score: point estimate and a 90 % bootstrap interval."""
    method: str
    label: str                 # 中文 name shown in cards and MLflow
    score: float
    lo: float
    hi: float
    servable: bool = False     # can be registered and served (a rule that needs last year's grade cannot)

    def metrics(self, metric: str) -> dict[str, float]:
        return {f"{self.method}_{metric}": self.score, f"{self.method}_{metric}_ci_lo": self.lo,
                f"{self.method}_{metric}_ci_hi": self.hi}


def bootstrap_ci(score: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray, pred: np.ndarray,
                 n: int = 300, seed: int = 0, level: float = 0.90) -> tuple[float, float, float]:
    """(point, lo, hi): the score on all rows and the percentile interval over ``n`` resamples of rows.
    Resamples where the score is undefined (e.g. one class only) are left out."""
    y, pred = np.asarray(y), np.asarray(pred)
    point = float(score(y, pred))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        with np.errstate(all="ignore"):
            try:
                v = float(score(y[i], pred[i]))
            except ValueError:
                continue
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return point, float("nan"), float("nan")
    a = (1 - level) / 2
    return point, float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def scored(method: str, label: str, score, y, pred, servable: bool = False, seed: int = 0) -> Scored:
    point, lo, hi = bootstrap_ci(score, y, pred, seed=seed)
    return Scored(method, label, point, lo, hi, servable)


def choose_served(ordered: list[Scored], margin: float) -> tuple[Scored, str]:
    """The method to serve and why. ``ordered``: servable methods from simplest to most complex."""
    best = ordered[0]
    why = [f"{best.label} {best.score:.3f}"]
    for m in ordered[1:]:
        if m.score > best.score + margin:
            why.append(f"{m.label} {m.score:.3f} 高于 {best.label} 超过 {margin}，采用{m.label}")
            best = m
        else:
            why.append(f"{m.label} {m.score:.3f} 未高于 {best.label} {best.score:.3f} 超过 {margin}，保留{best.label}")
    return best, "；".join(why)


def table(rows: list[Scored], metric: str) -> list[dict]:
    """Rows for an MLflow table / the model card."""
    return [{"method": r.method, "label": r.label, metric: round(float(r.score), 4), "ci_lo": round(float(r.lo), 4),
             "ci_hi": round(float(r.hi), 4), "servable": bool(r.servable)} for r in rows]

"""Gradient descent, as the deck draws it: a ball rolling down a loss curve.

``descend(curve, start, learning_rate)`` repeats the deck's rule, w ← w − learning_rate × slope,
and records every step (w, slope, step, C) until the slope is flat (converged), the loss blows up
(diverged: the learning rate is too large), or the steps run out (still crawling: too small).
The curves are simple functions, or the real loss of the deck's network along one of its weights,
with the slope from glassnet's own backpropagation. ``paths_2d`` runs glassnet's real optimizers
(SGD, momentum, Adam) on a two-weight loss surface, to compare their paths.

>>> run = descend("quadratic", start=-1.0, learning_rate=0.1)
>>> run.verdict, round(run.steps[-1].w, 4)
('converged', 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from glassnet import optimizers
from glassnet.backend import check_positive, lookup
from glassnet.i18n import N_, _

__all__ = ["CURVES", "Curve", "Descent", "Step", "descend", "paths_2d", "ravine"]


@dataclass(frozen=True)
class Curve:
    """A loss C(w) of one weight, its slope C′(w), and where its minimum is (if known)."""

    name: str
    formula: str
    C: object
    slope: object
    minimum: float | None
    curvature: float | None = None  # C″ at the minimum: steps overshoot when lr > 2 / C″
    start: float = -1.0  # where a walk starts unless told
    learning_rate: float = 0.1  # a rate that shows the whole walk down this curve


def _network_curve() -> Curve:
    """The deck network's MSE loss along W[0, 0] of layer 1; the slope is backpropagation's."""
    from glassnet.glassbox.deck import DECK_INPUT, DECK_TARGET, deck_network

    model = deck_network()
    W = model.layers[0].params["W"]
    y = model.check_data(DECK_INPUT, DECK_TARGET)[1][0]

    def C(w):
        W[0, 0] = w
        return model.loss_value(y, model.forward(DECK_INPUT.astype(W.dtype)))

    def slope(w):
        W[0, 0] = w
        model.backpropagate(y, model.forward(DECK_INPUT.astype(W.dtype)))
        return float(model.layers[0].grads["W"][0, 0])

    # From the deck's own W[0, 0] = 1. The curve is flat (slopes of 1e-2 … 1e-4: sigmoids
    # saturate), so a rate of 30 walks it from C = 0.205 down to its plateau at 0.034 in 100
    # steps; at 0.1 the walk would barely leave its start.
    return Curve(
        "network",
        N_("C(w) = MSE of the deck's network, w = W[0, 0] of layer 1"),
        C,
        slope,
        None,
        start=1.0,
        learning_rate=30.0,
    )


CURVES = {
    "quadratic": Curve(
        "quadratic",
        "C(w) = (w − 3)² + 1",
        lambda w: (w - 3) ** 2 + 1,
        lambda w: 2 * (w - 3),
        3.0,
        curvature=2.0,
    ),
    "bumpy": Curve(
        "bumpy",
        N_("C(w) = w⁴/4 − 2w² + w/2 + 5 (two valleys)"),
        lambda w: w**4 / 4 - 2 * w**2 + w / 2 + 5,
        lambda w: w**3 - 4 * w + 0.5,
        None,
    ),
}


def get_curve(name: str) -> Curve:
    if name == "network":
        return _network_curve()
    return lookup("curve", name, {**CURVES, "network": None})


VERDICTS = {  # how a walk ended, in words (translated where shown)
    "converged": N_("converged"),
    "diverged": N_("diverged"),
    "crawling": N_("crawling"),
}


@dataclass(frozen=True)
class Step:
    t: int
    w: float
    slope: float
    step: float  # learning_rate × slope: how far w moves (downhill, so it is subtracted)
    C: float


@dataclass
class Descent:
    curve: Curve
    learning_rate: float
    steps: list[Step] = field(default_factory=list)
    verdict: str = "crawling"  # a key of VERDICTS

    def summary(self) -> str:
        last = self.steps[-1]
        first = self.steps[0]
        if self.verdict == "converged":
            where = (
                _(" (the minimum is at w = {w})").format(w=f"{self.curve.minimum:g}")
                if self.curve.minimum is not None
                else ""
            )
            return _("Converged after {t} steps: w = {w}{where}, C = {C}.").format(
                t=last.t, w=f"{last.w:.4f}", where=where, C=f"{last.C:.4f}"
            )
        if self.verdict == "diverged":
            hint = ""
            if self.curve.curvature:
                hint = _(
                    "; on this curve, steps overshoot and grow once the learning rate "
                    "exceeds 2/C″ = {limit}"
                ).format(limit=f"{2 / self.curve.curvature:g}")
            return _(
                "Diverged: the loss grew from {first} to {last} in {t} steps — the learning "
                "rate {lr} is too large{hint}."
            ).format(
                first=f"{first.C:.4g}",
                last=f"{last.C:.4g}",
                t=last.t,
                lr=f"{self.learning_rate:g}",
                hint=hint,
            )
        return _(
            "Still crawling after {t} steps: w = {w}, slope {slope} — the learning rate {lr} "
            "is too small to get there soon."
        ).format(
            t=last.t, w=f"{last.w:.4f}", slope=f"{last.slope:.2g}", lr=f"{self.learning_rate:g}"
        )

    def table(self, head: int = 12, tail: int = 3) -> str:
        step, slope, move = _("step"), _("slope"), _("lr × slope")
        rows = [f"{step:>5} {'w':>12} {slope:>12} {move:>12} {'C':>12}"]
        shown = (
            self.steps
            if len(self.steps) <= head + tail
            else [*self.steps[:head], None, *self.steps[-tail:]]
        )
        for s in shown:
            rows.append(
                "  ..."
                if s is None
                else f"{s.t:5d} {s.w:12.5g} {s.slope:12.5g} {s.step:12.5g} {s.C:12.5g}"
            )
        return "\n".join(rows)


def descend(
    curve, start: float, learning_rate: float, max_steps: int = 100, tolerance: float = 1e-4
) -> Descent:
    """Walk downhill from ``start`` with w ← w − learning_rate × C′(w)."""
    check_positive("learning_rate", learning_rate,
                   why=": each step moves w by learning_rate × slope, downhill")  # fmt: skip
    curve = get_curve(curve) if isinstance(curve, str) else curve
    run = Descent(curve, learning_rate)
    w = float(start)
    C0 = curve.C(w)
    for t in range(max_steps + 1):
        C, slope = float(curve.C(w)), float(curve.slope(w))
        run.steps.append(Step(t, w, slope, learning_rate * slope, C))
        if not math.isfinite(C) or abs(C - C0) > 1e6 * (abs(C0) + 1) or abs(w) > 1e6:
            run.verdict = "diverged"
            break
        if abs(slope) < tolerance:
            run.verdict = "converged"
            break
        if t < max_steps:
            w -= learning_rate * slope  # the deck's rule
    if run.verdict == "crawling" and run.steps[-1].C > C0:
        run.verdict = "diverged"  # not blown up yet, but every step overshoots further
    return run


# ---- two weights: the optimizers side by side ---------------------------------------------------


def ravine(w: np.ndarray) -> float:
    """C(w₁, w₂) = w₁²/2 + 5·w₂²: a long narrow valley, steep across and flat along."""
    return 0.5 * w[..., 0] ** 2 + 5.0 * w[..., 1] ** 2


def _ravine_slope(w: np.ndarray) -> np.ndarray:
    return np.array([w[0], 10.0 * w[1]])


def paths_2d(start=(-4.0, 1.0), steps: int = 60, learning_rate: float = 0.09):
    """Paths of glassnet's SGD, SGD with momentum and Adam on ``ravine``, from ``start``.

    Returns {name: array of shape (steps + 1, 2)}. The updates are the optimizers' own.
    """
    runs = {
        "SGD": optimizers.SGD(learning_rate=learning_rate),
        "SGD + momentum 0.9": optimizers.SGD(learning_rate=learning_rate / 3, momentum=0.9),
        "Adam": optimizers.Adam(learning_rate=0.3),
    }
    paths = {}
    for name, optimizer in runs.items():
        w = np.array(start, dtype=float)
        points = [w.copy()]
        for _step in range(steps):
            optimizer.apply([(w, _ravine_slope(w))])
            points.append(w.copy())
        paths[name] = np.array(points)
    return paths

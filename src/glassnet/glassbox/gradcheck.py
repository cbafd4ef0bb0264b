"""``check_gradients``: backpropagation against finite differences, for any model.

For users writing or debugging layers: it traces one step in float64 and compares, for every weight
tensor, the gradient the backward pass computed with central differences of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from glassnet.backend import floatx, set_floatx
from glassnet.glassbox.trace import trace

__all__ = ["GradientReport", "check_gradients"]


@dataclass
class GradientReport:
    """Per weight tensor: (layer number, layer name, tensor, shape, entries checked, error)."""

    rows: list[tuple[int, str, str, tuple, int, float]]
    tolerance: float

    @property
    def ok(self) -> bool:
        return all(error <= self.tolerance for *_, error in self.rows)

    @property
    def worst(self) -> float:
        return max((error for *_, error in self.rows), default=0.0)

    def __str__(self) -> str:
        lines = [f"{'layer':24} {'tensor':6} {'shape':>12} {'checked':>8} {'rel. error':>11}"]
        for number, name, tensor, shape, checked, error in self.rows:
            mark = "ok" if error <= self.tolerance else "MISMATCH"
            lines.append(
                f"{f'{number} ({name})':24} {tensor:6} {'×'.join(map(str, shape)):>12} "
                f"{checked:>8} {error:>11.1e}  {mark}"
            )
        verdict = "all gradients agree" if self.ok else "some gradients disagree"
        lines.append(f"{verdict} (tolerance {self.tolerance:g}, float64 central differences)")
        return "\n".join(lines)


def check_gradients(model, x, y, max_checked: int = 200, tolerance: float = 1e-6):
    """Compare backpropagation with finite differences for each weight tensor of ``model``.

    Runs in float64 on a copy of the model (the model is not changed); checks the
    ``max_checked`` largest-gradient entries of each tensor.
    """
    previous = floatx()
    set_floatx("float64")
    try:
        tr = trace(
            model, x, y, learning_rate=None if model.compiled else 0.01, max_checked=max_checked
        )
    finally:
        set_floatx(previous)
    rows = []
    for lt in tr.layers:
        for tensor in lt.parameter_names():
            grad = lt.gradient(tensor)
            checked = len(lt.numeric[tensor][0])
            rows.append(
                (lt.number, lt.name, tensor, grad.shape, checked, lt.relative_error(tensor))
            )
    return GradientReport(rows, tolerance)

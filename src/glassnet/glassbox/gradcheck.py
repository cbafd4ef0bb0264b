"""``check_gradients``: backpropagation against finite differences, for any model.

For users writing or debugging layers: for every weight tensor it compares the gradient the backward
pass computes in float64 with central differences of the loss, as the glass box's ✓ does (one
tolerance, ``glassbox.trace.TOLERANCE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glassnet.glassbox.trace import TOLERANCE, trace
from glassnet.models import Model

__all__ = ["GradientReport", "check_gradients"]


@dataclass
class GradientReport:
    """Per weight tensor: (layer number, layer name, tensor, shape, entries checked, error)."""

    rows: list[tuple[int, str, str, tuple, int, float]]
    tolerance: float
    unchecked: list[str] = field(default_factory=list)  # nested models the trace does not open

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
        if self.unchecked:
            verdict = "all checked gradients agree" if self.ok else verdict
        lines.append(f"{verdict} (tolerance {self.tolerance:g}, float64 central differences)")
        if self.unchecked:
            lines.append(
                "not checked: the weights inside nested model(s) "
                + ", ".join(repr(name) for name in self.unchecked)
                + " (the trace shows a nested model as one step and does not open it yet)"
            )
        return "\n".join(lines)


def check_gradients(model, x, y, max_checked: int = 200, tolerance: float = TOLERANCE):
    """Compare backpropagation with finite differences for each weight tensor of ``model``.

    Both run in float64 on a copy of the model (the model is not changed, nor the process's
    float type); the ``max_checked`` largest-gradient entries of each tensor are checked.
    """
    tr = trace(model, x, y, learning_rate=None if model.compiled else 0.01, max_checked=max_checked)
    rows = []
    for lt in tr.layers:
        for tensor in lt.parameter_names():
            check = lt.numeric[tensor]
            shape = lt.gradient(tensor).shape
            rows.append((lt.number, lt.name, tensor, shape, len(check.indices), check.error))
    nested = {node.layer.name for node in model.nodes
              if isinstance(node.layer, Model) and node.layer.count_params()}  # fmt: skip
    return GradientReport(rows, tolerance, sorted(nested))

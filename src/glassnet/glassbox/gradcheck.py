"""``check_gradients``: backpropagation against finite differences, for any model.

For users writing or debugging layers: for every weight tensor it compares the gradient the backward
pass computes in float64 with central differences of the loss, as the glass box's ✓ does (one
tolerance, ``glassbox.trace.TOLERANCE``) — the weights of models nested inside the model too,
each under its model's name ("encoder/dense").
"""

from __future__ import annotations

from dataclasses import dataclass

from glassnet.glassbox.trace import TOLERANCE, Float64Copy, check_tensor, trace
from glassnet.layers import InputLayer
from glassnet.models import Model

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


def check_gradients(model, x, y, max_checked: int = 200, tolerance: float = TOLERANCE):
    """Compare backpropagation with finite differences for each weight tensor of ``model``.

    Both run in float64 on a copy of the model (the model is not changed, nor the process's
    float type); the ``max_checked`` largest-gradient entries of each tensor are checked. A
    model nested inside (a functional model called as a layer) is one step of the trace; its
    own layers' weights are checked on the copy the same way, named "model/layer".
    """
    tr = trace(model, x, y, learning_rate=None if model.compiled else 0.01, max_checked=max_checked)
    rows = []
    for lt in tr.layers:
        for tensor in lt.parameter_names():
            check = lt.numeric[tensor]
            shape = lt.gradient(tensor).shape
            rows.append((lt.number, lt.name, tensor, shape, len(check.indices), check.error))
    if any(isinstance(node.layer, Model) for node in model.nodes):
        rows += _nested_rows(model, tr.x, tr.y, max_checked)
        rows.sort(key=lambda row: row[0])  # each nested model's rows at its place in the model
    return GradientReport(rows, tolerance)


def _nested_rows(model, x, y, max_checked: int) -> list:
    """Rows for the weights of the models nested in ``model``, at any depth: the backward pass
    of a float64 copy against central differences, tensor by tensor."""
    copy = Float64Copy(model, x, y)
    C = copy.backward()
    rows, seen = [], set()
    nodes = [node for node in copy.model.nodes if not isinstance(node.layer, InputLayer)]
    for number, node in enumerate(nodes, start=1):
        if not isinstance(node.layer, Model) or id(node.layer) in seen:
            continue  # a model called twice (a siamese tower): its weights once, at its first call
        seen.add(id(node.layer))
        for path, layer in _leaves(node.layer, node.layer.name):
            grads = {k: g.copy() for k, g in layer.grads.items()}  # before the differences
            for tensor, param in layer.params.items():
                if tensor in layer.non_trainable:
                    continue
                check = check_tensor(param, grads[tensor], copy.loss, C, max_checked)
                rows.append((number, path, tensor, param.shape, len(check.indices), check.error))
    return rows


def _leaves(model: Model, prefix: str):
    """(path, layer) for every layer with weights inside ``model``, nested models opened."""
    for layer in model.layers:
        if isinstance(layer, Model):
            yield from _leaves(layer, f"{prefix}/{layer.name}")
        elif layer.params:
            yield f"{prefix}/{layer.name}", layer

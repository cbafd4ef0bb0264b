"""Showing a ``Trace`` in the deck's notation: as text (colour on a terminal) and as HTML.

Small arrays are printed in full; large ones are summarised (shape, norm, the largest entries),
and ``neuron=(layer, i)`` prints one neuron of one layer in full.
"""

from __future__ import annotations

import html

import numpy as np

from glassnet import activations
from glassnet.i18n import _

__all__ = ["format_array", "render_html", "render_text"]

FULL = 24  # arrays with at most this many entries are shown in full


def _size(a: np.ndarray) -> str:
    return "×".join(str(s) for s in a.shape) if a.ndim else "scalar"


def format_array(a: np.ndarray, full: bool = False) -> str:
    """Small arrays in full; large ones as shape, norm, mean and the largest entries."""
    a = np.asarray(a)
    if a.size <= FULL or full:
        return np.array2string(
            a, precision=4, suppress_small=True, max_line_width=100, threshold=10**9, separator=", "
        )
    flat = np.abs(a).reshape(-1)
    top = np.argsort(-flat, kind="stable")[:3]
    entries = ", ".join(
        f"[{', '.join(map(str, np.unravel_index(k, a.shape)))}] = {a.reshape(-1)[k]:.4g}"
        for k in top
    )
    return _("‖·‖ = {norm}, mean {mean}; largest: {entries}, …").format(
        norm=f"{np.linalg.norm(a):.4g}", mean=f"{a.mean():.4g}", entries=entries
    )


class _Writer:
    def __init__(self, color: bool, full: bool):
        self.lines: list[str] = []
        self.color, self.full = color, full

    def head(self, text: str) -> None:
        self.lines.append("")
        self.lines.append(f"\x1b[1;36m{text}\x1b[0m" if self.color else text)

    def sub(self, text: str) -> None:
        self.lines.append(f"\x1b[1m{text}\x1b[0m" if self.color else text)

    def value(self, label: str, a, note: str = "") -> None:
        a = np.asarray(a)
        body = format_array(a, self.full)
        note = f"   ({note})" if note else ""
        lines = body.splitlines()
        self.lines.append(f"  {label} ({_size(a)}) = {lines[0]}{note if len(lines) == 1 else ''}")
        pad = " " * (len(label) + len(_size(a)) + 8)
        self.lines.extend(pad + line for line in lines[1:])
        if len(lines) > 1 and note:
            self.lines.append(pad + note.strip())

    def check(self, lt, name: str) -> None:
        if name not in lt.numeric:
            return
        idx, numeric = lt.numeric[name]
        error = lt.relative_error(name)
        mark = "✓" if error < 1e-4 else "✗"
        grad = lt.gradient(name)
        if len(idx) == grad.size:
            shown = numeric[np.argsort(idx)].reshape(grad.shape)
            self.value(
                "  " + _("finite differences of ∂C/∂{name}").format(name=name),
                shown,
                _("relative error {error} {mark}").format(error=f"{error:.1e}", mark=mark),
            )
        else:
            self.lines.append(
                "    "
                + _(
                    "finite differences on the {n} largest entries: relative error {error} {mark}"
                ).format(n=len(idx), error=f"{error:.1e}", mark=mark)
            )
        kinks = int((lt.z == 0).sum()) if lt.z is not None and lt.activation == "relu" else 0
        if mark == "✗" and kinks:
            self.lines.append(
                "    "
                + _(
                    "({kinks} values of z are exactly 0, at relu's kink: backprop takes the "
                    "slope there as 0, finite differences see the average of 0 and 1. Where the "
                    "input is 0 and b is still 0 — a blank background, a fresh model — this is "
                    "expected, not a bug.)"
                ).format(kinks=kinks)
            )


def _next_with_weights(lt, layers):
    """The layer whose ∂C/∂z and W give this one's ∂C/∂a: follow the single reader through
    layers without weights (Dropout, Add, …); None where the output branches."""
    readers = lt.read_by
    while len(readers) == 1:
        reader = layers[readers[0] - 1]
        if reader.has_weights:
            return reader
        readers = reader.read_by
    return None


def render_text(
    tr, color: bool = False, neuron: tuple[int, int] | None = None, full: bool = False
) -> str:
    """The whole trace as text: forward, loss, backward with checks, update, new loss."""
    w = _Writer(color, full)
    w.sub(
        _(
            "One gradient-descent step · loss {loss} · optimizer {optimizer}, learning rate {lr}"
        ).format(loss=tr.loss_name, optimizer=tr.optimizer, lr=f"{tr.learning_rate:g}")
    )
    for label, value, note in (("x", tr.x, _("the input")), ("y", tr.y, _("the target"))):
        if isinstance(value, list):  # several inputs or outputs
            for k, part in enumerate(value):
                w.value(f"{label}[{k}]", part, f"{note} {k + 1}")
        else:
            w.value(label, value, note)
    if neuron is not None:
        _neuron(w, tr, *neuron)
        return "\n".join(w.lines)

    w.head(_("FORWARD PASS — each layer computes z = W·a + b and a = σ(z), and stores them"))
    for lt in tr.layers:
        kind = f"{lt.kind}, {lt.activation}" if lt.activation else lt.kind
        w.sub(
            _("layer {number} ({name}: {kind})").format(number=lt.number, name=lt.name, kind=kind)
        )
        source = lt.source
        if lt.has_weights and lt.window is not None:  # a convolution: neurons that see windows
            kh, kw, c_in = lt.window
            w.value("W", lt.W, _("one row per filter: a neuron that sees one {window} window "
                                 "of its input").format(window=f"{kh}×{kw}×{c_in}"))  # fmt: skip
            w.value(
                "a", lt.a_prev, _("{source}, stored for the backward pass").format(source=source)
            )
            if lt.b is not None:
                w.value("b", lt.b)
            maps = _("at every window position: one feature map per filter, "
                     "(batch, rows, cols, filters)")  # fmt: skip
            w.value("z = W·window + b", lt.z, maps)
            w.value(f"a = {lt.activation}(z)", lt.a)
            w.lines.extend(feature_maps_text(lt.a))
        elif lt.has_weights:
            w.value("W", lt.W, _("one row per neuron"))
            w.value(
                "a", lt.a_prev, _("{source}, stored for the backward pass").format(source=source)
            )
            if lt.b is not None:
                w.value("b", lt.b)
            w.value("z = a·Wᵀ + b", lt.z)
            w.value(f"a = {lt.activation}(z)", lt.a)
        elif "W_h" in lt.other:  # a recurrent layer: the same neurons at every step
            w.lines.append("  " + lt.what)
            for name in ("W_x", "W_h"):
                w.value(name, lt.other[name]["before"], _("one row per unit and gate"))
            if "b" in lt.other:
                w.value("b", lt.other["b"]["before"])
            w.value(
                "x", lt.a_prev, _("{source}, stored for the backward pass").format(source=source)
            )
            w.value("z", lt.z, _("every step's z: (batch, T, gates × units)"))
            w.value("h", lt.a, _("the output: the last step's h, or every step's"))
        elif lt.z is not None:
            w.value(f"a = {lt.activation}(z)", lt.a, _("z is {source}").format(source=source))
        elif lt.what:
            w.lines.append("  " + _("{what}, from {source}").format(what=lt.what, source=source))
        else:
            w.lines.append(
                "  " + _("passes {source} on ({kind})").format(source=source, kind=lt.kind)
            )
    w.head(_("LOSS — C = {loss}(y, a) = {C}").format(loss=tr.loss_name, C=f"{tr.C:.6g}"))

    w.head(_("BACKWARD PASS — from the output layer back, ∂C/∂z of each layer from the one after"))
    layers = tr.layers
    for pos in range(len(layers) - 1, -1, -1):
        lt = layers[pos]
        if not lt.has_weights and lt.dC_dz is None and not lt.other:
            continue
        is_output = lt.is_output
        after = _next_with_weights(lt, layers)
        if is_output:
            case = (
                _("case 1: output layer, ∂C/∂z = (a − y)/batch straight from the loss")
                if lt.case_1
                else _("output layer: ∂C/∂a from the loss, then σ′")
            )
        elif len(lt.read_by) > 1:
            readers = ", ".join(str(k) for k in lt.read_by)
            case = _(
                "case 2 with a sum: its output feeds layers {readers}, so ∂C/∂a is the sum of "
                "what each sends back (the deck's σ′(z)·(w3·∂C/∂z′ + w4·∂C/∂z″))"
            ).format(readers=readers)
        else:
            case = (
                _("case 2: ∂C/∂z = σ′(z) ⊙ (∂C/∂z of layer {k} · W of layer {k})").format(
                    k=after.number
                )
                if after
                else _("case 2")
            )
        w.sub(_("layer {number} ({name})").format(number=lt.number, name=lt.name) + f" — {case}")
        if lt.dC_da is not None:
            if is_output:
                origin = _("from the loss")
            elif len(lt.read_by) > 1:
                origin = _("Σ over the layers it feeds of ∂C/∂z_next · W_next")
            else:
                origin = _("from the layer after: ∂C/∂z_next · W_next")
            w.value("∂C/∂a", lt.dC_da, origin)
            fn = activations.get(lt.activation) if lt.activation else None
            if fn is not None and fn.prime is not None:
                w.value(f"σ′(z) = {lt.activation}′(z)", fn.prime(lt.z, lt.a))
        if lt.dC_dh is not None:  # a recurrent layer: the recursion back along time
            w.lines.extend(through_time_text(lt.gradient_through_time()))
        if lt.dC_dz is not None:
            w.value("∂C/∂z", lt.dC_dz)
        for name, values in lt.other.items():  # a user's own parameters
            w.value(f"∂C/∂{name}", values["grad"], _("from the layer's own backward pass"))
            w.check(lt, name)
        if lt.has_weights and lt.window is not None:
            w.value("∂C/∂W = Σ ∂C/∂z·window", lt.dC_dW, _("over every position: ∂z/∂w = the "
                                                        "stored window of the input"))  # fmt: skip
            w.check(lt, "W")
            if lt.dC_db is not None:
                w.value("∂C/∂b = Σ ∂C/∂z", lt.dC_db, _("∂z/∂b = 1, summed over the batch and "
                                                       "the positions"))  # fmt: skip
                w.check(lt, "b")
        elif lt.has_weights:
            w.value("∂C/∂W = ∂C/∂zᵀ·a", lt.dC_dW, _("∂z/∂w = the stored input a of this layer"))
            w.check(lt, "W")
            if lt.dC_db is not None:
                w.value("∂C/∂b = Σ ∂C/∂z", lt.dC_db, _("∂z/∂b = 1, summed over the batch"))
                w.check(lt, "b")

    rule = (
        "W ← W − learning_rate · ∂C/∂W"
        if tr.optimizer == "SGD"
        else _("the {optimizer} step (see its docstring)").format(optimizer=tr.optimizer)
    )
    w.head(_("UPDATE — {rule}, learning rate {lr}").format(rule=rule, lr=f"{tr.learning_rate:g}"))
    before, after = _("{name} before"), _("{name} after ")
    for lt in tr.layers:
        if lt.has_weights or lt.other:
            w.sub(_("layer {number} ({name})").format(number=lt.number, name=lt.name))
        if lt.has_weights:
            w.value(before.format(name="W"), lt.W)
            w.value(after.format(name="W"), lt.W_new)
            if lt.b is not None:
                w.value(before.format(name="b"), lt.b)
                w.value(after.format(name="b"), lt.b_new)
        for name, values in lt.other.items():
            w.value(before.format(name=name), values["before"])
            w.value(after.format(name=name), values["after"])
    if tr.C_new is not None:
        w.head(
            _("NEW LOSS — C = {C_new} (was {C})").format(C_new=f"{tr.C_new:.6g}", C=f"{tr.C:.6g}")
        )
    return "\n".join(w.lines)


SHADES = " .:-=+*#%@"  # dark to bright: a feature map as text


def feature_maps_text(a, limit: int = 8) -> list[str]:
    """The first sample's first ``limit`` feature maps of a conv layer's output a (batch, rows,
    cols, filters), side by side as text: each value a shade from ' ' (the map's smallest) to
    '@' (its largest)."""
    if a is None or a.ndim != 4:
        return []
    limit = max(1, min(limit, 110 // (a.shape[2] + 2)))  # as many as fit in a terminal's width
    maps = a[0, :, :, :limit]  # (rows, cols, k)
    k = maps.shape[-1]
    low, high = maps.min(axis=(0, 1)), maps.max(axis=(0, 1))
    scaled = (maps - low) / np.where(high > low, high - low, 1)
    levels = np.minimum((scaled * len(SHADES)).astype(int), len(SHADES) - 1)
    width = maps.shape[1]
    which = _("filters 0–{last}").format(last=k - 1) if k < a.shape[-1] else _("every filter")
    lines = ["  " + _("feature maps of the first input, {which} (' ' low … '@' high):").format(
        which=which)]  # fmt: skip
    label = _("filter {}") if width >= 9 else "{}"
    lines.append("    " + "  ".join(f"{label.format(f):<{width}}"[:width] for f in range(k)))
    for r in range(maps.shape[0]):
        lines.append("    " + "  ".join(
            "".join(SHADES[v] for v in levels[r, :, f]) for f in range(k)))  # fmt: skip
    return lines


def through_time_text(norms) -> list[str]:
    """Backpropagation through time in one table: ‖∂C/∂h_t‖ at every step (``norms``, from
    ``LayerTrace.gradient_through_time``), from the last step back."""
    largest = norms.max() or 1.0
    lines = ["  " + _("back through time: ∂C/∂h_t = (from the output at t) + W_hᵀ·∂C/∂z_{t+1}, "
                      "t = T … 1; its size ‖∂C/∂h_t‖ per step:")]  # fmt: skip
    for t in range(len(norms) - 1, -1, -1):
        bar = "█" * round(30 * norms[t] / largest)
        lines.append(f"    t = {t + 1:>3}  {norms[t]:10.4g}  {bar}")
    return lines


def _neuron(w: _Writer, tr, number: int, i: int) -> None:
    """One neuron of one layer, every number in full."""
    matches = [lt for lt in tr.layers if lt.number == number]
    if not matches or not matches[0].has_weights:
        weighted = [lt.number for lt in tr.layers if lt.has_weights]
        raise ValueError(
            _("Received layer {number}; layers with neurons are {weighted}.").format(
                number=number, weighted=weighted
            )
        )
    lt = matches[0]
    n = lt.W.shape[0]
    if not 0 <= i < n:
        raise ValueError(
            _("Layer {number} has neurons 0..{last}; received neuron {i}.").format(
                number=number, last=n - 1, i=i
            )
        )
    if lt.window is not None:
        head = _("layer {number} ({name}), filter {i}: z = w·window + b at every position")
    else:
        head = _("layer {number} ({name}), neuron {i}: z = w·a + b")
    w.head(head.format(number=number, name=lt.name, i=i))
    full, w.full = w.full, True
    if lt.window is not None:
        w.value(_("w (its row of W)"), lt.W[i], _("the window's weights, row by row"))
        w.value(_("w as its window"), lt.W[i].reshape(lt.window).transpose(2, 0, 1),
                "(c_in, kh, kw)")  # fmt: skip
    else:
        w.value(_("w (its row of W)"), lt.W[i])
    if lt.b is not None:
        w.value("b", lt.b[i])
    w.value("z", lt.z[..., i])  # its feature map, for a filter
    w.value(f"a = {lt.activation}(z)", lt.a[..., i])
    w.value("∂C/∂z", lt.dC_dz[..., i])
    w.value("∂C/∂w = ∂C/∂z · a_prev", lt.dC_dW[i])
    if lt.b is not None:
        w.value("∂C/∂b", lt.dC_db[i])
    w.value(_("w after the update"), lt.W_new[i])
    w.full = full


def render_html(tr) -> str:
    """The trace for Jupyter: the same sections as the text, as HTML."""
    text = render_text(tr)
    sections = text.split("\n\n")
    parts = ['<div class="glassnet-trace" style="font-family: monospace">']
    for section in sections:
        lines = section.splitlines()
        if not lines:
            continue
        parts.append(f"<h4 style='margin:0.6em 0 0.2em'>{html.escape(lines[0])}</h4>")
        parts.append(f"<pre style='margin:0'>{html.escape(chr(10).join(lines[1:]))}</pre>")
    parts.append("</div>")
    return "".join(parts)

"""Showing a ``Trace`` in the deck's notation: as text (colour on a terminal) and as HTML.

Small arrays are printed in full; large ones are summarised (shape, norm, the largest entries),
and ``neuron=(layer, i)`` prints one neuron of one layer in full.
"""

from __future__ import annotations

import html

import numpy as np

from glassnet import activations
from glassnet.i18n import _

__all__ = ["format_array", "number", "render_html", "render_text"]

FULL = 24  # arrays with at most this many entries are shown in full


def _size(a: np.ndarray) -> str:
    return "×".join(str(s) for s in a.shape) if a.ndim else "scalar"


def number(v: float) -> str:
    """One number as the glass box prints it: 4 significant digits, and powers of ten where
    fixed decimals would hide it (1.2e-6, not 0.0000).

    >>> number(0.61768), number(-2.5e-06), number(0.0), number(31415.9)
    ('0.6177', '-2.5e-6', '0', '3.142e4')
    """
    v = float(v)
    if v == 0 or not np.isfinite(v):
        return "0" if v == 0 else str(v)
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.4g}"
    mantissa, exponent = f"{v:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def format_array(a: np.ndarray, full: bool = False) -> str:
    """Small arrays in full; large ones as shape, norm, mean and the largest entries."""
    a = np.asarray(a)
    if a.size <= FULL or full:
        return np.array2string(
            a, max_line_width=100, threshold=10**9, separator=", ",
            formatter={"float_kind": number},
        )  # fmt: skip
    flat = np.abs(a).reshape(-1)
    top = np.argsort(-flat, kind="stable")[:3]
    entries = ", ".join(
        f"[{', '.join(map(str, np.unravel_index(k, a.shape)))}] = {number(a.reshape(-1)[k])}"
        for k in top
    )
    return _("‖·‖ = {norm}, mean {mean}; largest: {entries}, …").format(
        norm=number(np.linalg.norm(a)), mean=number(a.mean()), entries=entries
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

    def say(self, text: str) -> None:
        self.lines.append("  " + text)

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
        """The finite-difference check of parameter ``name``: float64 backprop against float64
        central differences, ✓ within ``TOLERANCE``."""
        if name not in lt.numeric:
            return
        check = lt.numeric[name]
        mark = "✓" if check.ok else "✗"
        error = number(check.error)
        grad = lt.gradient(name)
        if len(check.indices) == grad.size:
            shown = np.empty(grad.size)
            shown[check.indices] = check.finite
            self.value(
                "  " + _("finite differences of ∂C/∂{name}").format(name=name),
                shown.reshape(grad.shape),
                _("against backprop in float64: relative error {error} {mark}").format(
                    error=error, mark=mark
                ),
            )
        else:
            self.lines.append(
                "    "
                + _(
                    "finite differences on the {n} largest entries, against backprop in float64: "
                    "relative error {error} {mark}"
                ).format(n=len(check.indices), error=error, mark=mark)
            )
        kinks = int((lt.z == 0).sum()) if lt.z is not None and lt.activation == "relu" else 0
        if not check.ok and kinks:
            self.lines.append(
                "    "
                + _(
                    "({kinks} values of z are exactly 0, at relu's kink: backprop takes the "
                    "slope there as 0, finite differences see the average of 0 and 1. Where the "
                    "input is 0 and b is still 0 — a blank background, a fresh model — this is "
                    "expected, not a bug.)"
                ).format(kinks=kinks)
            )


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
    _forward(w, tr)
    _loss(w, tr)
    _backward(w, tr)
    _update(w, tr)
    if tr.split is not None:
        _split(w, tr.split)
    return "\n".join(w.lines)


def _forward(w: _Writer, tr) -> None:
    """FORWARD PASS: each layer's stored input, z and a (a filter's windows, a recurrent
    layer's steps), or in words what a layer without neurons does."""
    w.head(_("FORWARD PASS — each layer computes z = W·a_prev + b and a = σ(z), and stores them"))
    for lt in tr.layers:
        kind = f"{lt.kind}, {lt.activation}" if lt.activation else lt.kind
        w.sub(
            _("layer {number} ({name}: {kind})").format(number=lt.number, name=lt.name, kind=kind)
        )
        stored = _("{source}, stored for the backward pass").format(source=lt.source)
        if lt.ops:  # written with call() and glassnet.ops: op by op
            w.say(_("its call(), op by op, as glassnet.ops recorded it; x is {source}").format(
                source=lt.source))  # fmt: skip
            for name, values in lt.other.items():
                w.value(name, values["before"])
            _ops_forward(w, lt.ops)
        elif lt.has_weights and lt.window is not None:  # a convolution: neurons that see windows
            window = "×".join(map(str, lt.window))  # kh×kw×c_in (a volume's: kd×kh×kw×c_in)
            w.value("W", lt.W, _("one row per filter: a neuron that sees one {window} window "
                                 "of its input").format(window=window))  # fmt: skip
            w.value("a_prev", lt.a_prev, stored)
            if lt.b is not None:
                w.value("b", lt.b)
            axes = "(batch, depth, rows, cols, filters)" if len(lt.window) == 4 else (
                "(batch, rows, cols, filters)")  # fmt: skip
            maps = _("at every window position: one feature map per filter, {axes}").format(
                axes=axes)  # fmt: skip
            w.value("z = W·window + b", lt.z, maps)
            w.value(f"a = {lt.activation}(z)", lt.a)
            w.lines.extend(feature_maps_text(lt.a))
        elif lt.has_weights:
            w.value("W", lt.W, _("one row per neuron"))
            w.value("a_prev", lt.a_prev, stored)
            if lt.b is not None:
                w.value("b", lt.b)
            w.value("z = a_prev·Wᵀ + b", lt.z)
            w.value(f"a = {lt.activation}(z)", lt.a)
        elif "W_h" in lt.other:  # a recurrent layer: the same neurons at every step
            w.say(lt.what)
            for name in ("W_x", "W_h"):
                w.value(name, lt.other[name]["before"], _("one row per unit and gate"))
            if "b" in lt.other:
                w.value("b", lt.other["b"]["before"])
            w.value("x", lt.a_prev, stored)
            w.value("z", lt.z, _("every step's z: (batch, T, gates × units)") if lt.kind in (
                "SimpleRNN", "LSTM", "GRU") else _("every step's z at every position: (batch × "
                "positions, T, gates × filters)"))  # fmt: skip
            w.value("h", lt.a, _("the output: the last step's h, or every step's"))
        elif lt.z is not None:
            w.value(f"a = {lt.activation}(z)", lt.a, _("z is {source}").format(source=lt.source))
        elif lt.what:
            w.say(_("{what}, from {source}").format(what=lt.what, source=lt.source))
            if lt.a is not None:
                w.value("a", lt.a)
        else:
            w.say(_("passes {source} on ({kind})").format(source=lt.source, kind=lt.kind))
            if lt.a is not None:
                w.value("a", lt.a)


def _ops_forward(w: _Writer, ops: list) -> None:
    """Each recorded op: what it read and the tensor it made."""
    for op in ops:
        w.value(f"{op['name']} = {op['op']}({', '.join(op['reads'])})", op["value"])


def _ops_backward(w: _Writer, ops: list) -> None:
    """The recursion over the recorded ops, last to first: what came back to each tensor (the
    sum, where two ops read it)."""
    w.say(_("the deck's recursion over its ops, last to first: each op's ∂C/∂(what it read) is "
            "its own derivative times what came back to it"))  # fmt: skip
    for op in reversed(ops):
        if op["dC_dvalue"] is not None:
            w.value(f"∂C/∂{op['name']}", op["dC_dvalue"], _("back through {op}").format(
                op=op["op"]))  # fmt: skip


def _loss(w: _Writer, tr) -> None:
    """LOSS: C, and where it is ≈ 0, what that means for the step."""
    if not (tr.penalty or tr.added):
        w.head(_("LOSS — C = {loss}(y, a) = {C}").format(loss=tr.loss_name, C=number(tr.C)))
    else:  # C has more terms than the output's loss: each one, and where its slope goes
        terms = [f"{tr.loss_name}(y, a)"] * bool(tr.loss_name) + ["Ω(W)"] * bool(tr.penalty)
        terms += [_("the added losses")] * bool(tr.added)
        w.head(_("LOSS — C = {terms} = {C}").format(terms=" + ".join(terms), C=number(tr.C)))
        if tr.loss_name:
            w.say(_("{loss}(y, a) = {value}: the loss of the output").format(
                loss=tr.loss_name, value=number(tr.C - tr.penalty - tr.added)))  # fmt: skip
        if tr.penalty:
            w.say(_("Ω(W) = {value}: the regularizers' penalty on the weights; each ∂Ω/∂W is "
                    "added to that weight's ∂C/∂W").format(value=number(tr.penalty)))  # fmt: skip
        if tr.added:
            w.say(_("the added losses = {value}: what the layers gave add_loss; their slope goes "
                    "back through the layers that added them").format(
                        value=number(tr.added)))  # fmt: skip
    if tr.loss_ops:
        w.say(_("the loss function, op by op (a is the model's output, y the target):"))
        _ops_forward(w, tr.loss_ops)
        _ops_backward(w, tr.loss_ops)
    if tr.tiny_loss:
        w.say(
            _(
                "C ≈ 0: the network already gives this target almost all of its probability, so "
                "every ∂C/∂z, ∂C/∂W and the update are tiny ({dtype} may not even change W). "
                "The checks below still hold. Choose another label to watch a step that "
                "changes something."
            ).format(dtype=tr.dtype)
        )


def _backward(w: _Writer, tr) -> None:
    """BACKWARD PASS: from the output layer back, each layer by its own rule (``lt.backward``)
    with the numbers it received and sent back, its gradients and their checks."""
    w.head(_("BACKWARD PASS — from the output layer back, each layer's ∂C/∂x is the ∂C/∂a of "
             "the layer before it"))  # fmt: skip
    for lt in reversed(tr.layers):
        w.sub(_("layer {number} ({name})").format(number=lt.number, name=lt.name)
              + f" — {lt.backward}")  # fmt: skip
        if lt.dC_da is not None:
            if lt.is_output:
                origin = _("from the loss")
            elif len(lt.read_by) > 1:
                origin = _("Σ of what the layers it feeds sent back")
            else:
                origin = _("what layer {k} sent back").format(k=", ".join(map(str, lt.read_by)))
            w.value("∂C/∂a", lt.dC_da, origin)
            known = lt.activation in activations.names()  # not one with options: relu[…]
            fn = activations.get(lt.activation) if known else None
            recurrent = "W_h" in lt.other  # its σ′ is inside the steps, in ∂C/∂z below
            if fn is not None and fn.prime is not None and lt.z is not None and not recurrent:
                w.value(f"σ′(z) = {lt.activation}′(z)", fn.prime(lt.z, lt.a))
        if lt.ops:
            _ops_backward(w, lt.ops)
        if lt.dC_dh is not None:  # a recurrent layer: the recursion back along time
            w.lines.extend(through_time_text(lt.gradient_through_time()))
        if lt.dC_dz is not None:
            w.value("∂C/∂z", lt.dC_dz)
        for name, values in lt.other.items():  # a recurrent layer's or a user's parameters
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
            w.value("∂C/∂W = ∂C/∂zᵀ·a_prev", lt.dC_dW,
                    _("∂z/∂w = the stored input a_prev of this layer"))  # fmt: skip
            w.check(lt, "W")
            if lt.dC_db is not None:
                w.value("∂C/∂b = Σ ∂C/∂z", lt.dC_db, _("∂z/∂b = 1, summed over the batch"))
                w.check(lt, "b")
        if lt.dC_dx is not None and not lt.has_weights and not lt.other:
            w.value("∂C/∂x", lt.dC_dx, _("sent back to {source}").format(source=lt.source))


def _update(w: _Writer, tr) -> None:
    """UPDATE and NEW LOSS: every parameter before and after the step, and how much it moved."""
    rule = (
        "W ← W − learning_rate · ∂C/∂W"
        if tr.optimizer == "SGD"
        else _("the {optimizer} step (see its docstring)").format(optimizer=tr.optimizer)
    )
    w.head(_("UPDATE — {rule}, learning rate {lr}").format(rule=rule, lr=f"{tr.learning_rate:g}"))
    before, after = _("{name} before"), _("{name} after ")
    moved = _("{name} after − {name} before")
    for lt in tr.layers:
        names = lt.parameter_names()
        if not names:
            continue
        w.sub(_("layer {number} ({name})").format(number=lt.number, name=lt.name))
        for name in names:
            old, new = lt.before(name), lt.after(name)
            w.value(before.format(name=name), old)
            w.value(after.format(name=name), new)
            w.value(moved.format(name=name), np.asarray(new, float) - np.asarray(old, float))
    if tr.C_new is not None:
        w.head(
            _("NEW LOSS — C = {C_new} (was {C}; change {change})").format(
                C_new=number(tr.C_new), C=number(tr.C), change=number(tr.C_new - tr.C)
            )
        )


def _split(w: _Writer, split) -> None:
    """DATA-PARALLEL: one weight's ∂C/∂w from each process's rows, and their weighted sum."""
    entry = f"W{list(split.index)}"
    total = sum(split.rows)
    w.head(
        _("SPLIT OVER {n} PROCESSES — layer {number}, {entry}: each process takes its rows of "
          "the batch; one Allreduce adds their ∂C/∂w, each weighted by its rows").format(
            n=len(split.rows), number=split.layer, entry=entry)
    )  # fmt: skip
    for rank, (rows, g) in enumerate(zip(split.rows, split.gradients)):
        w.say(
            _("process {rank} ({rows} of {total} rows): ∂C/∂w = {g}").format(
                rank=rank, rows=rows, total=total, g=number(g)
            )
        )
    terms = " + ".join(
        f"{r}/{total}·" + (f"({number(g)})" if g < 0 else number(g))
        for r, g in zip(split.rows, split.gradients)
    )
    w.say(f"∂C/∂w = Σ (rows/B)·∂C/∂w = {terms} = {number(split.average)}")
    w.say(
        _("the whole batch on one process: ∂C/∂w = {whole} (the same sum, rounded in another "
          "order)").format(whole=number(split.whole))
    )  # fmt: skip
    w.say(
        _("every process takes the same step from the same sum: w {before} → {after}").format(
            before=number(split.before), after=number(split.after)
        )
    )


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
        w.value(_("w as its window"), np.moveaxis(lt.W[i].reshape(lt.window), -1, 0),
                "(c_in, kd, kh, kw)" if len(lt.window) == 4 else "(c_in, kh, kw)")  # fmt: skip
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

"""Pictures of networks and their training; the only module that imports matplotlib.

Each function returns a matplotlib ``Figure`` (which Jupyter shows by itself); ``save(fig, path)``
writes it as a PNG. With no display, matplotlib's Agg backend is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glassnet.i18n import _

__all__ = [
    "activation_histograms",
    "animate_descent",
    "confusion_matrix",
    "descent_picture",
    "feature_maps",
    "filters",
    "first_layer_weights",
    "gradient_through_time",
    "learning_curves",
    "misclassified",
    "optimizer_paths",
    "save",
]


INLINE = "module://matplotlib_inline.backend_inline"
_shown_inline: list = []  # [True] once the inline backend is loaded in this kernel


def _subplots(*args, figsize=None, **kwargs):
    """A new figure and its axes, as ``plt.subplots`` makes them, but not kept by pyplot: a
    notebook shows the figure a function returns once (pyplot would show it a second time at the
    cell's end), and a long session keeps no figure it no longer uses."""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    if backend == INLINE and not _shown_inline:
        # Jupyter: loading the inline backend teaches IPython to show a returned figure (pyplot
        # loads it only when it makes a figure itself, and these figures are not pyplot's)
        import matplotlib.pyplot as plt

        plt.switch_backend(backend)
        _shown_inline.append(True)
    elif backend != "agg":
        import os

        if not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Traditional Chinese in titles and labels: matplotlib falls back, glyph by glyph, to the
    # next font of the list that has it (Debian's fonts-noto-cjk, where installed). Text takes
    # its font when it is made, after this returns, so the setting is matplotlib's own default.
    fonts = {f.name for f in matplotlib.font_manager.fontManager.ttflist}
    cjk = [name for name in ("Noto Sans CJK TC", "Noto Sans CJK JP") if name in fonts][:1]
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", *cjk]
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # draws PNGs and GIF frames, with no window and no pyplot
    return fig, fig.subplots(*args, **kwargs)


def _with_suffix(path, suffix: str) -> Path:
    """``path``, with ``suffix`` added if it has none (as matplotlib would add it)."""
    path = Path(path)
    return path if path.suffix else path.with_name(path.name + suffix)


def save(fig, path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (PNG unless its suffix names another format), creating the
    folder; returns the path written."""
    path = _with_suffix(path, ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


# ---- training ------------------------------------------------------------------------------------


def learning_curves(history):
    """Loss and every metric per epoch, training beside validation."""
    logs = history.history if hasattr(history, "history") else history
    names = [k for k in logs if not k.startswith("val_")]
    fig, axes = _subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    epochs = np.arange(1, len(logs[names[0]]) + 1)
    for ax, name in zip(axes[0], names):
        ax.plot(epochs, logs[name], "o-", label=_("training"))
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], "s--", label=_("validation"))
        ax.set_xlabel(_("epoch"))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def _predicted(model, x):
    return np.argmax(model.predict(x, verbose=0, batch_size=1000), axis=-1)


def confusion_matrix(model, x, y, class_names=None):
    """Rows: the true class; columns: the predicted one; the diagonal is what it got right."""
    y = np.asarray(y).reshape(len(y), -1).argmax(axis=1) if np.ndim(y) > 1 else np.asarray(y)
    pred = _predicted(model, x)
    k = int(max(y.max(), pred.max())) + 1
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y, pred), 1)
    fig, ax = _subplots(figsize=(6.4, 5.6))
    image = ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                counts[i, j],
                ha="center",
                va="center",
                fontsize=7,
                color="white" if counts[i, j] > counts.max() / 2 else "black",
            )
    labels = class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), labels, rotation=45 if class_names else 0)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel(_("predicted"))
    ax.set_ylabel(_("true"))
    accuracy = f"{np.trace(counts) / counts.sum():.2%}"
    ax.set_title(_("Confusion matrix — accuracy {accuracy}").format(accuracy=accuracy))
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def misclassified(model, x, y, images=None, n: int = 25):
    """The first ``n`` test images the model gets wrong, with the true and predicted labels."""
    y = np.asarray(y).reshape(len(y), -1).argmax(axis=1) if np.ndim(y) > 1 else np.asarray(y)
    pred = _predicted(model, x)
    wrong = np.flatnonzero(pred != y)[:n]
    images = np.asarray(x if images is None else images)
    side = round(np.sqrt(images[0].size))
    cols = 5
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = _subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(images[i].reshape(side, side), cmap="gray_r")
        said = _("true {true}, said {said}").format(true=y[i], said=pred[i])
        ax.set_title(said, fontsize=8, color="firebrick")
    fig.suptitle(
        _("{wrong} of {n} misclassified; the first {shown}").format(
            wrong=len(np.flatnonzero(pred != y)), n=len(y), shown=len(wrong)
        )
    )
    fig.tight_layout()
    return fig


def first_layer_weights(model, n: int = 16):
    """Each of the first ``n`` neurons of layer 1 as an image: its row of W, the pattern it
    responds to (red: positive weights, blue: negative). For a CNN, its filters."""
    first = next(layer for layer in model.layers if "W" in layer.params)
    if hasattr(first, "kernel_size"):
        return filters(model, first, n=max(n, 32))
    W = first.params["W"]
    side = round(np.sqrt(W.shape[1]))
    if side * side != W.shape[1]:
        raise ValueError(f"Layer 1 has {W.shape[1]} inputs, not a square image.")
    n = min(n, W.shape[0])
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    fig, axes = _subplots(rows, cols, figsize=(cols * 1.5, rows * 1.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        limit = np.abs(W[i]).max() or 1.0
        ax.imshow(W[i].reshape(side, side), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(_("neuron {i}").format(i=i), fontsize=8)
    fig.suptitle(_("Layer 1 weights: one row of W per neuron, as an image"))
    fig.tight_layout()
    return fig


def _conv_layers(model) -> list:
    return [layer for layer in model.layers if hasattr(layer, "kernel_size") and layer.built]


def filters(model, layer=None, n: int = 32):
    """The filters of a conv layer (the first, by default) as images: each filter's row of W
    folded back to its window, kh × kw, one picture per input channel shown summed (red:
    positive weights, blue: negative). A filter answers most where its window looks like it."""
    convs = _conv_layers(model)
    if layer is None:
        if not convs:
            raise ValueError("This model has no convolutional layer: no filters to draw.")
        layer = convs[0]
    elif isinstance(layer, (int, str)):
        layer = model.get_layer(index=layer) if isinstance(layer, int) else model.get_layer(layer)
    if not hasattr(layer, "kernel_size"):
        raise ValueError(f"Layer {layer.name!r} is not a convolution: it has no filters.")
    W = layer.params["W"]  # (filters, kh·kw·c_in)
    kh, kw = (1, *layer.kernel_size) if len(layer.kernel_size) == 1 else layer.kernel_size
    windows = W.reshape(len(W), kh, kw, -1).sum(axis=-1)  # (filters, kh, kw), channels summed
    n = min(n, len(W))
    cols = min(8, n)
    rows = -(-n // cols)
    fig, axes = _subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35 + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    limit = np.abs(windows[:n]).max() or 1.0
    for i, ax in enumerate(axes.ravel()[:n]):
        ax.imshow(windows[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(_("filter {i}").format(i=i), fontsize=8)
    channels = W.shape[1] // (kh * kw)
    title = _("{name}: each filter's weights as its {window} window").format(
        name=layer.name, window=f"{kh}×{kw}"
    )
    if channels > 1:
        title += _(", its {channels} input channels summed").format(channels=channels)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_maps(model, image, n: int = 8):
    """What each conv and pooling layer makes of one ``image``: the image, then, row by row,
    the first ``n`` feature maps of each layer whose output is an image (bright: large a)."""
    image = np.asarray(image, dtype="float32")
    if image.ndim == len(model.input_shape) - 1:
        image = image[None]  # one image: a batch of one
    captured = model.capture(image[:1])  # every layer's values, in caches of their own
    shown = [
        (number, node.layer, out[0])
        for number, (node, out) in enumerate(zip(captured.nodes, captured.outputs), 1)
        if out.ndim == 4
    ]
    if not shown:
        raise ValueError("This model has no layer whose output is an image (no conv layer).")
    cols = n + 1
    fig, axes = _subplots(len(shown), cols, figsize=(cols * 1.25, len(shown) * 1.45 + 0.5),
                             squeeze=False)  # fmt: skip
    for ax in axes.ravel():
        ax.axis("off")
    picture = image[0, ..., 0] if image.shape[-1] == 1 else image[0].mean(axis=-1)
    for row, (number, layer, maps) in enumerate(shown):
        if row == 0:
            axes[0, 0].imshow(picture, cmap="gray_r")
            axes[0, 0].set_title(_("input"), fontsize=8)
        for k in range(min(n, maps.shape[-1])):
            ax = axes[row, k + 1]
            ax.imshow(maps[..., k], cmap="magma")
            head = _("layer {number}: {name}").format(number=number, name=layer.name) + "\n"
            title = (head if k == 0 else "") + _("map {k}").format(k=k)
            ax.set_title(title, fontsize=7, loc="left" if k == 0 else "center")
    fig.suptitle(_("Feature maps: one per filter, a = σ(W·window + b) at every position"))
    fig.tight_layout()
    return fig


def gradient_through_time(model, x, y):
    """For each recurrent layer, the size of ∂C/∂h_t at every step t of one training step on
    (x, y), read from the layer's own backward pass: where a gradient vanishes on its way back
    through time (a SimpleRNN over long sequences) or survives (an LSTM), it shows."""
    from glassnet import glassbox  # the trace runs one real step, on a copy of the model

    tr = glassbox.trace(model, x, y, check=False, learning_rate=None if model.compiled else 0.01)
    shown = [lt for lt in tr.layers if lt.dC_dh is not None]
    if not shown:
        raise ValueError("This model has no recurrent layer: no gradient through time to draw.")
    fig, ax = _subplots(figsize=(6.4, 3.6))
    for lt in shown:
        norms = lt.gradient_through_time()
        ax.semilogy(np.arange(1, len(norms) + 1), norms, marker="o", markersize=3,
                    label=_("layer {number}: {name}").format(number=lt.number, name=lt.name)
                    + f" ({lt.kind})")  # fmt: skip
    ax.set_xlabel(_("time step t"))
    ax.set_ylabel("‖∂C/∂h_t‖")
    ax.set_title(_("The gradient on its way back through time (from the last step)"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def activation_histograms(model, x):
    """For each layer with an activation, the distribution of its outputs a on ``x``."""
    captured = model.capture(x)  # every layer's z and a for this batch, in caches of their own
    shown = [
        (number, node.layer, cache)
        for number, (node, cache) in enumerate(zip(captured.nodes, captured.caches), 1)
        if getattr(cache, "a", None) is not None and hasattr(node.layer, "activation")
    ]
    fig, axes = _subplots(1, len(shown), figsize=(4 * len(shown), 3.2), squeeze=False)
    for ax, (number, layer, cache) in zip(axes[0], shown):
        a = np.asarray(cache.a).ravel()
        ax.hist(a, bins=50, color="tab:blue", alpha=0.8)
        ax.set_title(_("layer {number}").format(number=number) + f" ({layer.activation.name})")
        ax.set_xlabel("a")
        zero = (a == 0).mean()
        if zero > 0.05:
            said = _("{share} exactly 0").format(share=f"{zero:.0%}")
            ax.text(0.97, 0.9, said, transform=ax.transAxes, ha="right")
    fig.suptitle(_("Activations on {n} inputs").format(n=len(x)))
    fig.tight_layout()
    return fig


# ---- gradient descent --------------------------------------------------------------------------


def _walk_limits(run) -> tuple[float, float]:
    """The w range to draw: the walk and the minimum; for a divergent walk, its start."""
    ws = np.array([s.w for s in run.steps])
    finite = ws[np.isfinite(ws)]
    if run.verdict == "diverged":
        finite = finite[: max(3, len(finite) // 3)]
    lo = min(finite.min(), run.curve.minimum if run.curve.minimum is not None else finite.min())
    hi = max(finite.max(), run.curve.minimum if run.curve.minimum is not None else finite.max())
    pad = 0.15 * (hi - lo) + 0.5
    return lo - pad, hi + pad


def _curve_axis(ax, run, limits=None, color="tab:red"):
    from glassnet.glassbox.descent import VERDICTS

    lo, hi = limits or _walk_limits(run)
    grid = np.linspace(lo, hi, 400)
    ax.plot(grid, [run.curve.C(w) for w in grid], color="0.3", lw=1.5)
    shown = [s for s in run.steps if lo <= s.w <= hi]
    ax.plot(
        [s.w for s in shown],
        [s.C for s in shown],
        "o-",
        color=color,
        ms=4,
        lw=1,
        label=_("learning rate {lr}").format(lr=f"{run.learning_rate:g}"),
    )
    ax.plot(shown[0].w, shown[0].C, "o", color="black", ms=7, label=_("start"))
    ax.set_xlabel("w")
    ax.set_ylabel("C(w)")
    ax.set_title(
        _("{verdict}: learning rate {lr}, {n} steps").format(
            verdict=_(VERDICTS[run.verdict]), lr=f"{run.learning_rate:g}", n=run.steps[-1].t
        ),
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def descent_picture(runs):
    """One panel per run: the loss curve and the walk down it, step by step."""
    runs = runs if isinstance(runs, (list, tuple)) else [runs]
    fig, axes = _subplots(1, len(runs), figsize=(5 * len(runs), 4), squeeze=False)
    for ax, run in zip(axes[0], runs):
        _curve_axis(ax, run)
    title = _("Gradient descent on {curve}: w ← w − learning rate × slope").format(
        curve=_(runs[0].curve.formula)
    )
    fig.suptitle(title, wrap=True, fontsize=11)  # wrapped inside the picture
    fig.tight_layout()
    return fig


def animate_descent(run, path, fps: int = 4) -> Path:
    """An animated GIF of the walk: one frame per step, the current slope drawn as a tangent."""
    path = _with_suffix(path, ".gif")
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = _subplots(figsize=(5.5, 4))
    steps = run.steps[:60]

    def frame(i):
        ax.clear()
        partial = type(run)(run.curve, run.learning_rate, steps[: i + 1], run.verdict)
        _curve_axis(ax, partial, limits=_walk_limits(run))  # the same axes in every frame
        s = steps[i]
        span = np.linspace(s.w - 0.6, s.w + 0.6, 2)
        ax.plot(
            span,
            s.C + s.slope * (span - s.w),
            color="tab:orange",
            lw=2,
            label=_("slope {slope}").format(slope=f"{s.slope:.3g}"),
        )
        ax.set_title(_("step {t}").format(t=s.t) + f": w = {s.w:.4g}, C = {s.C:.4g}", fontsize=10)

    animation = FuncAnimation(fig, frame, frames=len(steps))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(path, writer=PillowWriter(fps=fps))
    return path


def optimizer_paths(paths, surface):
    """Contours of a two-weight loss ``surface(w)`` and each optimizer's path across it."""
    points = np.concatenate(list(paths.values()))
    lo, hi = points.min(axis=0) - 0.8, points.max(axis=0) + 0.8
    w1, w2 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    fig, ax = _subplots(figsize=(7, 4.5))
    ax.contour(
        w1, w2, surface(np.stack([w1, w2], axis=-1)), levels=25, cmap="Greys", linewidths=0.7
    )
    for (name, path), color in zip(paths.items(), ("tab:red", "tab:blue", "tab:green")):
        ax.plot(
            path[:, 0],
            path[:, 1],
            "o-",
            ms=2.5,
            lw=1.2,
            color=color,
            label=_("{name} ({n} steps)").format(name=name, n=len(path) - 1),
        )
    ax.plot(*points[0], "ko", ms=7, label=_("start"))
    ax.set_xlabel("w₁")
    ax.set_ylabel("w₂")
    ax.set_title(_("The same start, three optimizers: C(w₁, w₂) = w₁²/2 + 5·w₂²"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- the model as a picture ----------------------------------------------------------------------


def _dense_chain(model):
    """[(label, width, W or None, activation)] for a chain of Dense layers (the deck's picture),
    or None when the model has branches or other layers that change the width."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    nodes = [n for n in model.nodes if type(n.layer).__name__ != "InputLayer"]
    if any(len(n.inputs) != 1 for n in nodes):
        return None
    columns = [("input", model.inputs[0].shape[-1], None, None, None)]
    for n in nodes:
        kind = type(n.layer).__name__
        if kind == "Dense":
            act = n.layer.activation.name
            b = n.layer.params.get("b")
            columns.append((n.layer.name, n.layer.units, n.layer.params["W"], b, act))
        elif kind not in ("Dropout", "Activation") or len(n.output.shape) != 2:
            return None
    return columns if len(model.inputs[0].shape) == 2 else None


def _shown(width: int, max_neurons: int) -> list[int | None]:
    """Which neurons of a layer to draw: all, or the first ones, a gap (None) and the last."""
    if width <= max_neurons:
        return list(range(width))
    return [*range(max_neurons - 2), None, width - 1]


def _draw_neurons(ax, columns, show_weights, max_neurons):
    xs = np.arange(len(columns)) * 3.0
    positions = []
    small = all(len(_shown(c[1], max_neurons)) <= 4 for c in columns)
    lowest = 0.0
    for x, (label, width, _unused, b, act) in zip(xs, columns):
        shown = _shown(width, max_neurons)
        spacing = 1.7 if small else 1.0  # room for the values of small networks
        ys = (np.linspace(len(shown) - 1, 0, len(shown)) - (len(shown) - 1) / 2) * spacing
        positions.append({i: y for i, y in zip(shown, ys) if i is not None})
        for i, y in zip(shown, ys):
            if i is None:
                ax.text(x, y, "⋮", ha="center", va="center", fontsize=14)
                continue
            ax.add_patch(_circle((x, y), 0.32, label == "input"))
            if show_weights and small and b is not None:
                ax.text(x, y - 0.5, f"b = {b[i]:.2f}", ha="center", va="top", fontsize=7,
                        bbox={"fc": "white", "ec": "none", "pad": 0.3})  # fmt: skip
        lowest = min(lowest, ys.min() - 1.0)
        caption = f"{label}\n{width} {'inputs' if label == 'input' else 'neurons'}"
        ax.text(x, ys.min() - 1.0, caption + (f"\n{act}" if act else ""), ha="center", va="top",
                fontsize=8)  # fmt: skip
    limit = max((np.abs(c[2]).max() for c in columns if c[2] is not None), default=1.0) or 1.0
    for k in range(1, len(columns)):
        W = columns[k][2]  # (n_out, n_in): row i = neuron i's weights, as on the slides
        for i, y_out in positions[k].items():
            for j, y_in in positions[k - 1].items():
                w = W[i, j]
                color = "tab:red" if w > 0 else "tab:blue"
                strength = abs(w) / limit if show_weights else 0.4
                ax.plot([xs[k - 1] + 0.32, xs[k] - 0.32], [y_in, y_out], color=color,
                        lw=0.3 + 2.2 * strength, alpha=0.25 + 0.6 * strength, zorder=0)  # fmt: skip
                if show_weights and small:
                    t = 0.3  # label near the receiving neuron, where lines part
                    ax.text(xs[k - 1] + 0.32 + (1 - t) * 2.36, y_in + (1 - t) * (y_out - y_in),
                            f"{w:.2f}", fontsize=7, ha="center", va="center",
                            bbox={"fc": "white", "ec": "none", "pad": 0.5})  # fmt: skip
    ax.set_xlim(-1, xs[-1] + 1)
    ax.set_ylim(lowest - 1.4, -lowest)  # room for the captions under the columns
    ax.set_aspect("equal")
    ax.axis("off")


def _circle(center, radius, is_input):
    from matplotlib.patches import Circle

    return Circle(center, radius, fc="#dddddd" if is_input else "#fff3c4", ec="black", lw=1)


def _draw_blocks(ax, model, show_shapes, rankdir):
    """One box per layer, arrows along the graph, the inputs first (Keras's block diagram)."""
    layers = model.layers
    depth = {}
    for node in model.nodes:  # the longest path from an input
        parents = [depth.get(id(t.node.layer), 0) for t in node.inputs]
        depth[id(node.layer)] = max([depth.get(id(node.layer), 0)] + [p + 1 for p in parents])
    rows: dict[int, list] = {}
    for layer in layers:
        rows.setdefault(depth.get(id(layer), 0), []).append(layer)
    where = {}
    for d, row in rows.items():
        for k, layer in enumerate(row):
            across = (k - (len(row) - 1) / 2) * 3.2
            where[id(layer)] = (across, -d * 1.6) if rankdir == "TB" else (d * 3.6, -across / 2)
    for layer in layers:
        x, y = where[id(layer)]
        text = f"{layer.name}\n{type(layer).__name__}"
        if show_shapes and layer.output_shape is not None:
            text += f"\n{layer.output_shape}"
        ax.text(x, y, text, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": "#fff3c4", "ec": "black"})  # fmt: skip
    for node in model.nodes:
        for t in node.inputs:
            (x0, y0), (x1, y1) = where[id(t.node.layer)], where[id(node.layer)]
            ax.annotate("", (x1, y1 + (0.45 if rankdir == "TB" else 0)),
                        (x0, y0 - (0.45 if rankdir == "TB" else 0)),
                        arrowprops={"arrowstyle": "->", "color": "gray"})  # fmt: skip
    xs, ys = zip(*where.values())
    ax.set_xlim(min(xs) - 2, max(xs) + 2)
    ax.set_ylim(min(ys) - 1, max(ys) + 1)
    ax.axis("off")


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=False, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, show_weights=False,
               max_neurons=10) -> Path:  # fmt: skip
    """Draw ``model`` to ``to_file`` with matplotlib (no graphviz), as ``keras.utils.plot_model``.

    A chain of Dense layers is drawn as the deck draws a network: a circle per neuron, a line per
    weight — red positive, blue negative, and with ``show_weights`` as thick as the weight is
    large, with the values written on small networks. Wide layers show their first neurons, a
    gap and the last. Any other model is drawn as boxes, one per layer, with arrows along the
    graph. Returns the path written.
    """
    if not getattr(model, "built", False):
        raise ValueError("plot_model needs a built model: give it an Input(shape=...) first.")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"Received rankdir={rankdir!r}. Expected 'TB' or 'LR'.")
    columns = _dense_chain(model)
    if columns is not None:
        tallest = max(len(_shown(c[1], max_neurons)) for c in columns)
        fig, ax = _subplots(figsize=(2.2 * len(columns) + 1, 0.55 * tallest + 1.6))
        _draw_neurons(ax, columns, show_weights, max_neurons)
    else:
        depth = len(model.layers)
        fig, ax = _subplots(figsize=(7, 1.1 * depth + 1) if rankdir == "TB" else (
            1.8 * depth + 2, 4))  # fmt: skip
        _draw_blocks(ax, model, show_shapes, rankdir)
    ax.set_title(f'Model "{model.name}"', fontsize=10)
    return save(fig, to_file, dpi=min(int(dpi), 300))

"""``Model.summary()``: Keras's table of layers, output shapes and parameter counts."""

from __future__ import annotations

import textwrap

from glassnet.backend import (
    format_shape,
    xp,
)
from glassnet.layers import (
    Node,
)
from glassnet.models.checks import _readable_size

__all__ = ["Summary"]


class Summary:
    """The summary table, in Keras's format."""

    # ---- summary ------------------------------------------------------------------------------

    def _sequential_like(self) -> bool:
        return (
            all(len(node.inputs) <= 1 for node in self._nodes)
            and all(count <= 1 for count in self._consumers.values())
            and len(self.outputs) == 1
            and not self._shared
        )

    def _summary_rows(self) -> list[tuple]:
        rows, listed = [], {id(layer) for layer in self.layers}
        for node in self._nodes:
            layer = node.layer
            if id(layer) not in listed:
                continue  # Sequential lists no input layer
            connected = ", ".join(
                f"{t.node.layer.name}[{self._node_index(t.node)}][{t.index}]" for t in node.inputs
            )
            shape = [t.shape for t in node.outputs] if node.several else node.output.shape
            rows.append(
                (
                    f"{layer.name} ({type(layer).__name__})",
                    "[" + ", ".join(map(format_shape, shape)) + "]"
                    if node.several
                    else format_shape(shape),
                    f"{layer.count_params():,}",
                    connected or "-",
                )
            )
        return rows

    def _node_index(self, node: Node) -> int:
        return [n for n in self._nodes if n.layer is node.layer].index(node)

    # Keras's table, drawn row by row as Keras draws it: its format is the reason for the length.
    def summary(
        self,
        line_length=None,
        positions=None,
        print_fn=None,
        expand_nested=False,
        show_trainable=False,
        layer_range=None,
    ) -> None:
        """Print Keras's table: each layer, its output shape and parameter count, then totals;
        for a model with branches, also what each layer is connected to."""
        print_fn = print_fn or print
        if self.built:
            connected = not self._sequential_like()
            rows = self._summary_rows()
        else:  # Keras lists the layers still waiting for their input shape
            connected = False
            rows = [
                (f"{layer.name} ({type(layer).__name__})", "?", "0 (unbuilt)", "")
                for layer in self.layers
            ]
        if not connected:
            rows = [row[:3] for row in rows]
        widths = (33, 24, 15)
        if connected:
            widths = (30, 22, 11, max(26, 2 + max(len(row[3]) for row in rows)))
        header = ("Layer (type)", "Output Shape", "Param #", "Connected to")[: len(widths)]

        def line(left, mid, right, fill):
            return left + mid.join(fill * w for w in widths) + right

        def row(cells, bar) -> list[str]:
            """The cells side by side; one too long for its column wraps, as in Keras."""
            wrapped = [textwrap.wrap(str(cell), w - 2) or [""] for cell, w in zip(cells, widths)]
            out = []
            for depth in range(max(len(parts) for parts in wrapped)):
                parts = []
                for k, (lines_k, w) in enumerate(zip(wrapped, widths)):
                    cell = lines_k[depth] if depth < len(lines_k) else ""
                    parts.append(f" {cell:>{w - 2}} " if k == 2 else f" {cell:<{w - 2}} ")
                out.append(bar + bar.join(parts) + bar)
            return out

        lines = [
            f'Model: "{self.name}"',
            line("┏", "┳", "┓", "━"),
            *row(header, "┃"),
            line("┡", "╇", "┩", "━"),
        ]
        for i, cells in enumerate(rows):
            lines.extend(row(cells, "│"))
            lines.append(
                line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─")
            )
        total = self.count_params() if self.built else 0
        trainable = sum(int(p.size) for p, _ in self.trainable_pairs()) if self.built else 0
        itemsize = xp.dtype(self.compute_dtype).itemsize
        for label, count in (
            ("Total", total),
            ("Trainable", trainable),
            ("Non-trainable", total - trainable),
        ):
            lines.append(f" {label} params: {count:,} ({_readable_size(count * itemsize)})")
        for text in lines:
            print_fn(text)

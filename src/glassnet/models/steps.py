"""The step protocol: the loss at the outputs (case 1 where it applies), backpropagate, one
training step; and the checks that data fits the model before a step sees it."""

from __future__ import annotations

import inspect
import math

from glassnet import distribution, ops
from glassnet import losses as losses_module
from glassnet.backend import (
    fits,
    format_shape,
    process_index,
    xp,
)
from glassnet.callbacks import CallbackList, History, ProgbarLogger
from glassnet.layers import (
    Node,
)
from glassnet.layers.base import added_loss_scale
from glassnet.models.checks import _as_array, _per_output

__all__ = ["Steps"]


def _as_model_input(x, tensor, what: str):
    """``x`` checked against what its model input takes: text only for an
    ``Input(dtype="string")``, numbers for any other; and, as Keras's functional models do, one
    trailing axis of size 1 added or dropped where that is all that differs ((n, 28, 28) into an
    ``Input((28, 28, 1))``; a (n,) array of texts into ``Input((1,), dtype="string")``)."""
    takes_text = getattr(getattr(tensor, "node", None), "layer", None)
    takes_text = getattr(takes_text, "input_dtype", None) == "string"
    if x.dtype.kind == "U" and not takes_text:
        raise TypeError(
            f"{what} holds strings, but the model's input takes numbers. Start the model with "
            "Input(shape=(1,), dtype='string') and a TextVectorization or StringLookup layer, "
            "or turn the strings into numbers first."
        )
    if takes_text and x.dtype.kind != "U":
        raise TypeError(
            f"{what} must hold strings: the model's input is Input(dtype='string'); received "
            f"an array of {x.dtype}."
        )
    rank = len(tensor.shape)
    if x.ndim == rank - 1 and tensor.shape[-1] == 1:
        return x.reshape(*x.shape, 1)
    if x.ndim == rank + 1 and x.shape[-1] == 1:
        return x.reshape(x.shape[:-1])
    return x


class Steps:
    """The step protocol and the data checks, on a model's graph."""

    def case_1(self, index: int = 0) -> bool:
        """Whether output ``index`` uses the deck's case 1: its softmax (or sigmoid) layer meets
        the matching cross-entropy, so the loss gives ∂C/∂z = (a − y)/rows directly."""
        if self._case_1_flags is None:
            self._case_1_flags = [self._uses_case_1(i) for i in range(len(self.outputs))]
        return self._case_1_flags[index]

    def _uses_case_1(self, index: int) -> bool:
        loss, tensor = self.output_losses[index], self.outputs[index]
        layer = tensor.node.layer
        return (
            loss is not None
            and not loss.from_logits
            and loss.output_activation is not None
            and getattr(layer, "activation", None) is loss.output_activation
            and hasattr(layer, "backward_from_z")
            and id(layer) not in self._shared
            and self._consumers.get(id(tensor), 0) == 0
        )

    def _loss_terms(self, ys: list, outs: list, caches: dict, sws=None) -> list[float]:
        """C of each output (before loss_weights; with sample weights ``sws`` if given), from z
        where case 1 applies (stable for any logits)."""
        terms = []
        for i, (loss, y, out) in enumerate(zip(self.output_losses, ys, outs)):
            w = None if sws is None else sws[i]
            if loss is None:
                terms.append(0.0)
            elif self.case_1(i):
                z = self.cache_of(self.outputs[i].node, caches).z  # (rows, k)
                terms.append(float(loss.C_from_z(y, z.reshape(out.shape), w)))
            else:
                terms.append(float(loss.C(y, out, w)))
        return terms

    def cache_of(self, node: Node, caches: dict | None = None):
        """Where ``node`` stored its values in the training pass (or in ``caches``)."""
        cache = (self._training_caches if caches is None else caches)[id(node)]
        return node.layer if cache is None else cache

    def loss_value(self, y, out, sample_weight=None) -> float:
        """C = Σ weight·C_output for targets ``y`` after the training ``forward`` gave ``out``."""
        sws = self._as_weights(sample_weight)
        return self._loss_total(
            self._as_targets(y), self._as_outputs(out), self._training_caches, sws
        )

    def _loss_total(self, ys: list, outs: list, caches: dict, sws=None) -> float:
        """C: the outputs' losses, weighted, plus Ω(W) of each regularized parameter."""
        return self._output_total(ys, outs, caches, sws) + self.regularization()

    def _output_total(self, ys: list, outs: list, caches: dict, sws=None) -> float:
        terms = self._loss_terms(ys, outs, caches, sws)
        return float(sum(w * c for w, c in zip(self.loss_weights, terms)))

    def regularization(self, gradients: bool = False, scale: float = 1.0) -> float:
        """Σ Ω(W) over every regularized parameter (``kernel_regularizer=…``); with
        ``gradients``, each one's scale·∂Ω/∂W added to its ∂C/∂W (``Layer.regularization``)."""
        return sum(layer.regularization(gradients, scale) for layer in self._regularized_layers())

    def _regularized_layers(self) -> list:
        """The layers that carry a regularizer (``kernel_regularizer=…``), found once."""
        if self._regularized is None:
            self._regularized = [
                layer
                for layer in self.leaf_layers()
                if any(owner.regularizers for owner in layer.owners_of_arrays())
            ]
        return self._regularized

    def added_loss(self) -> float:
        """The sum of what ``add_loss`` was given in the last training forward pass."""
        return self._sum_of(self._added_in_forward)

    @staticmethod
    def _sum_of(added: list) -> float:
        """The sum of the values of what ``add_loss`` was given (each summed, as C takes it)."""
        return sum(float(xp.sum(ops.convert_to_numpy(v))) for v in added)

    def backpropagate(self, y, out, sample_weight=None, share: float = 1.0) -> float:
        """The backward pass for targets ``y``: returns C and leaves every layer's gradients set.

        At each output: case 1 (∂C/∂z from the loss) where it applies, else ∂C/∂a = the loss's
        derivative; then the recursion through every earlier node. With ``sample_weight``,
        C = mean(wᵢ·Cᵢ), so each sample's row of ∂C/∂a (or ∂C/∂z) is scaled by its wᵢ. With
        ``share`` (this process's part of a batch split between processes, b_r/B) the
        gradients come out multiplied by it: every gradient is linear in the output's, so
        scaling that small array scales them all, and C stays this part's own mean.
        """
        ys, outs = self._as_targets(y), self._as_outputs(out)
        sws = self._as_weights(sample_weight)
        dC_douts, dC_dz_at = {}, {}
        for i, (loss, weight, y_i, out_i) in enumerate(
            zip(self.output_losses, self.loss_weights, ys, outs)
        ):
            if loss is None:
                continue
            tensor = self.outputs[i]
            g = loss.dC_dz(y_i, out_i) if self.case_1(i) else loss.gradient(y_i, out_i)
            if sws is not None and sws[i] is not None:  # one weight per row of ∂C/∂a
                g = g * losses_module.weights_like(sws[i], out_i[..., 0])[..., None]
            if weight * share != 1:
                g = g * (weight * share)
            if self.case_1(i):  # out_i is the output layer's a
                dC_dz_at[id(tensor.node)] = g
            else:
                dC_douts[id(tensor)] = g
        if not (dC_douts or dC_dz_at or self._added_in_forward or self._regularized_layers()):
            raise ValueError(
                "No loss to compute: pass a loss to compile(), e.g. "
                "loss='categorical_crossentropy' (valid names: "
                f"{', '.join(sorted(losses_module.NAMES))}), or add one in a layer's call() "
                "with self.add_loss(...)."
            )
        C = self._output_total(ys, outs, self._training_caches, sws)
        with added_loss_scale(share):  # an added loss's slope: this process's share of it too
            self._backward_graph(dC_douts, dC_dz_at, self._training_caches)
        # The losses the layers added, and Ω(W): their slopes went back with the rest, or go now.
        return C + self.added_loss() + self.regularization(gradients=True, scale=share)

    def _as_weights(self, sample_weight):
        """Sample weights per output, or None: one array (one output), a list or a dict."""
        if sample_weight is None:
            return None
        if isinstance(sample_weight, dict):
            return _per_output(sample_weight, self.output_names, "sample_weight")
        if isinstance(sample_weight, (list, tuple)) and len(self.outputs) > 1:
            return list(sample_weight)
        if isinstance(sample_weight, list) and len(sample_weight) == 1:
            return sample_weight
        return [sample_weight] * len(self.outputs)

    def _as_outputs(self, out) -> list:
        return list(out) if len(self.outputs) > 1 else [out]

    def _as_targets(self, y) -> list:
        if len(self.outputs) == 1:
            return [y[0] if isinstance(y, list) and len(y) == 1 else y]
        return list(y)

    def trainable_pairs(self) -> list:
        """(parameter, gradient) pairs that the optimizer updates, in Keras's variable order:
        views into the model's buffers (``pack_parameters``)."""
        if self._pairs is None:
            self.pack_parameters()
            self._pairs = [
                (layer.params[k], layer.grads[k])
                for layer in self.leaf_layers()
                if layer.trainable and self.trainable
                for k in layer.params
                if k not in layer.non_trainable
            ]
        return self._pairs

    def train_step(self, x, y, training: bool = True, sample_weight=None, share=None):
        """One step of gradient descent: forward, backpropagate, update every parameter.

        Returns (C, out). ``training=False`` keeps dropout off (the glass box uses it). Under
        data-parallel training ``share`` is (this process's rows, the batch's rows): the
        gradients are averaged over the processes, each weighted by its rows, before the update
        (a process with no rows this step sends zeros, so that every process takes the step).
        """
        if share is None or share[0]:
            out = self.forward(x, training=training, fuse=not self.record_layers)
            C = self.backpropagate(
                y, out, sample_weight, 1.0 if share is None else share[0] / share[1]
            )
        else:
            out, C = None, 0.0
            for _, gradients in self.pack_parameters():
                gradients.fill(0)
        if share is not None:
            distribution.active().sum_gradients(self)
        self.optimizer.apply(self.trainable_pairs())
        return C, out

    # ---- data checks ------------------------------------------------------------------------

    def check_data(self, x, y=None, what: str = "x"):
        """Check x (and y) against the model and each other; lists of arrays, one per input
        (output). Builds a model that was waiting for its input shape."""
        xs = self._input_list(x, what)
        if not self.built:
            self.build((None, *xs[0].shape[1:]))
        for i, t in enumerate(self.inputs[: len(xs)]):
            name = f"{what}[{i}]" if len(xs) > 1 else what
            xs[i] = _as_model_input(xs[i], t, name)
            self._check_input_shape(xs[i], t, name)
        n = len(xs[0])
        if any(len(arr) != n for arr in xs):
            raise ValueError(
                f"All inputs must hold the same number of samples; received {[len(a) for a in xs]}."
            )
        if y is None:
            return xs, None
        ys = self._target_list(y)
        checked = []
        for arr, loss, t in zip(ys, self.output_losses, self.outputs):
            if len(arr) != n:
                raise ValueError(
                    f"x and y must hold the same number of samples; received x with {n} and "
                    f"y with {len(arr)}."
                )
            if loss is not None:
                arr = loss.check_targets(arr, t.shape)
                if arr.dtype.kind == "f":  # float targets in the model's float type
                    arr = arr.astype(self.compute_dtype, copy=False)
            checked.append(arr)
        return xs, checked

    def _input_list(self, x, what) -> list:
        if x is None:
            raise ValueError(f"Received {what}=None. Expected an array of samples.")
        if isinstance(x, dict):
            missing = [name for name in self.input_names if name not in x]
            if missing:
                raise ValueError(
                    f"{what} is a dict without the model input(s) {missing}; its keys are "
                    f"{sorted(map(str, x))}."
                )
            x = [x[name] for name in self.input_names]
        elif isinstance(x, (list, tuple)) and len(self.inputs) > 1:
            if len(x) != len(self.inputs):
                raise ValueError(
                    f"The model has {len(self.inputs)} inputs ({', '.join(self.input_names)}); "
                    f"received a list of {len(x)} arrays."
                )
        else:
            x = [x]
        return [_as_array(arr, what) for arr in x]

    def _no_targets(self, x):
        """For ``fit(x)`` with no y: allowed where no output has a loss (the layers add theirs,
        ``add_loss``), as Keras allows it; each output then gets a column nobody reads."""
        if not (self.built and self.output_losses and all(
                loss is None for loss in self.output_losses)):  # fmt: skip
            raise ValueError(
                "Received y=None. Expected the targets, one per sample of x: model.fit(x, y, ...)."
            )
        rows = len(self._input_list(x, "x")[0])
        columns = [xp.zeros((rows, 1), dtype=self.compute_dtype) for _ in self.outputs]
        return columns if len(columns) > 1 else columns[0]

    def _target_list(self, y) -> list:
        n_out = len(self.outputs)
        if isinstance(y, dict):
            y = _per_output(y, self.output_names, "y")
        elif n_out > 1:
            if not isinstance(y, (list, tuple)) or len(y) != n_out:
                raise ValueError(
                    f"The model has {n_out} outputs ({', '.join(self.output_names)}); y must be a "
                    f"list of {n_out} arrays or a dict by output name."
                )
        else:
            y = [y]
        out = []
        for arr in y:
            if arr is None:
                raise ValueError("Received y=None. Expected the targets, one per sample.")
            try:
                arr = xp.asarray(arr)
            except ValueError:
                raise ValueError(
                    "y could not be made into one array: its entries have different shapes."
                ) from None
            if arr.ndim == 0:
                raise ValueError(
                    "y must be an array of targets, one per sample; received a scalar."
                )
            out.append(arr)
        return out

    def _check_input_shape(self, x, tensor, what) -> None:
        expected = tensor.shape
        if fits(x.shape[1:], expected[1:]):
            return
        hint = ""
        if len(expected) == 2 and x.ndim > 2 and math.prod(x.shape[1:]) == expected[1]:
            hint = (
                f" Flatten each sample first: x.reshape(len(x), {expected[1]}), "
                "or start the model with a Flatten layer."
            )
        elif len(expected) > 2 and math.prod(x.shape[1:]) == math.prod(expected[1:]):
            shape = ", ".join(str(d) for d in expected[1:])
            hint = (
                f" The sizes agree: reshape each sample first, x.reshape(-1, {shape}), or start "
                f"the model with layers.Reshape(({shape}))."
            )
        detail = ""
        first = next((n.layer for n in self._nodes if tensor in n.inputs), None)
        if hasattr(first, "_shape_error") and len(expected) == x.ndim:
            detail = " " + first._shape_error(x.shape)
        raise ValueError(
            f"Input {what} has shape {x.shape}, but the model expects "
            f"{format_shape(expected)}.{hint}{detail}"
        )

    def _require_compiled(self, method):
        for hook in ("train_step", "test_step", "predict_step"):  # Keras's step overrides
            own = getattr(type(self), hook, None)
            if (
                own is not None
                and own is not getattr(Steps, hook, None)
                and ("y" not in inspect.signature(own).parameters)
            ):
                raise NotImplementedError(
                    f"{type(self).__name__} overrides {hook}(self, data), Keras's hook for a "
                    "training step of your own written with a backend's automatic "
                    "differentiation (GradientTape, jax.grad, torch autograd), which glassnet "
                    "does not have: its step is forward, the loss, the deck's backward recursion "
                    "and the optimizer. Write the computation in call() with glassnet.ops and the "
                    "loss as a function given to compile(); both are differentiated op by op."
                )
        if not self.compiled:
            raise RuntimeError(
                f"You must call compile() before {method}(): e.g. model.compile("
                "optimizer='rmsprop', loss='categorical_crossentropy', metrics=['accuracy'])."
            )

    def _make_callbacks(self, callbacks, verbose, params, history=False):
        callbacks = list(callbacks or [])
        verbose = verbose if process_index() == 0 else 0  # one progress bar: rank 0's
        if verbose and not any(isinstance(cb, ProgbarLogger) for cb in callbacks):
            callbacks.insert(0, ProgbarLogger(verbose=verbose))
        if history:
            self.history = History()
            callbacks.append(self.history)
        return CallbackList(callbacks, model=self, params=params)

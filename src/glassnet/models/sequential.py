"""``Sequential``: a stack of layers, trained by the deck's forward and backward passes.

The forward pass runs the layers in order, each caching what its backward step needs. The backward
pass starts at the output layer (the deck's case 1: for softmax with cross-entropy ∂C/∂z = (a − y) /
batch comes straight from the loss) and recurses through the earlier layers in reverse (case 2:
∂C/∂z = σ′(z) ⊙ (∂C/∂z_next · W_next)). Then the optimizer steps every parameter. ``fit`` is the one
training loop; everything optional in it — progress, History, early stopping, checkpoints — is a
callback.
"""

from __future__ import annotations

import math
import numbers

from glassnet import losses as losses_module
from glassnet import metrics as metrics_module
from glassnet import optimizers as optimizers_module
from glassnet.backend import floatx, make_rng, unique_name, xp
from glassnet.callbacks import CallbackList, History, ProgbarLogger
from glassnet.layers import InputLayer, Layer, deserialize, serialize
from glassnet.layers.base import format_shape

__all__ = ["Sequential"]


def _check_batch_size(batch_size):
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size <= 0
    ):
        raise ValueError(f"Received batch_size={batch_size!r}. Expected a positive integer.")
    return int(batch_size)


def _as_array(data, what: str):
    if data is None:
        raise ValueError(f"Received {what}=None. Expected an array of samples.")
    arr = xp.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers; received an array of dtype {arr.dtype}.")
    if arr.ndim == 0:
        raise ValueError(f"{what} must be an array of samples; received a scalar.")
    if len(arr) == 0:
        raise ValueError(f"Received an empty dataset: {what} has shape {arr.shape}, 0 samples.")
    # A sum propagates NaN and ±inf: one pass, no temporary the size of the data. A sum can
    # also overflow on finite data, so only then are the samples counted one by one.
    with xp.errstate(over="ignore"):
        total = arr.sum() if arr.dtype.kind == "f" else 0
    if not xp.isfinite(total):
        bad = int((~xp.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
        if bad:
            raise ValueError(
                f"{what} contains NaN or infinity in {bad} sample(s); clean or impute them first."
            )
    return arr


def _readable_size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return ""  # unreachable


class Sequential:
    """A linear stack of layers, as ``keras.Sequential``.

    >>> from glassnet.layers import Dense, Input
    >>> model = Sequential([Input(shape=(2,)), Dense(3, activation="relu"), Dense(1)])
    >>> model.count_params()
    13
    >>> model.output_shape
    (None, 1)
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name or unique_name("sequential")
        self.trainable = trainable
        self.input_layer: InputLayer | None = None
        self._layers: list[Layer] = []
        self._pairs = None  # (W, ∂C/∂W) pairs the optimizer updates, made on first use
        self.built = False
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self._metric_names: list = []
        self.stop_training = False
        self.history: History | None = None
        self._rng = make_rng()
        for layer in layers or []:
            self.add(layer)

    # ---- building ---------------------------------------------------------------------------

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer) -> None:
        """Append a layer; an ``Input`` first fixes the input shape and builds the model."""
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Only glassnet layers can be added to a Sequential model; received {layer!r} "
                f"of type {type(layer).__name__}."
            )
        if isinstance(layer, InputLayer):
            if self._layers or self.input_layer is not None:
                raise ValueError("An Input can only be the first entry of a Sequential model.")
            self.input_layer = layer
            self.build(layer.batch_shape)
            return
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers in a model need unique names; {layer.name!r} is taken.")
        if not self._layers and self.input_layer is None and layer.requested_input_shape:
            self.input_layer = InputLayer(shape=layer.requested_input_shape)
        self._layers.append(layer)
        self.built = False
        if self.input_layer is not None:
            self.build(self.input_layer.batch_shape)

    def pop(self) -> Layer:
        layer = self._layers.pop()
        self.built = False
        return layer

    def build(self, input_shape=None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is None:
            if self.input_layer is None:
                raise ValueError("build() needs an input_shape, e.g. model.build((None, 784)).")
            input_shape = self.input_layer.batch_shape
        shape = tuple(input_shape)
        if self.input_layer is None or self.input_layer.batch_shape[1:] != shape[1:]:
            self.input_layer = InputLayer(batch_shape=shape)
        for i, layer in enumerate(self._layers):
            if not layer.built:
                layer.build(shape)
            elif tuple(layer.input_shape[1:]) != tuple(shape[1:]):
                raise ValueError(
                    f"Layer {i + 1} ({layer.name!r}) was built for inputs {layer.input_shape}, "
                    f"but the layer before it gives {format_shape(shape)}."
                )
            layer.needs_input_gradient = i > 0
            shape = layer.output_shape
        self.built = bool(self._layers)
        self._pairs = None

    @property
    def input_shape(self):
        return None if self.input_layer is None else self.input_layer.batch_shape

    @property
    def output_shape(self):
        return self._layers[-1].output_shape if self.built else None

    # ---- compiling --------------------------------------------------------------------------

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        """Choose the optimizer, the loss and the metrics, by name or as objects."""
        if loss_weights is not None or weighted_metrics is not None:
            raise NotImplementedError("loss_weights and weighted_metrics are not supported yet.")
        if loss is None:
            raise ValueError(
                "compile() needs a loss, e.g. loss='categorical_crossentropy'. Valid names: "
                "binary_crossentropy, categorical_crossentropy, mean_absolute_error, "
                "mean_squared_error, sparse_categorical_crossentropy."
            )
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        if isinstance(metrics, (str, metrics_module.Metric)):
            metrics = [metrics]
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"Expected metrics to be a list; received {metrics!r}.")
        for metric in metrics or []:
            if isinstance(metric, str):  # fail now, not at fit time, for an unknown name
                metrics_module.get(metric, y_true=xp.zeros(1), y_pred=xp.zeros((1, 2)))
        self._metric_names = list(metrics or [])
        self._pairs = None  # which layers are trainable may have changed: Keras recompiles too
        self.compiled = True

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *[m if isinstance(m, str) else m.name for m in self._metric_names]]

    def _make_metrics(self, y, output_shape) -> list[metrics_module.Metric]:
        y_pred = xp.empty((1, *output_shape[1:]))
        return [metrics_module.get(m, y_true=y, y_pred=y_pred) for m in self._metric_names]

    @property
    def _fused_output(self) -> bool:
        """True when the deck's case 1 applies: softmax (or sigmoid) output + cross-entropy."""
        last = self._layers[-1]
        return (
            not self.loss.from_logits
            and self.loss.output_activation is not None
            and getattr(last, "activation", None) is self.loss.output_activation
        )

    # ---- the two passes ---------------------------------------------------------------------

    def forward(self, x, training=False):
        """The forward pass: each layer computes its output and stores what backward needs."""
        a = x
        for layer in self._layers:
            a = layer.forward(a, training=training)
        return a

    def backward(self, y, out) -> float:
        """The backward pass for targets ``y``: returns C and leaves every layer's gradients set."""
        last = self._layers[-1]
        if self._fused_output:
            # Case 1: the output layer's ∂C/∂z = (a − y)/batch straight from the loss.
            C = self.loss.C_from_z(y, last.z)
            dC_da = last.backward_from_z(self.loss.dC_dz(y, out))
            earlier = self._layers[-2::-1]
        else:
            C = self.loss.C(y, out)
            dC_da = self.loss.gradient(y, out)
            earlier = self._layers[::-1]
        # Case 2: each earlier layer gets ∂C/∂(its output) from the layer after it.
        for layer in earlier:
            dC_da = layer.backward(dC_da)
        return float(C)

    def _loss_value(self, y, out) -> float:
        if self._fused_output:
            return float(self.loss.C_from_z(y, self._layers[-1].z))
        return float(self.loss.C(y, out))

    def _param_grad_pairs(self):
        if self._pairs is None:
            self._pairs = [
                (layer.params[k], layer.grads[k])
                for layer in self._layers
                if layer.trainable and self.trainable
                for k in layer.params
            ]
        return self._pairs

    def _train_step(self, xb, yb, training=True):
        """Forward, backward, one optimizer update; ``training=False`` keeps dropout off."""
        out = self.forward(xb, training=training)
        C = self.backward(yb, out)
        self.optimizer.apply(self._param_grad_pairs())
        return C, out

    # ---- data checks ------------------------------------------------------------------------

    def _prepare(self, x, y=None, what="x"):
        """Check x (and y) against the model and each other; build the model if needed."""
        x = _as_array(x, what)
        if not self.built:
            if not self._layers:
                raise ValueError("The model has no layers; add some with model.add(...).")
            self.build((None, *x.shape[1:]))
        expected = self.input_layer.batch_shape
        if x.shape[1:] != tuple(expected[1:]):
            first = self._layers[0]
            hint = ""
            if len(expected) == 2 and x.ndim > 2 and math.prod(x.shape[1:]) == expected[1]:
                hint = (
                    f" Flatten each sample first: x.reshape(len(x), {expected[1]}), "
                    "or start the model with a Flatten layer."
                )
            detail = (
                first._shape_error(x.shape)
                if hasattr(first, "_shape_error") and len(expected) == x.ndim
                else ""
            )
            raise ValueError(
                f"Input {what} has shape {x.shape}, but the model expects "
                f"{format_shape(expected)}.{hint} {detail}".rstrip()
            )
        if y is None:
            return x, None
        if len(y) != len(x):
            raise ValueError(
                f"x and y must hold the same number of samples; received x with {len(x)} and "
                f"y with {len(y)}."
            )
        return x, self.loss.check_targets(y, self.output_shape)

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(
                f"You must call compile() before {method}(): e.g. model.compile("
                "optimizer='rmsprop', loss='categorical_crossentropy', metrics=['accuracy'])."
            )

    def _batches(self, n, batch_size, order=None):
        for start in range(0, n, batch_size):
            yield (
                slice(start, start + batch_size)
                if order is None
                else order[start : start + batch_size]
            )

    def _make_callbacks(self, callbacks, verbose, params, history=False):
        callbacks = list(callbacks or [])
        if verbose and not any(isinstance(cb, ProgbarLogger) for cb in callbacks):
            callbacks.insert(0, ProgbarLogger(verbose=verbose))
        if history:
            self.history = History()
            callbacks.append(self.history)
        return CallbackList(callbacks, model=self, params=params)

    # ---- training ---------------------------------------------------------------------------

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ) -> History:
        """Train for ``epochs`` passes over (x, y); return a ``History``.

        Each step: forward on a batch (storing outputs), backward from the loss (case 1 at the
        output layer, then the recursion), one optimizer update of every W and b.
        """
        self._require_compiled("fit")
        if class_weight is not None or sample_weight is not None or steps_per_epoch is not None:
            raise NotImplementedError(
                "class_weight, sample_weight and steps_per_epoch are not supported yet."
            )
        batch_size = _check_batch_size(batch_size)
        if not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(f"Received epochs={epochs!r}. Expected a non-negative integer.")
        verbose = 1 if verbose == "auto" else verbose
        if not 0 <= validation_split < 1:
            raise ValueError(
                f"Received validation_split={validation_split!r}. Expected a float in [0, 1)."
            )
        x, y = self._prepare(x, y)

        # ---- hold out validation data: given, or the last fraction of x (before shuffling) ----
        if validation_data is not None:
            if len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val).")
            x_val, y_val = self._prepare(validation_data[0], validation_data[1], "x_val")
        elif validation_split:
            n_val = int(len(x) * validation_split)
            if n_val == 0 or n_val == len(x):
                raise ValueError(
                    f"validation_split={validation_split} of {len(x)} samples leaves "
                    "an empty training or validation set."
                )
            x, x_val, y, y_val = x[:-n_val], x[-n_val:], y[:-n_val], y[-n_val:]
        else:
            x_val = y_val = None

        # ---- callbacks and metrics ----
        n = len(x)
        steps = math.ceil(n / batch_size)
        cbs = self._make_callbacks(
            callbacks,
            verbose,
            history=True,
            params={"verbose": verbose, "epochs": epochs, "steps": steps},
        )
        train_metrics = self._make_metrics(y, self.output_shape)
        loss_tracker = metrics_module.Mean(name="loss")
        batch_logs_wanted = cbs.wants("on_train_batch_end")
        self.stop_training = False
        dtype = floatx()

        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            loss_tracker.reset_state()
            for m in train_metrics:
                m.reset_state()
            order = self._rng.permutation(n) if shuffle else None

            # ---- one pass over the training data, a batch at a time ----
            for step, idx in enumerate(self._batches(n, batch_size, order)):
                cbs.on_train_batch_begin(step)
                xb = xp.asarray(x[idx], dtype=dtype)  # (batch, …): only the batch is converted
                yb = y[idx]
                C, out = self._train_step(xb, yb)
                self.last_batch = (xb, yb, C)  # for callbacks that look inside (glass box)
                loss_tracker.update_state(C, len(xb))
                for m in train_metrics:
                    m.update_state(yb, out)
                if batch_logs_wanted:
                    cbs.on_train_batch_end(step, self._logs(loss_tracker, train_metrics))
                if self.stop_training:
                    break

            # ---- end of the epoch: validation, logs, callbacks ----
            logs = self._logs(loss_tracker, train_metrics)
            if x_val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_arrays(x_val, y_val, validation_batch_size or batch_size)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs if epochs > initial_epoch else {})
        return self.history

    def _logs(self, loss_tracker, metrics) -> dict:
        logs = {"loss": loss_tracker.result()}
        logs.update({m.name: m.result() for m in metrics})
        return logs

    def _evaluate_arrays(self, x, y, batch_size, cbs=None) -> dict:
        """Loss and metrics over (x, y), batch by batch, in inference mode."""
        metrics = self._make_metrics(y, self.output_shape)
        loss_tracker = metrics_module.Mean(name="loss")
        dtype = floatx()
        for step, idx in enumerate(self._batches(len(x), batch_size)):
            xb = xp.asarray(x[idx], dtype=dtype)
            out = self.forward(xb, training=False)
            loss_tracker.update_state(self._loss_value(y[idx], out), len(xb))
            for m in metrics:
                m.update_state(y[idx], out)
            if cbs is not None:
                cbs.on_test_batch_end(step, self._logs(loss_tracker, metrics))
        return self._logs(loss_tracker, metrics)

    # ---- evaluation and prediction ----------------------------------------------------------

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The loss (and metrics) on (x, y): a float, a list ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else verbose
        x, y = self._prepare(x, y)
        cbs = self._make_callbacks(
            callbacks,
            verbose,
            params={"verbose": verbose, "epochs": 1, "steps": math.ceil(len(x) / batch_size)},
        )
        cbs.on_test_begin()
        logs = self._evaluate_arrays(x, y, batch_size, cbs)
        cbs.on_test_end(logs)
        return self._format_result(logs, return_dict)

    def _format_result(self, logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, computed in batches; an array of shape (n, *output_shape)."""
        batch_size = _check_batch_size(batch_size)
        verbose = 1 if verbose == "auto" else verbose
        x, _ = self._prepare(x)
        cbs = self._make_callbacks(
            callbacks,
            verbose,
            params={"verbose": verbose, "epochs": 1, "steps": math.ceil(len(x) / batch_size)},
        )
        out = xp.empty((len(x), *self.output_shape[1:]), dtype=floatx())
        cbs.on_predict_begin()
        for step, idx in enumerate(self._batches(len(x), batch_size)):
            out[idx] = self.forward(xp.asarray(x[idx], dtype=floatx()), training=False)
            cbs.on_predict_batch_end(step)
        cbs.on_predict_end()
        return out

    def __call__(self, x, training=False):
        x, _ = self._prepare(x)
        return self.forward(xp.asarray(x, dtype=floatx()), training=training)

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns that batch's loss (and metrics)."""
        self._require_compiled("train_on_batch")
        x, y = self._prepare(x, y)
        C, out = self._train_step(xp.asarray(x, dtype=floatx()), y)
        metrics = self._make_metrics(y, self.output_shape)
        for m in metrics:
            m.update_state(y, out)
        return self._format_result(
            {"loss": C, **{m.name: m.result() for m in metrics}}, return_dict
        )

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without training."""
        self._require_compiled("test_on_batch")
        x, y = self._prepare(x, y)
        return self._format_result(self._evaluate_arrays(x, y, len(x)), return_dict)

    def predict_on_batch(self, x):
        """Model outputs for one batch."""
        x, _ = self._prepare(x)
        return self.forward(xp.asarray(x, dtype=floatx()), training=False)

    # ---- weights ------------------------------------------------------------------------------

    def get_weights(self) -> list:
        """All parameters, layer by layer, in Keras's orientation."""
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Set all parameters from a list like ``get_weights`` returns."""
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f"The model has {expected} weight arrays; received {len(weights)}.")
        i = 0
        for layer in self._layers:
            layer.set_weights(weights[i : i + len(layer.params)])
            i += len(layer.params)

    @property
    def weights(self) -> list:
        return self.get_weights()

    @property
    def trainable_weights(self) -> list:
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        if not self.trainable:
            return self.get_weights()
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                "This model has not yet been built: call build() or fit() first, "
                "or start it with an Input(shape=...)."
            )
        return sum(layer.count_params() for layer in self._layers)

    def get_layer(self, name=None, index=None) -> Layer:
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers are: "
            f"{[layer.name for layer in self._layers]}."
        )

    # ---- summary ------------------------------------------------------------------------------

    def summary(
        self,
        line_length=None,
        positions=None,
        print_fn=None,
        expand_nested=False,
        show_trainable=False,
        layer_range=None,
    ) -> None:
        """Print Keras's table: each layer, its output shape and parameter count, then totals."""
        if not self.built:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling `build()` "
                "or by calling `fit()` with some data, or specify an `Input` to the model."
            )
        print_fn = print_fn or print
        widths = (33, 24, 15)
        rows = [
            (
                f"{layer.name} ({type(layer).__name__})",
                format_shape(layer.output_shape),
                f"{layer.count_params():,}",
            )
            for layer in self._layers
        ]

        def line(left, mid, right, fill):
            return left + mid.join(fill * w for w in widths) + right

        def row(cells, bar):
            name, shape, params = cells
            return (
                f"{bar} {name:<{widths[0] - 2}} {bar} {shape:<{widths[1] - 2}} "
                f"{bar} {params:>{widths[2] - 2}} {bar}"
            )

        lines = [
            f'Model: "{self.name}"',
            line("┏", "┳", "┓", "━"),
            row(("Layer (type)", "Output Shape", "Param #"), "┃"),
            line("┡", "╇", "┩", "━"),
        ]
        for i, cells in enumerate(rows):
            lines.append(row(cells, "│"))
            lines.append(
                line("├", "┼", "┤", "─") if i < len(rows) - 1 else line("└", "┴", "┘", "─")
            )
        total = self.count_params()
        trainable = sum(
            layer.count_params() for layer in self._layers if layer.trainable and self.trainable
        )
        itemsize = xp.dtype(floatx()).itemsize
        for label, count in (
            ("Total", total),
            ("Trainable", trainable),
            ("Non-trainable", total - trainable),
        ):
            lines.append(f" {label} params: {count:,} ({_readable_size(count * itemsize)})")
        for text in lines:
            print_fn(text)

    # ---- configuration and saving -------------------------------------------------------------

    def get_config(self) -> dict:
        layers = [serialize(self.input_layer)] if self.input_layer is not None else []
        layers += [serialize(layer) for layer in self._layers]
        return {"name": self.name, "trainable": self.trainable, "dtype": floatx(), "layers": layers}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        layers = [deserialize(entry) for entry in config.get("layers", [])]
        return cls(layers, name=config.get("name"), trainable=config.get("trainable", True))

    def save(self, filepath, overwrite=True) -> None:
        """Save architecture, weights, optimizer state and compile settings to a ``.keras`` file."""
        from glassnet.models import saving  # saving builds models: import it at use

        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True) -> None:
        """Save the weights alone, to a ``.weights.npz`` file."""
        from glassnet.models import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath) -> None:
        """Load weights saved by ``save_weights`` (or the weights inside a ``.keras`` file)."""
        from glassnet.models import saving

        saving.load_weights(self, filepath)

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r}, {len(self._layers)} layers>"

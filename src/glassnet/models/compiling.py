"""compile: a model's optimizer, losses, loss weights and metrics, as Keras takes them."""

from __future__ import annotations

from glassnet import losses as losses_module
from glassnet import metrics as metrics_module
from glassnet import optimizers as optimizers_module
from glassnet.backend import (
    floatx,
    xp,
)
from glassnet.layers import (
    InputLayer,
)
from glassnet.models.checks import _per_output

__all__ = ["Compiling"]


class Compiling:
    """``compile`` and what it resolves: losses per output, the metrics, the float type."""

    # ---- building and compiling ----------------------------------------------------------------

    def build(self, input_shape=None) -> None:
        if not self.built:
            raise ValueError(
                "A functional model is built from its inputs and outputs: "
                "Model(inputs=x, outputs=y)."
            )

    @property
    def compute_dtype(self) -> str:
        """The float type the model computes in: its layers' (``floatx()`` until it has any)."""
        for layer in self.layers:
            if not isinstance(layer, InputLayer):
                return layer.compute_dtype
        return floatx()

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
        """Choose the optimizer, the loss(es) and the metrics, by name or as objects.

        With several outputs, ``loss``, ``loss_weights`` and ``metrics`` may be lists in output
        order or dicts by output name; a single loss applies to every output.
        """
        if weighted_metrics is not None:
            raise NotImplementedError("weighted_metrics is not supported by glassnet yet.")
        self.optimizer = optimizers_module.get(optimizer)
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics}
        if isinstance(loss, dict) and "class_name" in loss:  # one loss, as Keras's config
            loss = losses_module.get(loss)
        self._compile_args["loss"] = loss
        # No loss at all is Keras's too: the model's layers then add theirs (add_loss).
        self.loss = loss if loss is None or isinstance(loss, (list, dict)) else (
            losses_module.get(loss))  # fmt: skip
        self._metric_specs = []
        self.compiled = True
        if self.built:
            self._resolve_compile()
        self._pairs = None  # which layers are trainable may have changed: Keras recompiles too

    def get_compile_config(self) -> dict | None:
        """What ``compile`` was given, as Keras's ``get_compile_config``: the optimizer (the
        object), loss, loss_weights and metrics as passed; None before compile."""
        if not self.compiled:
            return None
        return {"optimizer": self.optimizer, **self._compile_args}

    def _resolve_compile(self) -> None:
        """Per-output losses, weights and metrics, once the outputs are known."""
        self._case_1_flags = None
        args, names = self._compile_args, self.output_names
        self.output_losses = [
            None if spec is None else losses_module.get(spec)
            for spec in _per_output(args["loss"], names, "loss")
        ]
        for loss in self.output_losses:  # training takes C as the mean, Keras's default reduction
            if loss is not None and loss.reduction not in ("sum_over_batch_size", "mean"):
                raise NotImplementedError(
                    f"Training with {loss.name}(reduction={loss.reduction!r}) is not supported "
                    "by glassnet: compile with the default reduction, 'sum_over_batch_size' "
                    "(the loss objects themselves still reduce any way when called)."
                )
        weights = args["loss_weights"]
        self.loss_weights = [
            1.0 if w is None else float(w)
            for w in _per_output(1.0 if weights is None else weights, names, "loss_weights")
        ]
        metrics = args["metrics"]
        if (
            metrics is None
            or isinstance(metrics, (str, metrics_module.Metric))
            or callable(metrics)
        ):
            metrics = [] if metrics is None else [metrics]
        if isinstance(metrics, dict) or (
            len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) for m in metrics)
        ):
            per = _per_output(metrics, names, "metrics")
        elif isinstance(metrics, (list, tuple)):
            per = [list(metrics)] * len(names)
        else:
            raise TypeError(f"Expected metrics to be a list; received {metrics!r}.")
        self._metric_specs = [
            []
            if m is None
            else ([m] if isinstance(m, (str, metrics_module.Metric)) or callable(m) else list(m))
            for m in per
        ]
        for specs in self._metric_specs:  # fail now, not at fit time, for an unknown name
            for m in specs:
                if isinstance(m, str):
                    metrics_module.get(m, y_true=xp.zeros(1), y_pred=xp.zeros((1, 2)))

    @property
    def metrics_names(self) -> list[str]:
        names = ["loss"]
        if len(self.outputs) > 1:
            names += [f"{n}_loss" for n in self.output_names]
        for out_name, specs in zip(self.output_names, self._metric_specs):
            for m in specs:
                name = metrics_module.name_of(m)
                names.append(name if len(self.outputs) == 1 else f"{out_name}_{name}")
        return names

    def _make_metrics(self, ys) -> list[list]:
        """The metrics for one loop, each starting from nothing (a metric object given to
        compile is reused, and reset, as Keras resets it before every fit, evaluate, …)."""
        made = []
        for specs, y, t in zip(self._metric_specs, ys, self.outputs):
            y_pred = xp.empty((1, *(1 if d is None else d for d in t.shape[1:])))  # a free axis
            made.append([metrics_module.get(m, y_true=y, y_pred=y_pred) for m in specs])
        for m in (m for ms in made for m in ms):
            m.reset_state()
        return made

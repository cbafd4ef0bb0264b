"""Learning-rate schedules, as ``keras.optimizers.schedules``: η as a function of the step.

Give one as an optimizer's ``learning_rate``; before each update the optimizer asks it for η at
the step it is about to take (``t`` = 0 for the first update, as Keras counts). Each formula is in
its class's docstring, and ``__call__`` reads like it.

>>> schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
>>> [round(schedule(t), 4) for t in (0, 10, 20)]
[0.1, 0.05, 0.025]
"""

from __future__ import annotations

import math

from glassnet.backend import check_positive, lookup

__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "serialize",
]


class LearningRateSchedule:
    """Base class: ``schedule(t)`` is η at step ``t`` (0, 1, 2, …)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        return cls(**config)


class _StepDecay(LearningRateSchedule):
    """The arguments ExponentialDecay and InverseTimeDecay share; ``_p(t)`` is t / steps, or
    ⌊t / steps⌋ with ``staircase``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = check_positive(
            "initial_learning_rate", initial_learning_rate, True
        )
        self.decay_steps = check_positive("decay_steps", decay_steps)
        self.decay_rate = check_positive("decay_rate", decay_rate, True)
        self.staircase, self.name = bool(staircase), name or type(self).__name__

    def _p(self, step):
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class ExponentialDecay(_StepDecay):
    """η(t) = η₀ · rate^(t / steps); with ``staircase`` the exponent is ⌊t / steps⌋."""

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._p(step)


class PiecewiseConstantDecay(LearningRateSchedule):
    """η(t) = values[0] while t ≤ boundaries[0], values[1] while t ≤ boundaries[1], …, then
    values[-1]."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. Received: "
                f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of "
                f"length {len(values)}."
            )
        if boundaries != sorted(boundaries):
            raise ValueError(
                f"Received boundaries={boundaries}. Expected them in increasing order."
            )
        self.boundaries = boundaries
        self.values = [check_positive("values", v, allow_zero=True) for v in values]
        self.name = name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class InverseTimeDecay(_StepDecay):
    """η(t) = η₀ / (1 + rate · t / steps); with ``staircase``, ⌊t / steps⌋ instead of t / steps."""

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * self._p(step))


class PolynomialDecay(LearningRateSchedule):
    """η(t) = (η₀ − η_end) · (1 − t / steps)^power + η_end, with t held at ``steps`` after it;
    with ``cycle``, ``steps`` grows to the next multiple of itself past t instead."""

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        name="PolynomialDecay",
    ):
        self.initial_learning_rate = check_positive(
            "initial_learning_rate", initial_learning_rate, True
        )
        self.decay_steps = check_positive("decay_steps", decay_steps)
        self.end_learning_rate = check_positive("end_learning_rate", end_learning_rate, True)
        self.power = check_positive("power", power, allow_zero=True)
        self.cycle, self.name = bool(cycle), name

    def __call__(self, step):
        steps = self.decay_steps
        if self.cycle:
            steps = steps * max(1, math.ceil(step / steps))
        else:
            step = min(step, steps)
        fraction = (1 - step / steps) ** self.power
        return (self.initial_learning_rate - self.end_learning_rate) * fraction + (
            self.end_learning_rate
        )

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """η(t) = η₀ · ((1 − α) · ½(1 + cos(π · t / steps)) + α), with t held at ``steps`` after it.

    With ``warmup_steps`` w and ``warmup_target`` η_w: first η rises linearly from η₀ to η_w over
    w steps, then decays as above from η_w, counting t from the end of the warm-up.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        self.initial_learning_rate = check_positive(
            "initial_learning_rate", initial_learning_rate, True
        )
        self.decay_steps = check_positive("decay_steps", decay_steps)
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        self.warmup_target = (
            None if warmup_target is None else check_positive("warmup_target", warmup_target, True)
        )
        self.warmup_steps = check_positive("warmup_steps", warmup_steps, allow_zero=True)
        self.name = name

    def __call__(self, step):
        start = self.initial_learning_rate
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                return start + (self.warmup_target - start) * step / self.warmup_steps
            start, step = self.warmup_target, step - self.warmup_steps
        step = min(step, self.decay_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


_CLASSES = {
    cls.__name__.lower(): cls
    for cls in (
        CosineDecay,
        ExponentialDecay,
        InverseTimeDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
    )
}


def serialize(schedule: LearningRateSchedule) -> dict:
    """Keras's config form of a schedule."""
    return {
        "module": "keras.optimizers.schedules",
        "class_name": type(schedule).__name__,
        "config": schedule.get_config(),
        "registered_name": None,
    }


def deserialize(config: dict) -> LearningRateSchedule:
    """The schedule a Keras config names (only the built-in ones: nothing is executed)."""
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), dict):
        raise ValueError(f"Expected a learning-rate schedule config; received {config!r}.")
    cls = lookup("learning-rate schedule", config.get("class_name", ""), _CLASSES)
    return cls.from_config(dict(config.get("config") or {}))

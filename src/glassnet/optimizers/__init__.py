"""Optimizers: how a gradient becomes a step, with Keras's names, arguments and defaults.

Each optimizer's ``update`` changes a parameter in place, line by line as its docstring's formula
reads, keeping its state (``m``, ``v``, …) in arrays allocated once and reused every step. ``p`` is
a parameter (a W or a b), ``g`` its gradient ∂C/∂p, ``t`` the step number starting at 1.

>>> import numpy as np
>>> w, g = np.array([1.0]), np.array([0.5])
>>> SGD(learning_rate=0.1).apply([(w, g)])   # w ← w − η·g = 1 − 0.1·0.5
>>> w
array([0.95])
"""

from __future__ import annotations

import math

from glassnet import kernels
from glassnet.backend import check_positive, lookup, num_threads, parallel_map, split_evenly, xp
from glassnet.optimizers import schedules

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "get", "names", "schedules"]


def _clip_norm(g, max_norm):
    norm = math.sqrt(float((g * g).sum()))
    return g * (max_norm / norm) if norm > max_norm else g


def _flush_subnormal(average):
    """Set to 0, in place, each entry of a running average whose size is below the smallest
    normal float: a weight whose gradient stays 0 would otherwise carry subnormal numbers, on
    which every operation is a hundred times slower on x86 (``glassnet.kernels`` says more)."""
    average[xp.abs(average) < xp.finfo(average.dtype).tiny] = 0


def _flat(a):
    return a.reshape(-1)  # a view: parameters, gradients and state are contiguous


_SLICE = 1 << 16  # elements; smaller arrays are updated in one piece
_EMPTY = {c: xp.empty(0, dtype=c) for c in "fd"}  # a state the optimizer does not keep
# The kernels' last two scalars per float type: the smallest normal float, below which a running
# average is set to 0 (see ``_flush_subnormal``), and 0.
_FLUSH = {c: (xp.finfo(c).tiny, xp.dtype(c).type(0)) for c in "fd"}


def _side_by_side(states: list[dict]) -> list[dict]:
    """The same state arrays, each kind (and float type) moved into one buffer in order: each
    array a view of its buffer, as the model's parameters are views of theirs."""
    sizes: dict[tuple, int] = {}
    for state in states:
        for k, v in state.items():
            sizes[k, v.dtype.str] = sizes.get((k, v.dtype.str), 0) + v.size
    buffers = {key: xp.empty(n, dtype=key[1]) for key, n in sizes.items()}
    start = dict.fromkeys(sizes, 0)
    moved = []
    for state in states:
        moved.append({})
        for k, v in state.items():
            key = (k, v.dtype.str)
            view = buffers[key][start[key] : start[key] + v.size]
            view[...] = v.reshape(-1)
            start[key] += v.size
            moved[-1][k] = view.reshape(v.shape)
    return moved


def _span(a) -> tuple:
    """(buffer, start, stop): where the contiguous array ``a`` lies in the memory it views."""
    base = a.base if a.base is not None and a.base.ndim == 1 else a
    if not (base.flags.c_contiguous and a.flags.c_contiguous and base.dtype == a.dtype):
        return a, 0, a.size
    start, extra = divmod(a.ctypes.data - base.ctypes.data, a.itemsize)
    inside = not extra and start >= 0 and start + a.size <= base.size
    return (base, start, start + a.size) if inside else (a, 0, a.size)


def _runs(pairs, states) -> list[tuple]:
    """(p, g, state) as flat arrays, where parameters that lie one after the other in memory —
    and so do their gradients and each kind of their state — are joined into one run: the
    same arithmetic on every element, in one kernel call instead of one per parameter."""
    runs: list[list] = []  # [span of p, span of g, {k: span}]
    for (p, g), state in zip(pairs, states):
        spans = [_span(_flat(p)), _span(_flat(g)), {k: _span(_flat(v)) for k, v in state.items()}]
        last = runs[-1] if runs else None
        if last is not None and last[2].keys() == spans[2].keys() and all(
            a[0] is b[0] and a[2] == b[1]
            for a, b in zip([last[0], last[1], *last[2].values()],
                            [spans[0], spans[1], *spans[2].values()])
        ):  # fmt: skip
            last[0], last[1] = _joined(last[0], spans[0]), _joined(last[1], spans[1])
            last[2] = {k: _joined(last[2][k], spans[2][k]) for k in last[2]}
        else:
            runs.append(spans)
    return [(_view(p), _view(g), {k: _view(v) for k, v in state.items()}) for p, g, state in runs]


def _joined(a: tuple, b: tuple) -> tuple:
    return a[0], a[1], b[2]


def _view(span: tuple):
    return span[0][span[1] : span[2]]


def _slices(size: int) -> list[slice]:
    """Cut ``size`` elements into one slice per thread, unless the array is small."""
    return split_evenly(size, min(num_threads(), max(1, size // _SLICE)))


class Optimizer:
    """Base class: turns (parameter, gradient) pairs into in-place updates.

    Args:
        learning_rate: The step size η.
        weight_decay: If set, each step first shrinks p ← p − η·λ·p (decoupled, as in Keras 3).
        clipnorm: If set, each gradient is scaled down so that its norm is at most this.
        clipvalue: If set, each gradient is clipped to [−clipvalue, clipvalue].
        global_clipnorm: If set, all gradients together are scaled to this norm at most.
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
        **kwargs,
    ):
        kwargs.pop("use_ema", None)
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        for arg, value in (
            ("weight_decay", weight_decay),
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        ):
            if value is not None:
                check_positive(arg, value, allow_zero=arg == "weight_decay")
        if isinstance(learning_rate, dict):  # a schedule, as Keras's config writes it
            learning_rate = schedules.deserialize(learning_rate)
        self.schedule = learning_rate if callable(learning_rate) else None
        if self.schedule is None:
            check_positive("learning_rate", learning_rate, allow_zero=True)  # 0 as Keras allows
        elif not isinstance(learning_rate, schedules.LearningRateSchedule):
            raise TypeError(
                f"Received learning_rate={learning_rate!r}. Expected a number or a "
                "glassnet.optimizers.schedules.LearningRateSchedule."
            )
        self._learning_rate = float(self.schedule(0) if self.schedule else learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.state: list[dict] = []  # one dict of state arrays per parameter, in order
        self._work_key = None

    @property
    def learning_rate(self) -> float:
        """η for the next step (the schedule's value at this step, when there is one)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if self.schedule is not None:
            raise TypeError(
                "This optimizer's learning rate follows a schedule "
                f"({type(self.schedule).__name__}); it cannot be set by hand."
            )
        check_positive("learning_rate", value, allow_zero=True)
        self._learning_rate = float(value)

    def build(self, params) -> None:
        """Allocate the state for each parameter (called on the first step), and have the
        kernels compiled (or loaded from the disk cache) now rather than inside a step. Each
        kind of state (m, v, …) lies in one buffer, the parameters' in their order, as a model
        packs its parameters and gradients: a step then updates them all in one run."""
        self.state = _side_by_side([self.init_state(p) for p in params])
        self._work_key = None  # the pieces of work are views of the old state
        if kernels.ENABLED:
            for dtype in {p.dtype for p in params if p.dtype.kind == "f" and p.dtype.itemsize >= 4}:
                nothing = xp.empty(0, dtype)
                self.fused_update(nothing, nothing, self.init_state(nothing))

    def init_state(self, p) -> dict:
        return {}

    def apply(self, params_and_grads) -> None:
        """One step: update every parameter in place from its gradient."""
        pairs = list(params_and_grads)
        if len(self.state) != len(pairs):
            self.build([p for p, _ in pairs])
        if self.schedule is not None:  # η at this step, counted from 0 as Keras counts
            self._learning_rate = float(self.schedule(self.iterations))
        self.iterations += 1
        pairs = self._clip(pairs)
        parallel_map(self._update_piece, self._work(pairs))

    def _work(self, pairs) -> list:
        """The update cut into pieces that can run at once on every core.

        Large parameters are cut into slices (views of the same memory); NumPy releases the GIL
        inside its loops. Same arithmetic on every element either way, so the result is bit for
        bit the same. The pieces are views, so they are made once and reused while the same
        arrays come back (new gradient arrays, as clipping makes, get new pieces).
        """
        key = [(id(p), id(g)) for p, g in pairs]  # cached views keep these arrays alive
        if self._work_key != key:
            work = []
            for p, g, state in _runs(pairs, self.state):
                for piece in _slices(p.size):
                    work.append((p[piece], g[piece], {k: v[piece] for k, v in state.items()}))
            self._work_key, self._work_items = key, work
        return self._work_items

    def _update_piece(self, item) -> None:
        self.update(*item)

    def update(self, p, g, state) -> None:
        """Update one piece of a parameter: one fused kernel (``glassnet.kernels``), or the NumPy
        formulas of ``numpy_update`` with ``GLASSNET_KERNELS=numpy``. Both give the same bits."""
        if kernels.ENABLED and p.dtype.kind == "f" and p.dtype.itemsize >= 4:
            self.fused_update(p, g, state)
            return
        if self.weight_decay:
            p -= (self.learning_rate * self.weight_decay) * p  # p ← p − η·λ·p
        self.numpy_update(p, g, state)

    @staticmethod
    def _scalars(p, *values):
        """Scalars in the parameter's float type, as NumPy would round them."""
        cast = p.dtype.type
        return [cast(v) for v in values]

    @staticmethod
    def _flush(p):
        """The kernels' last two scalars for p's float type (``_FLUSH``)."""
        return _FLUSH[p.dtype.char]

    def _decay(self, p):
        return p.dtype.type(self.learning_rate * self.weight_decay if self.weight_decay else 0)

    def fused_update(self, p, g, state) -> None:
        raise NotImplementedError

    def numpy_update(self, p, g, state) -> None:
        raise NotImplementedError

    def _clip(self, pairs):
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float((g * g).sum()) for _, g in pairs))
            if norm > self.global_clipnorm:
                pairs = [(p, g * (self.global_clipnorm / norm)) for p, g in pairs]
        if self.clipvalue is not None:
            pairs = [(p, xp.clip(g, -self.clipvalue, self.clipvalue)) for p, g in pairs]
        if self.clipnorm is not None:
            pairs = [(p, _clip_norm(g, self.clipnorm)) for p, g in pairs]
        return pairs

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras's spelling: pairs of (gradient, variable)."""
        self.apply((p, g) for g, p in grads_and_vars)

    # ---- saving -------------------------------------------------------------------------------

    def slots(self) -> list[tuple[str, ...]]:
        """The state kept per parameter, in the order Keras saves it: groups listed one after the
        other, each group parameter by parameter (Adam: m₁, v₁, m₂, v₂, …, then AMSGrad's v̂₁,
        v̂₂, …; RMSprop: v₁, v₂, …, then s₁, s₂, …)."""
        return []

    def variables(self) -> list:
        """The state arrays in Keras's order (after ``iterations`` and ``learning_rate``), so a
        ``.keras`` file resumes training with the same state in either program."""
        return [self.state[i][k] for i, k in self._variable_order()]

    def variable_owners(self) -> list[int]:
        """For each of ``variables()``, the index of the parameter it belongs to."""
        return [i for i, _ in self._variable_order()]

    def variable_names(self) -> list[str]:
        """For each of ``variables()``, its slot's name ("m", "v", …)."""
        return [k for _, k in self._variable_order()]

    # Slots that average squared gradients: never negative (√v would be NaN at the next step).
    NON_NEGATIVE = frozenset({"v", "v_hat"})

    def _variable_order(self) -> list[tuple[int, str]]:
        n = len(self.state)
        return [(i, k) for group in self.slots() for i in range(n) for k in group]

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "learning_rate": (
                schedules.serialize(self.schedule) if self.schedule else self.learning_rate
            ),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent, as the deck draws it: w ← w − η·slope.

    With momentum μ the step remembers the last one (state ``m``, starting at 0):
    m ← μ·m − η·g, then p ← p + m; with Nesterov, p ← p + μ·m − η·g.

    Keras defaults: learning_rate=0.01, momentum=0.0, nesterov=False.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"Received momentum={momentum!r}. Expected a float in [0, 1].")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def init_state(self, p):
        state = {"scratch": xp.empty_like(p)}
        if self.momentum:
            state["m"] = xp.zeros_like(p)
        return state

    def slots(self):
        return [("m",)] if self.momentum else []  # Keras: "momentum"

    def fused_update(self, p, g, state):
        lr, mu = self._scalars(p, self.learning_rate, self.momentum)
        m = state.get("m", _EMPTY[p.dtype.char])
        kernels.sgd(p, g, m, lr, mu, self.nesterov, self._decay(p), *self._flush(p))

    def numpy_update(self, p, g, state):
        lr, mu, step = self.learning_rate, self.momentum, state["scratch"]
        xp.multiply(g, lr, out=step)  # step = η·g
        if not mu:
            p -= step  # p ← p − η·g
            return
        m = state["m"]
        m *= mu  # m ← μ·m − η·g
        m -= step
        _flush_subnormal(m)
        if self.nesterov:
            p -= step  # p ← p + μ·m − η·g
            xp.multiply(m, mu, out=step)
            p += step
        else:
            p += m  # p ← p + m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """Divide each step by a running root-mean-square of the gradient.

    v ← ρ·v + (1 − ρ)·g², then p ← p − η·g / √(v + ε).
    With momentum μ: s ← μ·s + η·g / √(v + ε), then p ← p − s.
    Centered: also ḡ ← ρ·ḡ + (1 − ρ)·g, and √(v − ḡ² + ε) in place of √(v + ε).

    Keras defaults: learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7.
    """

    def __init__(
        self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def init_state(self, p):
        state = {"v": xp.zeros_like(p), "scratch": xp.empty_like(p)}
        if self.momentum:
            state["s"] = xp.zeros_like(p)
        if self.centered:
            state["g_mean"] = xp.zeros_like(p)
        return state

    def slots(self):  # Keras: "velocity", "momentum", "average_gradient"
        return [("v",)] + [("s",)] * bool(self.momentum) + [("g_mean",)] * self.centered

    def fused_update(self, p, g, state):
        empty = _EMPTY[p.dtype.char]
        kernels.rmsprop(
            p, g, state["v"], state.get("s", empty), state.get("g_mean", empty),
            *self._scalars(p, self.learning_rate, self.rho, 1.0 - self.rho, self.momentum,
                           self.epsilon),
            self._decay(p), *self._flush(p),
        )  # fmt: skip

    def numpy_update(self, p, g, state):
        v, step = state["v"], state["scratch"]
        v *= self.rho  # v ← ρ·v + (1 − ρ)·g²
        xp.multiply(g, g, out=step)
        step *= 1.0 - self.rho
        v += step
        _flush_subnormal(v)
        if self.centered:  # ḡ ← ρ·ḡ + (1 − ρ)·g, then step ← v − ḡ² + ε
            g_mean = state["g_mean"]
            g_mean *= self.rho
            g_mean += (1.0 - self.rho) * g
            _flush_subnormal(g_mean)
            xp.multiply(g_mean, g_mean, out=step)
            xp.subtract(v, step, out=step)
            step += self.epsilon
        else:
            xp.add(v, self.epsilon, out=step)  # step ← η·g / √(v + ε)
        xp.sqrt(step, out=step)
        xp.divide(g, step, out=step)
        step *= self.learning_rate
        if self.momentum:
            s = state["s"]
            s *= self.momentum  # s ← μ·s + step
            s += step
            _flush_subnormal(s)
            step = s
        p -= step  # p ← p − step

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adam(Optimizer):
    """Adaptive moments (Kingma & Ba), in Keras's form:

    m ← m + (1 − β₁)·(g − m),  v ← v + (1 − β₂)·(g² − v),
    α = η·√(1 − β₂ᵗ) / (1 − β₁ᵗ),  p ← p − α·m / (√v + ε).
    AMSGrad: v̂ ← max(v̂, v), and √v̂ in place of √v.

    Keras defaults: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7.
    """

    def __init__(
        self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        for arg, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"Received {arg}={value!r}. Expected a float in [0, 1).")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)

    def init_state(self, p):
        state = {"m": xp.zeros_like(p), "v": xp.zeros_like(p), "scratch": xp.empty_like(p)}
        if self.amsgrad:
            state["v_hat"] = xp.zeros_like(p)
        return state

    def slots(self):  # Keras: "momentum", "velocity" (interleaved), then "velocity_hat"
        return [("m", "v")] + [("v_hat",)] * self.amsgrad

    def _alpha(self) -> float:
        """α = η·√(1 − β₂ᵗ) / (1 − β₁ᵗ): the step size with both moments' bias corrected."""
        t = max(self.iterations, 1)  # (t = 0 only when the kernels are compiled ahead)
        return self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)

    def fused_update(self, p, g, state):
        kernels.adam(
            p, g, state["m"], state["v"], state.get("v_hat", _EMPTY[p.dtype.char]),
            *self._scalars(p, self._alpha(), 1 - self.beta_1, 1 - self.beta_2, self.epsilon),
            self._decay(p), *self._flush(p),
        )  # fmt: skip

    def numpy_update(self, p, g, state):
        m, v, step = state["m"], state["v"], state["scratch"]
        alpha = self._alpha()
        xp.subtract(g, m, out=step)  # m ← m + (1 − β₁)·(g − m)
        step *= 1 - self.beta_1
        m += step
        _flush_subnormal(m)
        xp.multiply(g, g, out=step)  # v ← v + (1 − β₂)·(g² − v)
        step -= v
        step *= 1 - self.beta_2
        v += step
        _flush_subnormal(v)
        if self.amsgrad:  # v̂ ← max(v̂, v)
            xp.maximum(state["v_hat"], v, out=state["v_hat"])
        xp.sqrt(state["v_hat"] if self.amsgrad else v, out=step)  # p ← p − α·m / (√v + ε)
        step += self.epsilon
        xp.divide(m, step, out=step)
        step *= alpha
        p -= step

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay: first p ← p − η·λ·p, then the Adam step.

    Keras defaults: learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)


_REGISTRY = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def names() -> list[str]:
    """Every name ``get`` takes, as Keras spells them."""
    return list(_REGISTRY)


def get(identifier) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``), a Keras config
    dict, or an instance (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cls = lookup("optimizer", identifier.get("class_name", ""), _REGISTRY)
        config = dict(identifier.get("config") or {})
        known = set(cls().get_config())  # Keras configs carry keys glassnet has no use for
        return cls.from_config({k: v for k, v in config.items() if k in known})
    return lookup("optimizer", identifier, _REGISTRY)()

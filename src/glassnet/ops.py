"""``keras.ops``: Keras's ops, each with its derivative written out right under it.

Called on arrays they are NumPy: ``ops.exp(x)`` is ``np.exp(x)``, and keras.io's guides build
their inputs with them (``x = ops.ones((3, 3))``). Inside a recording — a ``Layer`` whose ``call``
uses them, a ``Lambda``, a loss function given to ``compile`` — every op also writes one *step*
on the ``Tape``: what it read, what it made (a ``Tensor``: the array and the step), and how to turn
∂C/∂(what it made) into ∂C/∂(what it read). ``Tape.gradients`` then runs the deck's recursion over
the steps, last to first: each step's ∂C/∂input is its local derivative times what came back, and
a tensor read by two steps gets the sum of what both send back — the deck's
∂C/∂z = σ′(z)·(w3·∂C/∂z′ + w4·∂C/∂z″), one op at a time.

Every op reads like this, forward above, backward below, in the deck's letters::

    def multiply(x1, x2):
        '''z = x1 ⊙ x2.'''
        a, b = _values(x1, x2)
        return _op("multiply", a * b, (x1, x2),
                   lambda dC_dz: (dC_dz * b, dC_dz * a))   # ∂z/∂x1 = x2, ∂z/∂x2 = x1

Broadcasting is undone for you: an input that was broadcast gets its gradient summed back to its
own shape. Ops that only compare, count or pick (``argmax``, ``equal``, ``one_hot``) have no
derivative and return plain arrays.

>>> import numpy as np
>>> ones((2, 3)).dtype, convert_to_numpy(ones((1,)) + 1)
(dtype('float32'), array([2.], dtype=float32))
>>> with Tape() as tape:
...     x = tape.watch(np.array([1.0, 2.0]), "x")
...     C = sum(square(x) * 3)                      # C = Σ 3x²
>>> tape.gradients(C, [x])[0]                       # ∂C/∂x = 6x
array([ 6., 12.])
"""

from __future__ import annotations

import math
import string
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glassnet.backend import epsilon, floatx

# ---- the tape ------------------------------------------------------------------------------------


_LOCAL = threading.local()


def _tapes() -> list:
    if not hasattr(_LOCAL, "tapes"):
        _LOCAL.tapes = []
    return _LOCAL.tapes


def recording() -> Tape | None:
    """The tape recording now (the innermost), or None outside every recording."""
    tapes = _tapes()
    return tapes[-1] if tapes else None


@dataclass
class Step:
    """One op on the tape: ``output = op(*inputs)`` and how ∂C/∂output goes back to the inputs
    (``backward(dC_dz)`` gives one gradient per input, ``None`` where it has none)."""

    op: str
    inputs: tuple
    output: Tensor
    backward: Callable
    dC_dz: np.ndarray | None = None  # what came back to the output, once gradients ran
    adds_loss: bool = False  # a layer whose call added a loss: it goes back even if C ignores z

    def reads(self) -> list[str]:
        """What the op read, in words: leaves and earlier steps by name, constants by shape."""
        return [x.name if isinstance(x, Tensor) else f"[{np.shape(x)}]" if np.ndim(x) else
                f"{np.asarray(x).item():g}" for x in self.inputs]  # fmt: skip


class Tensor:
    """An array made inside a recording, with the step that made it.

    It has ``shape``, ``dtype``, ``ndim`` and the arithmetic operators (each one an op below);
    ``numpy()`` gives its value as a plain array, outside the recording — on purpose, since
    NumPy's own functions would drop its derivative: they refuse a Tensor and say so.
    """

    __array_ufunc__ = None  # np.exp(t) refuses; arr + t becomes t.__radd__(arr)
    __hash__ = object.__hash__

    def __init__(self, value, tape: Tape, name: str = ""):
        self.value, self.tape, self.name = value, tape, name

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)
    T = property(lambda self: transpose(self))

    def __len__(self) -> int:
        return len(self.value)

    def numpy(self):
        return self.value.copy()

    # The methods a backend's tensor has, each one of the ops below.
    def sum(self, axis=None, keepdims=False):
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return min(self, axis, keepdims)

    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def astype(self, dtype):
        return cast(self, dtype)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "A recorded glassnet tensor went into a NumPy function, which would lose its "
            "derivative. Use glassnet.ops (ops.exp, ops.sum, …) inside call(), Lambda and loss "
            "functions; ops.convert_to_numpy(x) takes the value out on purpose."
        )

    def __repr__(self) -> str:
        return f"<Tensor {self.name or 'recorded'} shape={self.shape} dtype={self.dtype}>"

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return subtract(self, other)

    def __rsub__(self, other):
        return subtract(other, self)

    def __mul__(self, other):
        return multiply(self, other)

    def __rmul__(self, other):
        return multiply(other, self)

    def __truediv__(self, other):
        return divide(self, other)

    def __rtruediv__(self, other):
        return divide(other, self)

    def __pow__(self, other):
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return abs(self)

    def __getitem__(self, index):
        return _take(self, index)

    def __lt__(self, other):
        return less(self, other)

    def __le__(self, other):
        return less_equal(self, other)

    def __gt__(self, other):
        return greater(self, other)

    def __ge__(self, other):
        return greater_equal(self, other)


class Tape:
    """The steps one forward pass recorded, in order, and the recursion back over them.

    ``with Tape() as tape:`` records the ops called inside; ``tape.watch(array, name)`` makes a
    leaf (an input, a parameter) whose ∂C/∂ you want, and ``tape.watch(..., source=v)`` lets an
    object such as a layer's ``Variable`` stand for that leaf wherever it is read.
    """

    def __init__(self):
        self.steps: list[Step] = []
        self.leaves: dict[int, Tensor] = {}  # id(source object) -> its leaf
        self.added_losses: list = []  # what add_loss was given while this tape recorded
        self._sources: list = []  # keeps each source alive while its id is a key

    def __enter__(self) -> Tape:
        _tapes().append(self)
        return self

    def __exit__(self, *exc) -> None:
        _tapes().remove(self)

    def watch(self, value, name: str = "", source=None) -> Tensor:
        leaf = Tensor(np.asarray(value), self, name)
        if source is not None:
            self.leaves[id(source)] = leaf
            self._sources.append(source)
        return leaf

    def gradients(self, outputs, wrt, dC_doutputs=None) -> list:
        """∂C/∂w for each tensor in ``wrt``, where ∂C/∂(each output) is given in
        ``dC_doutputs`` (1 for a single scalar output by default). The recursion: every step,
        last to first, whose output has received a gradient sends its inputs their share; a
        tensor read twice adds both shares. A leaf nothing reached gets zeros."""
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        if dC_doutputs is None:
            dC_doutputs = [np.ones_like(_value(o)) for o in outputs]
        elif not isinstance(dC_doutputs, (list, tuple)):
            dC_doutputs = [dC_doutputs]
        grads: dict[int, np.ndarray] = {}
        for o, g in zip(outputs, dC_doutputs, strict=True):
            if isinstance(o, Tensor):
                _accumulate(grads, o, np.asarray(g, dtype=o.dtype))
        for step in reversed(self.steps):
            dC_dz = grads.pop(id(step.output), None)
            if dC_dz is None and step.adds_loss:  # C reads it only through its added loss
                dC_dz = np.zeros_like(step.output.value)
            step.dC_dz = dC_dz  # kept for the glass box
            if dC_dz is None:
                continue  # nothing C depends on came from this step
            for x, dC_dx in zip(step.inputs, step.backward(dC_dz), strict=True):
                if isinstance(x, Tensor) and x.tape is self and dC_dx is not None:
                    _accumulate(grads, x, _unbroadcast(np.asarray(dC_dx), x.shape))
        return [grads.get(id(w), np.zeros_like(w.value)).astype(w.dtype, copy=False) for w in wrt]


def _accumulate(grads: dict, x: Tensor, g) -> None:
    """The tensor read twice gets the sum of what both readers send back."""
    grads[id(x)] = grads[id(x)] + g if id(x) in grads else g


def _unbroadcast(g, shape: tuple):
    """g summed over the axes broadcasting added or stretched, back to ``shape``."""
    if g.shape == shape:
        return g
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    stretched = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


def leaf_of(source) -> Tensor | None:
    """The recorded tensor standing for ``source`` (a layer's ``Variable``) in the recording
    going on now, or None."""
    tape = recording()
    return None if tape is None else tape.leaves.get(id(source))


def _arg(x):
    """A Tensor as it is, a watched object as its leaf, anything else as a constant array."""
    if isinstance(x, Tensor):
        return x
    tape = recording()
    if tape is not None and id(x) in tape.leaves:
        return tape.leaves[id(x)]
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return x  # a Python number stays one: x * 2.5 keeps x's float32, as NumPy's rules say
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _value(x):
    return x.value if isinstance(x, Tensor) else x


def _values(*xs):
    return tuple(_value(_arg(x)) for x in xs)


def record(name: str, z, inputs: tuple, backward: Callable):
    """Record one step made outside this module (a layer called inside a recorded ``call``):
    ``z = name(*inputs)``, ∂C/∂inputs = ``backward(∂C/∂z)``."""
    return _op(name, z, inputs, backward)


def _op(name: str, z, inputs: tuple, backward: Callable):
    """Record ``z = name(*inputs)`` on the tape of its recorded inputs; a plain array if none."""
    inputs = tuple(_arg(x) for x in inputs)
    tape = next((x.tape for x in inputs if isinstance(x, Tensor)), None)
    if tape is None:
        return z
    out = Tensor(np.asarray(z), tape, f"t{len(tape.steps) + 1}")
    tape.steps.append(Step(name, inputs, out, backward))
    return out


def _float(x):
    """x's value as an array (floats kept in their type)."""
    return np.asarray(_value(_arg(x)))


# ---- making arrays (no derivative: nothing is read) --------------------------------------------


def _dtype(dtype):
    return floatx() if dtype is None else dtype


def ones(shape, dtype=None):
    return np.ones(shape, dtype=_dtype(dtype))


def zeros(shape, dtype=None):
    return np.zeros(shape, dtype=_dtype(dtype))


def full(shape, fill_value, dtype=None):
    return np.full(shape, fill_value, dtype=_dtype(dtype))


def ones_like(x, dtype=None):
    return np.ones_like(_float(x), dtype=dtype)


def zeros_like(x, dtype=None):
    return np.zeros_like(_float(x), dtype=dtype)


def full_like(x, fill_value, dtype=None):
    return np.full_like(_float(x), fill_value, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None):
    return np.arange(start, stop, step, dtype=dtype)


def eye(N, M=None, k=0, dtype=None):
    return np.eye(N, M, k, dtype=_dtype(dtype))


def convert_to_tensor(x, dtype=None, sparse=None):
    """An array (a recorded tensor stays itself); floats become ``floatx()`` unless ``dtype``
    says otherwise, as in Keras."""
    x = _arg(x)  # a layer's Variable inside a recording: its recorded leaf
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    array = np.asarray(x)
    if dtype is None and array.dtype.kind == "f":
        dtype = floatx()
    return array if dtype is None else array.astype(dtype, copy=False)


def convert_to_numpy(x):
    """The value as a plain NumPy array, outside any recording."""
    return np.array(x.value) if isinstance(x, Tensor) else np.asarray(_value(_arg(x)))


def shape(x):
    return tuple(np.shape(_value(_arg(x))))


def ndim(x):
    return len(shape(x))


def size(x):
    return math.prod(shape(x))


# ---- elementwise, one input: z = f(x), ∂C/∂x = f′(x) ⊙ ∂C/∂z -----------------------------------


def negative(x):
    """z = −x; ∂z/∂x = −1."""
    return _op("negative", -_float(x), (x,), lambda g: (-g,))


def abs(x):
    """z = |x|; ∂z/∂x = sign(x) (0 at 0)."""
    (a,) = _values(x)
    return _op("abs", np.abs(a), (x,), lambda g: (g * np.sign(a),))


absolute = abs


def exp(x):
    """z = eˣ; ∂z/∂x = eˣ = z."""
    z = np.exp(_float(x))
    return _op("exp", z, (x,), lambda g: (g * z,))


def log(x):
    """z = ln x; ∂z/∂x = 1/x."""
    (a,) = _values(x)
    return _op("log", np.log(a), (x,), lambda g: (g / a,))


def log1p(x):
    """z = ln(1 + x); ∂z/∂x = 1/(1 + x)."""
    (a,) = _values(x)
    return _op("log1p", np.log1p(a), (x,), lambda g: (g / (1 + a),))


def expm1(x):
    """z = eˣ − 1; ∂z/∂x = eˣ = z + 1."""
    z = np.expm1(_float(x))
    return _op("expm1", z, (x,), lambda g: (g * (z + 1),))


def sqrt(x):
    """z = √x; ∂z/∂x = 1/(2√x) = 1/(2z)."""
    z = np.sqrt(_float(x))
    return _op("sqrt", z, (x,), lambda g: (g / (2 * z),))


def square(x):
    """z = x²; ∂z/∂x = 2x."""
    (a,) = _values(x)
    return _op("square", np.square(a), (x,), lambda g: (g * 2 * a,))


def reciprocal(x):
    """z = 1/x; ∂z/∂x = −1/x² = −z²."""
    z = 1 / _float(x)
    return _op("reciprocal", z, (x,), lambda g: (-g * z * z,))


def sin(x):
    """z = sin x; ∂z/∂x = cos x."""
    (a,) = _values(x)
    return _op("sin", np.sin(a), (x,), lambda g: (g * np.cos(a),))


def cos(x):
    """z = cos x; ∂z/∂x = −sin x."""
    (a,) = _values(x)
    return _op("cos", np.cos(a), (x,), lambda g: (-g * np.sin(a),))


def tanh(x):
    """z = tanh x; ∂z/∂x = 1 − z²."""
    z = np.tanh(_float(x))
    return _op("tanh", z, (x,), lambda g: (g * (1 - z * z),))


def sigmoid(x):
    """z = σ(x) = 1/(1 + e⁻ˣ); ∂z/∂x = z(1 − z), the deck's σ′."""
    with np.errstate(over="ignore"):
        z = 1 / (1 + np.exp(-_float(x)))
    return _op("sigmoid", z, (x,), lambda g: (g * z * (1 - z),))


def relu(x):
    """z = max(x, 0); ∂z/∂x = 1 where x > 0, else 0."""
    (a,) = _values(x)
    return _op("relu", np.maximum(a, 0), (x,), lambda g: (g * (a > 0),))


def softplus(x):
    """z = ln(1 + eˣ); ∂z/∂x = σ(x)."""
    (a,) = _values(x)
    with np.errstate(over="ignore"):
        s = 1 / (1 + np.exp(-a))
    return _op("softplus", np.logaddexp(0, a), (x,), lambda g: (g * s,))


def silu(x):
    """z = x·σ(x); ∂z/∂x = σ(x)(1 + x(1 − σ(x)))."""
    (a,) = _values(x)
    with np.errstate(over="ignore"):
        s = 1 / (1 + np.exp(-a))
    return _op("silu", a * s, (x,), lambda g: (g * s * (1 + a * (1 - s)),))


swish = silu


def elu(x, alpha=1.0):
    """z = x for x > 0, α(eˣ − 1) otherwise; ∂z/∂x = 1, or z + α."""
    (a,) = _values(x)
    z = np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0)))
    return _op("elu", z, (x,), lambda g: (g * np.where(a > 0, 1, z + alpha),))


def leaky_relu(x, negative_slope=0.2):
    """z = x for x > 0, slope·x otherwise; ∂z/∂x = 1 or the slope."""
    (a,) = _values(x)
    return _op("leaky_relu", np.where(a > 0, a, negative_slope * a), (x,),
               lambda g: (g * np.where(a > 0, 1, negative_slope),))  # fmt: skip


def softsign(x):
    """z = x/(1 + |x|); ∂z/∂x = 1/(1 + |x|)²."""
    (a,) = _values(x)
    return _op("softsign", a / (1 + np.abs(a)), (x,), lambda g: (g / (1 + np.abs(a)) ** 2,))


def gelu(x, approximate=True):
    """z = x·Φ(x) (tanh approximation by default, as Keras); ∂z/∂x by the product rule."""
    (a,) = _values(x)
    if approximate:
        c = math.sqrt(2 / math.pi)
        inner = c * (a + 0.044715 * a**3)
        t = np.tanh(inner)
        z = 0.5 * a * (1 + t)
        slope = 0.5 * (1 + t) + 0.5 * a * (1 - t * t) * c * (1 + 3 * 0.044715 * a**2)
    else:
        from math import erf

        phi = 0.5 * (1 + np.vectorize(erf)(a / math.sqrt(2))).astype(a.dtype)
        z = a * phi
        slope = phi + a * np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    return _op("gelu", z, (x,), lambda g: (g * slope,))


def stop_gradient(x):
    """The value, read as a constant: nothing goes back through it."""
    return np.array(_value(_arg(x)))


def cast(x, dtype):
    """x in another type; between float types the gradient passes, cast back."""
    a = _float(x)
    z = a.astype(dtype)
    if not (a.dtype.kind == "f" and z.dtype.kind == "f"):
        return z
    return _op("cast", z, (x,), lambda g: (g.astype(a.dtype),))


# ---- elementwise, two inputs (broadcast) ---------------------------------------------------------


def add(x1, x2):
    """z = x1 + x2; ∂z/∂x1 = ∂z/∂x2 = 1."""
    a, b = _values(x1, x2)
    return _op("add", np.add(a, b), (x1, x2), lambda g: (g, g))


def subtract(x1, x2):
    """z = x1 − x2; ∂z/∂x1 = 1, ∂z/∂x2 = −1."""
    a, b = _values(x1, x2)
    return _op("subtract", np.subtract(a, b), (x1, x2), lambda g: (g, -g))


def multiply(x1, x2):
    """z = x1 ⊙ x2; ∂z/∂x1 = x2, ∂z/∂x2 = x1."""
    a, b = _values(x1, x2)
    return _op("multiply", np.multiply(a, b), (x1, x2), lambda g: (g * b, g * a))


def divide(x1, x2):
    """z = x1 / x2; ∂z/∂x1 = 1/x2, ∂z/∂x2 = −x1/x2²."""
    a, b = _values(x1, x2)
    return _op("divide", np.divide(a, b), (x1, x2), lambda g: (g / b, -g * a / (b * b)))


true_divide = divide


def divide_no_nan(x1, x2):
    """x1 / x2, and 0 (with gradient 0) where x2 is 0."""
    a, b = _values(x1, x2)
    safe = np.where(b == 0, 1, b)
    z = np.where(b == 0, 0, a / safe)
    return _op("divide_no_nan", z, (x1, x2), lambda g: (
        np.where(b == 0, 0, g / safe), np.where(b == 0, 0, -g * a / safe**2)))  # fmt: skip


def power(x1, x2):
    """z = x1^x2; ∂z/∂x1 = x2·x1^(x2−1), ∂z/∂x2 = z·ln x1 (where x1 > 0)."""
    a, b = _values(x1, x2)
    z = np.power(a, b)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            d_base = g * b * np.power(a, b - 1)
            d_exponent = g * z * np.log(np.where(a > 0, a, 1))
        return d_base, d_exponent

    return _op("power", z, (x1, x2), backward)


def maximum(x1, x2):
    """z = max(x1, x2); ∂C/∂ goes to the larger (to x1 on a tie, as TensorFlow)."""
    a, b = _values(x1, x2)
    first = a >= b
    return _op("maximum", np.maximum(a, b), (x1, x2), lambda g: (g * first, g * ~first))


def minimum(x1, x2):
    """z = min(x1, x2); ∂C/∂ goes to the smaller (to x1 on a tie)."""
    a, b = _values(x1, x2)
    first = a <= b
    return _op("minimum", np.minimum(a, b), (x1, x2), lambda g: (g * first, g * ~first))


def clip(x, x_min, x_max):
    """z = x held inside [x_min, x_max]; ∂z/∂x = 1 inside, 0 where it was held."""
    (a,) = _values(x)
    inside = (a >= x_min) & (a <= x_max)
    return _op("clip", np.clip(a, x_min, x_max), (x,), lambda g: (g * inside,))


def where(condition, x1=None, x2=None):
    """z = x1 where the condition holds, else x2; each gets ∂C/∂z where it was picked."""
    c = np.asarray(_value(_arg(condition)), dtype=bool)
    if x1 is None and x2 is None:
        return np.nonzero(c)
    a, b = _values(x1, x2)
    return _op("where", np.where(c, a, b), (x1, x2), lambda g: (g * c, g * ~c))


# ---- products --------------------------------------------------------------------------------


def matmul(x1, x2):
    """z = x1 · x2 (batched over leading axes); ∂C/∂x1 = ∂C/∂z · x2ᵀ, ∂C/∂x2 = x1ᵀ · ∂C/∂z —
    the deck's ∂C/∂W = ∂C/∂zᵀ · a_prev, with the operands in Keras's order."""
    a, b = _values(x1, x2)
    z = np.matmul(a, b)

    def backward(g):
        if a.ndim == 1 and b.ndim == 1:  # a dot product: z is a number
            return g * b, g * a
        if a.ndim == 1:  # (k,) · (…, k, n): a is a row
            row = (g[..., None, :] @ np.swapaxes(b, -1, -2))[..., 0, :]
            return row, a[:, None] * g[..., None, :]
        if b.ndim == 1:  # (…, m, k) · (k,): b is a column
            return g[..., :, None] * b, (np.swapaxes(a, -1, -2) @ g[..., :, None])[..., 0]
        return g @ np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2) @ g

    return _op("matmul", z, (x1, x2), backward)


def dot(x1, x2):
    """Keras's ``dot``: matmul for arrays of one or two axes."""
    return matmul(x1, x2)


def tensordot(x1, x2, axes=2):
    """z = Σ over the paired axes of x1 ⊗ x2; each input's gradient is the same contraction of
    ∂C/∂z with the other input, over the axes the other kept."""
    a, b = _values(x1, x2)
    if isinstance(axes, int):
        axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        axes_a, axes_b = ([v] if isinstance(v, int) else list(v) for v in axes)
    axes_a = [d % a.ndim for d in axes_a]
    axes_b = [d % b.ndim for d in axes_b]
    z = np.tensordot(a, b, axes=(axes_a, axes_b))
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(axes_a, axes_b):
        sb[j] = sa[i]
    sz = [s for k, s in enumerate(sa) if k not in axes_a] + [
        s for k, s in enumerate(sb) if k not in axes_b
    ]
    spec = f"{''.join(sa)},{''.join(sb)}->{''.join(sz)}"
    return _op("tensordot", z, (x1, x2), _einsum_backward(spec, (a, b)))


def einsum(subscripts, *operands):
    """z = Σ of the products the subscripts name; each operand's gradient is the einsum of ∂C/∂z
    with the other operands, back to that operand's subscripts (an index that only this operand
    had is summed away forward, so its gradient is the same along it; an axis of 1 that was
    broadcast against a longer one gets the sum along it; an index repeated within one operand,
    ``x_ii``, reads its diagonal, so only the diagonal gets a slope). ``...`` stands for the axes
    an operand has beyond its letters, broadcast as NumPy broadcasts them."""
    values = _values(*operands)
    z = np.einsum(subscripts, *values)
    spec = _explicit_einsum(subscripts.replace(" ", ""), [np.ndim(v) for v in values])
    return _op("einsum", z, operands, _einsum_backward(spec, values))


def _explicit_einsum(spec: str, ndims: list) -> str:
    """``spec`` with its output written out and each ``...`` replaced by letters of its own:
    one per axis it stands for, right-aligned across the operands as broadcasting aligns them."""
    inputs, arrow, output = spec.partition("->")
    inputs = inputs.split(",")
    if "." in spec:
        ranks = [
            nd - len(sub.replace("...", "")) if "..." in sub else 0
            for sub, nd in zip(inputs, ndims)
        ]
        unused = (c for c in string.ascii_letters if c not in spec)
        letters = "".join(next(unused) for _ in range(np.max(ranks)))
        inputs = [sub.replace("...", letters[len(letters) - r :]) for sub, r in zip(inputs, ranks)]
        output = output.replace("...", letters) if arrow else letters
    else:
        letters = ""
    if not arrow:  # NumPy's implicit output: the broadcast axes, then the indices seen once, sorted
        seen = "".join(inputs)
        output += "".join(sorted(c for c in set(seen) - set(letters) if seen.count(c) == 1))
    return ",".join(inputs) + "->" + output


def _einsum_backward(spec: str, values: tuple) -> Callable:
    inputs, output = spec.split("->")
    inputs = inputs.split(",")

    def backward(g):
        grads = []
        for k, (sub, v) in enumerate(zip(inputs, values)):
            letters = "".join(dict.fromkeys(sub))  # a repeated index (a diagonal) once
            sizes = [v.shape[sub.index(c)] for c in letters]
            others = [(s, w) for j, (s, w) in enumerate(zip(inputs, values)) if j != k]
            known = set(output).union(*(set(s) for s, _ in others))
            kept = "".join(c for c in letters if c in known)
            spec_k = ",".join([output, *(s for s, _ in others)]) + "->" + kept
            part = np.einsum(spec_k, g, *(w for _, w in others))
            shape = [part.shape[kept.index(c)] if c in known else 1 for c in letters]
            part = part.reshape(shape)
            broadcast = tuple(i for i, n in enumerate(sizes) if n == 1 and shape[i] != 1)
            if broadcast:  # an axis of 1 read as many: the sum of its copies' gradients
                part = part.sum(axis=broadcast, keepdims=True)
            if letters == sub:
                grads.append(np.broadcast_to(part, v.shape))
                continue
            # Only the diagonal was read (x_ii): its entries get the slope, the rest 0.
            grad = np.zeros(v.shape, np.result_type(part))
            np.einsum(f"{sub}->{letters}", grad)[...] = part  # a writable view of the diagonal
            grads.append(grad)
        return tuple(grads)

    return backward


# ---- reductions: z = Σ or mean or max over axes; the gradient spreads back over them -----------


def _axes(axis, nd: int) -> tuple:
    if axis is None:
        return tuple(range(nd))
    return tuple(a % nd for a in ((axis,) if isinstance(axis, int) else axis))


def _spread(g, axes: tuple, keepdims: bool, like):
    """∂C/∂z of a reduction, put back on the reduced axes and broadcast to the input's shape."""
    if not keepdims:
        for ax in sorted(axes):
            g = np.expand_dims(g, ax)
    return np.broadcast_to(g, like.shape)


def sum(x, axis=None, keepdims=False):
    """z = Σ x over ``axis``; ∂z/∂x = 1 for every term."""
    (a,) = _values(x)
    axes = _axes(axis, a.ndim)
    z = np.sum(a, axis=axes, keepdims=keepdims)
    return _op("sum", z, (x,), lambda g: (_spread(g, axes, keepdims, a),))


def mean(x, axis=None, keepdims=False):
    """z = Σ x / n over ``axis``; ∂z/∂x = 1/n for every term."""
    (a,) = _values(x)
    axes = _axes(axis, a.ndim)
    n = math.prod(a.shape[i] for i in axes)
    z = np.mean(a, axis=axes, keepdims=keepdims)
    return _op("mean", z, (x,), lambda g: (_spread(g, axes, keepdims, a) / n,))


def _extreme(name, pick, x, axis, keepdims, initial):
    (a,) = _values(x)
    axes = _axes(axis, a.ndim)
    extra = {} if initial is None else {"initial": initial}
    z = pick(a, axis=axes, keepdims=keepdims, **extra)

    def backward(g):
        best = _spread(z, axes, keepdims, a)
        chosen = a == best  # ties share ∂C/∂z equally
        return (_spread(g, axes, keepdims, a) * chosen / chosen.sum(axis=axes, keepdims=True),)

    return _op(name, z, (x,), backward)


def max(x, axis=None, keepdims=False, initial=None):
    """z = the largest x over ``axis``; ∂C/∂z goes to where it was (shared on a tie)."""
    return _extreme("max", np.max, x, axis, keepdims, initial)


def min(x, axis=None, keepdims=False, initial=None):
    """z = the smallest x over ``axis``; ∂C/∂z goes to where it was (shared on a tie)."""
    return _extreme("min", np.min, x, axis, keepdims, initial)


amax, amin = max, min


def prod(x, axis=None, keepdims=False, dtype=None):
    """z = Π x over ``axis``; ∂z/∂xᵢ = Π of the others (= z/xᵢ where xᵢ ≠ 0)."""
    (a,) = _values(x)
    axes = _axes(axis, a.ndim)
    z = np.prod(a, axis=axes, keepdims=keepdims)

    def backward(g):
        # Π of the others: z/xᵢ when no term is 0; with one 0, the product of the rest at the
        # 0 and 0 elsewhere; with two or more, 0 everywhere.
        nonzero = np.where(a == 0, 1, a)
        rest = np.prod(nonzero, axis=axes, keepdims=True)
        zeros = (a == 0).sum(axis=axes, keepdims=True)
        others = np.where(zeros == 0, rest / nonzero, np.where((zeros == 1) & (a == 0), rest, 0))
        return (_spread(g, axes, keepdims, a) * others,)

    return _op("prod", z, (x,), backward)


def var(x, axis=None, keepdims=False):
    """z = mean((x − mean x)²); built from the ops above, so its gradient is theirs."""
    centred = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centred), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    """z = ln Σ eˣ, computed from x − max x; ∂z/∂x = softmax(x) over the axes."""
    (a,) = _values(x)
    axes = _axes(axis, a.ndim)
    top = np.max(a, axis=axes, keepdims=True)
    e = np.exp(a - top)
    total = e.sum(axis=axes, keepdims=True)
    z = np.log(total) + top
    z_out = z if keepdims else np.squeeze(z, axis=axes)
    return _op("logsumexp", z_out, (x,), lambda g: (_spread(g, axes, keepdims, a) * e / total,))


def norm(x, ord=None, axis=None, keepdims=False):
    """The Euclidean norm √Σx² (Keras's default for vectors), from the ops above."""
    if ord not in (None, 2, "fro", "euclidean"):
        raise NotImplementedError(f"ops.norm(ord={ord!r}) is not supported by glassnet yet.")
    return sqrt(sum(square(x), axis=axis, keepdims=keepdims))


# ---- shapes: the numbers move; the gradient moves them back -----------------------------------


def reshape(x, newshape):
    """z = x with another shape; ∂C/∂x = ∂C/∂z with x's shape."""
    (a,) = _values(x)
    return _op("reshape", np.reshape(a, newshape), (x,), lambda g: (np.reshape(g, a.shape),))


def transpose(x, axes=None):
    """z = x with its axes reordered; ∂C/∂x = ∂C/∂z with the inverse order."""
    (a,) = _values(x)
    order = tuple(range(a.ndim))[::-1] if axes is None else tuple(d % a.ndim for d in axes)
    inverse = tuple(np.argsort(order))
    return _op("transpose", np.transpose(a, order), (x,), lambda g: (np.transpose(g, inverse),))


def expand_dims(x, axis):
    (a,) = _values(x)
    return _op("expand_dims", np.expand_dims(a, axis), (x,), lambda g: (g.reshape(a.shape),))


def squeeze(x, axis=None):
    (a,) = _values(x)
    return _op("squeeze", np.squeeze(a, axis), (x,), lambda g: (g.reshape(a.shape),))


def broadcast_to(x, shape):
    """z = x repeated to ``shape``; ∂C/∂x sums the copies (done by the tape's unbroadcast)."""
    (a,) = _values(x)
    return _op("broadcast_to", np.broadcast_to(a, shape).copy(), (x,), lambda g: (g,))


def repeat(x, repeats, axis=None):
    """Each entry ``repeats`` times along ``axis``; ∂C/∂x sums each entry's copies."""
    (a,) = _values(x)
    z = np.repeat(a, repeats, axis=axis)

    def backward(g):
        if axis is None:
            return (np.add.reduceat(g, np.arange(0, g.size, repeats)).reshape(a.shape),)
        ax = axis % a.ndim
        starts = np.concatenate([[0], np.cumsum(np.broadcast_to(repeats, a.shape[ax]))[:-1]])
        return (np.add.reduceat(g, starts, axis=ax),)

    return _op("repeat", z, (x,), backward)


def tile(x, repeats):
    """x laid side by side ``repeats`` times; ∂C/∂x sums the tiles."""
    (a,) = _values(x)
    reps = (repeats,) if isinstance(repeats, int) else tuple(repeats)
    z = np.tile(a, reps)

    def backward(g):
        nd = z.ndim
        base = (1,) * (nd - a.ndim) + a.shape
        reps_full = (1,) * (nd - len(reps)) + reps
        split = [d for pair in zip(reps_full, base) for d in pair]
        summed = g.reshape(split).sum(axis=tuple(range(0, 2 * nd, 2)))
        return (summed.reshape(a.shape),)

    return _op("tile", z, (x,), backward)


def flip(x, axis=None):
    (a,) = _values(x)
    return _op("flip", np.flip(a, axis), (x,), lambda g: (np.flip(g, axis),))


def _take(x, index):
    """z = x[index]; ∂C/∂x is ∂C/∂z put back where it was read (added where read twice)."""
    (a,) = _values(x)
    if isinstance(index, Tensor):
        index = index.value
    elif isinstance(index, tuple):
        index = tuple(i.value if isinstance(i, Tensor) else i for i in index)

    def backward(g):
        dC_dx = np.zeros_like(a, dtype=g.dtype)
        np.add.at(dC_dx, index, g)
        return (dC_dx,)

    return _op("getitem", a[index], (x,), backward)


def take(x, indices, axis=None):
    """Keras's ``take``: entries by index along ``axis`` (gathering, as an Embedding does)."""
    (a,) = _values(x)
    idx = np.asarray(_value(_arg(indices)))
    if axis is None:
        return _take(reshape(x, (-1,)), idx)
    ax = axis % a.ndim
    return _take(x, (slice(None),) * ax + (idx,))


def take_along_axis(x, indices, axis=None):
    (a,) = _values(x)
    idx = np.asarray(_value(_arg(indices)))
    ax = axis % a.ndim
    grid = list(np.ogrid[tuple(slice(n) for n in idx.shape)])
    grid[ax] = idx
    return _take(x, tuple(grid))


def concatenate(xs, axis=0):
    """z = the inputs side by side along ``axis``; each gets its slice of ∂C/∂z."""
    values = _values(*xs)
    z = np.concatenate(values, axis=axis)
    bounds = np.cumsum([v.shape[axis] for v in values])[:-1]
    return _op("concatenate", z, tuple(xs), lambda g: tuple(np.split(g, bounds, axis=axis)))


def stack(xs, axis=0):
    """z = the inputs along a new ``axis``; each gets its layer of ∂C/∂z."""
    values = _values(*xs)
    z = np.stack(values, axis=axis)
    return _op("stack", z, tuple(xs),
               lambda g: tuple(np.take(g, i, axis=axis) for i in range(len(values))))  # fmt: skip


def split(x, indices_or_sections, axis=0):
    """The parts of x along ``axis`` (each a slice, so each sends back its own part)."""
    (a,) = _values(x)
    ax = axis % a.ndim
    parts = np.split(np.arange(a.shape[ax]), indices_or_sections)  # NumPy's (and Keras's) rule
    return [_take(x, (slice(None),) * ax + (slice(p[0], p[-1] + 1) if len(p) else slice(0, 0),))
            for p in parts]  # fmt: skip


def pad(x, pad_width, mode="constant", constant_values=None):
    """x with zeros (or a constant) around it; ∂C/∂x is the middle of ∂C/∂z."""
    if mode != "constant":
        raise NotImplementedError(f"ops.pad(mode={mode!r}) is not supported by glassnet yet.")
    (a,) = _values(x)
    z = np.pad(a, pad_width, constant_values=constant_values or 0)
    pads = np.broadcast_to(np.asarray(pad_width), (a.ndim, 2))
    middle = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, a.shape))
    return _op("pad", z, (x,), lambda g: (g[middle],))


# ---- ops.nn: the network functions ---------------------------------------------------------------


def softmax(x, axis=-1):
    """a = e^z / Σ e^z along ``axis``; ∂C/∂z = a ⊙ (∂C/∂a − Σ a ⊙ ∂C/∂a), the deck's softmax."""
    (a,) = _values(x)
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    z = e / e.sum(axis=axis, keepdims=True)
    return _op("softmax", z, (x,),
               lambda g: (z * (g - (g * z).sum(axis=axis, keepdims=True)),))  # fmt: skip


def log_softmax(x, axis=-1):
    """z − ln Σ e^z along ``axis``; ∂C/∂z = ∂C/∂a − softmax ⊙ Σ ∂C/∂a."""
    (a,) = _values(x)
    shifted = a - np.max(a, axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    p = np.exp(out)
    return _op("log_softmax", out, (x,), lambda g: (g - p * g.sum(axis=axis, keepdims=True),))


def one_hot(x, num_classes, axis=-1, dtype=None):
    """Rows of the identity picked by integer labels (no derivative: labels are not learned)."""
    labels = np.asarray(_value(_arg(x))).astype(int)
    out = np.eye(num_classes, dtype=_dtype(dtype))[labels]
    return out if axis == -1 else np.moveaxis(out, -1, axis)


def binary_crossentropy(target, output, from_logits=False):
    """−(y·ln a + (1 − y)·ln(1 − a)) entry by entry, from the ops above."""
    if from_logits:
        output = sigmoid(output)
    output = clip(output, epsilon(), 1 - epsilon())
    return negative(add(multiply(target, log(output)),
                        multiply(subtract(1.0, target), log(subtract(1.0, output)))))  # fmt: skip


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """−Σ y·ln a along ``axis``, from the ops above."""
    if from_logits:
        return negative(sum(multiply(target, log_softmax(output, axis)), axis=axis))
    output = divide(output, sum(output, axis=axis, keepdims=True))
    return negative(sum(multiply(target, log(clip(output, epsilon(), 1 - epsilon()))), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """−ln a[label], from the ops above."""
    labels = np.asarray(_value(_arg(target))).astype(int)
    k = shape(output)[axis]
    if labels.ndim == len(shape(output)) and labels.shape[-1] == 1:
        labels = labels[..., 0]
    return categorical_crossentropy(one_hot(labels, k), output, from_logits, axis)


nn = types.SimpleNamespace(
    relu=relu, sigmoid=sigmoid, tanh=tanh, softmax=softmax, log_softmax=log_softmax,
    softplus=softplus, silu=silu, swish=swish, elu=elu, leaky_relu=leaky_relu, gelu=gelu,
    softsign=softsign, one_hot=one_hot, binary_crossentropy=binary_crossentropy,
    categorical_crossentropy=categorical_crossentropy,
    sparse_categorical_crossentropy=sparse_categorical_crossentropy,
)  # fmt: skip
"""``keras.ops.nn``: the same functions, under the name Keras also gives them."""


# ---- comparing, counting, picking: no derivative -------------------------------------------------


def _plain(fn):
    def op(*args, **kwargs):
        return fn(*(_value(_arg(a)) for a in args), **kwargs)

    op.__name__ = fn.__name__
    op.__doc__ = f"NumPy's {fn.__name__} on the values (no derivative)."
    return op


equal, not_equal = _plain(np.equal), _plain(np.not_equal)
greater, greater_equal = _plain(np.greater), _plain(np.greater_equal)
less, less_equal = _plain(np.less), _plain(np.less_equal)
logical_and, logical_or = _plain(np.logical_and), _plain(np.logical_or)
logical_not = _plain(np.logical_not)
argmax, argmin, argsort = _plain(np.argmax), _plain(np.argmin), _plain(np.argsort)
sign, round, floor, ceil = _plain(np.sign), _plain(np.round), _plain(np.floor), _plain(np.ceil)
isnan, isinf, isfinite = _plain(np.isnan), _plain(np.isinf), _plain(np.isfinite)


def all(x, axis=None, keepdims=False):
    return np.all(_value(_arg(x)), axis=axis, keepdims=keepdims)


def any(x, axis=None, keepdims=False):
    return np.any(_value(_arg(x)), axis=axis, keepdims=keepdims)


def count_nonzero(x, axis=None):
    return np.count_nonzero(_value(_arg(x)), axis=axis)


__all__ = sorted(
    name
    for name, value in globals().items()
    if not name.startswith("_")
    and name
    not in {
        "annotations",
        "math",
        "np",
        "string",
        "threading",
        "types",
        "dataclass",
        "Callable",
        "epsilon",
        "floatx",
    }
)

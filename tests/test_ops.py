"""glassnet.ops: every op's written-out derivative against central differences on random shapes
(hypothesis), the tape's recursion (a tensor read twice gets the sum), NumPy outside a recording,
and what a recorded tensor refuses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassnet import ops
from tests.gradcheck import numerical_gradient, relative_error


def check(f, *inputs, seed=0, tolerance=1e-6):
    """Backward of C = Σ f(inputs) ⊙ R (R random) against central differences, per input."""
    rng = np.random.default_rng(seed)
    with ops.Tape() as tape:
        leaves = [tape.watch(x, f"x{i}") for i, x in enumerate(inputs)]
        z = f(*leaves)
    assert isinstance(z, ops.Tensor), "the op recorded nothing"
    R = rng.normal(size=z.shape)
    grads = tape.gradients(z, leaves, R)
    for x, g in zip(inputs, grads, strict=True):
        assert g.shape == x.shape
        numerical = numerical_gradient(lambda: float((np.asarray(f(*inputs)) * R).sum()), x)
        assert relative_error(g, numerical, floor=1e-6) < tolerance


def away_from(x, points, gap=0.05):
    """x with no entry within ``gap`` of a kink (finite differences straddle a kink)."""
    for p in points:
        near = np.abs(x - p) < gap
        x[near] = p + np.where(x[near] >= p, gap, -gap) * 2
    return x


UNARY = {  # name: (op, the domain's lower bound or None, kinks)
    "negative": (ops.negative, None, ()),
    "abs": (ops.abs, None, (0,)),
    "exp": (ops.exp, None, ()),
    "log": (ops.log, 0.2, ()),
    "log1p": (ops.log1p, -0.5, ()),
    "expm1": (ops.expm1, None, ()),
    "sqrt": (ops.sqrt, 0.2, ()),
    "square": (ops.square, None, ()),
    "reciprocal": (ops.reciprocal, 0.3, ()),
    "sin": (ops.sin, None, ()),
    "cos": (ops.cos, None, ()),
    "tanh": (ops.tanh, None, ()),
    "sigmoid": (ops.sigmoid, None, ()),
    "relu": (ops.relu, None, (0,)),
    "softplus": (ops.softplus, None, ()),
    "silu": (ops.silu, None, ()),
    "elu": (lambda x: ops.elu(x, 0.7), None, (0,)),
    "leaky_relu": (lambda x: ops.leaky_relu(x, 0.1), None, (0,)),
    "softsign": (ops.softsign, None, (0,)),
    "gelu": (ops.gelu, None, ()),
    "gelu_exact": (lambda x: ops.gelu(x, approximate=False), None, ()),
    "clip": (lambda x: ops.clip(x, -0.5, 0.4), None, (-0.5, 0.4)),
    "cast": (lambda x: ops.cast(x, "float64") * 2, None, ()),
    "softmax": (ops.softmax, None, ()),
    "softmax_axis0": (lambda x: ops.softmax(x, axis=0), None, ()),
    "log_softmax": (ops.log_softmax, None, ()),
    "sum": (lambda x: ops.sum(x, axis=-1), None, ()),
    "sum_all": (ops.sum, None, ()),
    "mean_keepdims": (lambda x: ops.mean(x, axis=0, keepdims=True), None, ()),
    "max": (lambda x: ops.max(x, axis=-1), None, ()),
    "min_all": (ops.min, None, ()),
    "prod": (lambda x: ops.prod(x, axis=0), None, ()),
    "var": (lambda x: ops.var(x, axis=-1), None, ()),
    "std": (ops.std, None, ()),
    "logsumexp": (lambda x: ops.logsumexp(x, axis=-1), None, ()),
    "norm": (lambda x: ops.norm(x, axis=-1), None, ()),
    "reshape": (lambda x: ops.reshape(x, (-1,)) * ops.arange(x.size), None, ()),
    "transpose": (lambda x: ops.transpose(x) * 1.5, None, ()),
    "T": (lambda x: x.T @ x, None, ()),
    "expand_squeeze": (lambda x: ops.squeeze(ops.expand_dims(x, 1)) ** 3, None, ()),
    "broadcast_to": (lambda x: ops.broadcast_to(x[:1], (4, *x.shape[1:])) * 2, None, ()),
    "repeat": (lambda x: ops.repeat(x, 2, axis=-1), None, ()),
    "repeat_flat": (lambda x: ops.repeat(x, 3), None, ()),
    "tile": (lambda x: ops.tile(x, (2, 1)), None, ()),
    "flip": (lambda x: ops.flip(x, 0) * x, None, ()),
    "getitem": (lambda x: x[::-1, :1] * x[0], None, ()),
    "getitem_fancy": (lambda x: x[np.array([0, 0, -1])], None, ()),
    "take": (lambda x: ops.take(x, np.array([[0, 1], [1, 1]]), axis=0), None, ()),
    "take_along": (lambda x: ops.take_along_axis(x, ops.argsort(x, -1), axis=-1), None, ()),
    "split": (lambda x: ops.split(x, [1], axis=-1)[1] * 3, None, ()),
    "pad": (lambda x: ops.pad(x, ((1, 0), (2, 1))) ** 2, None, ()),
    "read_twice": (lambda x: x * ops.exp(x) + ops.sin(x), None, ()),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=8, deadline=None)
@given(
    rows=st.integers(2, 4),
    cols=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_each_one_input_op_has_the_derivative_finite_differences_give(name, rows, cols, seed):
    f, low, kinks = UNARY[name]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols))
    if low is not None:
        x = low + np.abs(x)
    x = away_from(x, kinks)
    if name in ("max", "min_all"):
        x += np.arange(x.size).reshape(x.shape) * 0.1  # no tie: ties split ∂C/∂z on purpose
    check(f, x, seed=seed)


BINARY = {  # name: (op, shapes of the two inputs given (m, k, n))
    "add": (ops.add, lambda m, k, n: ((m, k), (k,))),
    "subtract": (ops.subtract, lambda m, k, n: ((m, 1), (m, k))),
    "multiply": (ops.multiply, lambda m, k, n: ((m, k), (m, k))),
    "divide": (ops.divide, lambda m, k, n: ((m, k), (1, k))),
    "divide_no_nan": (ops.divide_no_nan, lambda m, k, n: ((m, k), (m, k))),
    "power": (ops.power, lambda m, k, n: ((m, k), (m, k))),
    "maximum": (ops.maximum, lambda m, k, n: ((m, k), (m, k))),
    "minimum": (ops.minimum, lambda m, k, n: ((m, k), (k,))),
    "where": (lambda a, b: ops.where(a > 0, a, b), lambda m, k, n: ((m, k), (m, k))),
    "matmul": (ops.matmul, lambda m, k, n: ((m, k), (k, n))),
    "matmul_batched": (ops.matmul, lambda m, k, n: ((2, m, k), (2, k, n))),
    "matmul_vector": (ops.matmul, lambda m, k, n: ((k,), (k, n))),
    "matmul_column": (ops.matmul, lambda m, k, n: ((m, k), (k,))),
    "matmul_dot": (ops.matmul, lambda m, k, n: ((k,), (k,))),
    "operator_@": (lambda a, b: a @ b, lambda m, k, n: ((m, k), (k, n))),
    "tensordot": (lambda a, b: ops.tensordot(a, b, axes=1), lambda m, k, n: ((m, k), (k, n))),
    "tensordot_pairs": (
        lambda a, b: ops.tensordot(a, b, axes=([0, 2], [1, 0])),
        lambda m, k, n: ((m, k, 2), (2, m, n)),
    ),
    "einsum": (lambda a, b: ops.einsum("ij,jk->ik", a, b), lambda m, k, n: ((m, k), (k, n))),
    "einsum_batch": (
        lambda a, b: ops.einsum("bij,bj->bi", a, b),
        lambda m, k, n: ((n, m, k), (n, k)),
    ),
    "einsum_summed_away": (
        lambda a, b: ops.einsum("ij,kl->ik", a, b),
        lambda m, k, n: ((m, k), (n, 2)),
    ),
    "einsum_implicit": (lambda a, b: ops.einsum("ij,jk", a, b), lambda m, k, n: ((m, k), (k, n))),
    "einsum_ellipsis": (
        lambda a, b: ops.einsum("...ij,...jk->...ik", a, b),
        lambda m, k, n: ((2, n, m, k), (n, k, 3)),
    ),
    "einsum_ellipsis_broadcast": (  # b's leading 1 is read n times: its gradient is their sum
        lambda a, b: ops.einsum("...i,...i->...", a, b),
        lambda m, k, n: ((n, m, k), (1, k)),
    ),
    "einsum_ellipsis_implicit": (
        lambda a, b: ops.einsum("i...,i", a, b),
        lambda m, k, n: ((k, m, n), (k,)),
    ),
    "einsum_diagonal": (  # b_jj: only b's diagonal is read, so only it gets a slope
        lambda a, b: ops.einsum("ij,jj->i", a, b),
        lambda m, k, n: ((m, k), (k, k)),
    ),
    "einsum_traces": (
        lambda a, b: ops.einsum("...ii,...->...", a, b),
        lambda m, k, n: ((n, k, k), (n,)),
    ),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=0), lambda m, k, n: ((m, k), (n, k))),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), lambda m, k, n: ((m, k), (m, k))),
    "chain": (lambda a, b: ops.mean(ops.square(a - b), axis=-1), lambda m, k, n: ((m, k), (m, k))),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=8, deadline=None)
@given(
    m=st.integers(1, 3),
    k=st.integers(1, 3),
    n=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_each_two_input_op_has_the_derivative_finite_differences_give(name, m, k, n, seed):
    f, shapes = BINARY[name]
    rng = np.random.default_rng(seed)
    a, b = (rng.normal(size=s) for s in shapes(m, k, n))
    if name == "power":
        a = 0.5 + np.abs(a)
    if name in ("maximum", "minimum", "where"):
        a = away_from(a + 0.2 * np.sign(a - b), [0.0])  # no tie, no kink (a has the full shape)
        a = np.where(np.abs(a - b) < 0.1, a + 0.5, a)
    if name == "divide_no_nan" or name == "divide":
        b = np.where(np.abs(b) < 0.3, 0.3 + np.abs(b), b)
    check(f, a, b, seed=seed)


def test_a_tensor_read_twice_gets_the_sum_of_both_paths():
    """The deck's ∂C/∂z = σ′(z)·(w3·∂C/∂z′ + w4·∂C/∂z″), one op at a time: C = 3·h + h² with
    h = σ(x) reads h twice, so ∂C/∂h = 3 + 2h and ∂C/∂x = σ′(x)·(3 + 2h)."""
    x0 = np.array([0.5])
    with ops.Tape() as tape:
        x = tape.watch(x0, "x")
        h = ops.sigmoid(x)
        C = 3 * h + h * h
    (dC_dx,) = tape.gradients(C, [x])
    s = 1 / (1 + np.exp(-0.5))
    np.testing.assert_allclose(dC_dx, s * (1 - s) * (3 + 2 * s))
    assert [step.op for step in tape.steps] == ["sigmoid", "multiply", "multiply", "add"]


def test_outside_a_recording_ops_are_numpy():
    x = np.array([[1.0, -2.0], [3.0, 4.0]])
    assert type(ops.relu(x)) is np.ndarray
    np.testing.assert_array_equal(ops.relu(x), np.maximum(x, 0))
    np.testing.assert_allclose(ops.softmax(x).sum(axis=-1), [1, 1])
    assert ops.matmul(x, x).tolist() == (x @ x).tolist()
    assert ops.one_hot(np.array([1, 0]), 3).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert ops.nn.relu is ops.relu and ops.shape(x) == (2, 2)
    np.testing.assert_allclose(ops.categorical_crossentropy(np.eye(2), np.full((2, 2), 0.5)),
                               [np.log(2)] * 2, rtol=1e-6)  # fmt: skip


def test_a_leaf_that_nothing_reached_gets_zeros_and_constants_stay_constant():
    with ops.Tape() as tape:
        x, unused = tape.watch(np.ones(2), "x"), tape.watch(np.ones(3), "unused")
        C = ops.sum(x * np.array([2.0, 3.0]) + ops.stop_gradient(x) ** 2)
    dx, du = tape.gradients(C, [x, unused])
    np.testing.assert_array_equal(dx, [2, 3])  # stop_gradient: x² is a constant here
    np.testing.assert_array_equal(du, [0, 0, 0])


def test_a_recorded_tensor_refuses_numpy_and_says_what_to_use():
    with ops.Tape() as tape:
        x = tape.watch(np.ones(2), "x")
        with pytest.raises(TypeError, match=r"would lose its derivative\. Use glassnet\.ops"):
            np.asarray(x)
        with pytest.raises(TypeError):
            np.exp(x)
        assert isinstance(np.ones(2) + x, ops.Tensor)  # NumPy's operator defers to the tensor
    assert ops.convert_to_numpy(x).tolist() == [1.0, 1.0]


def test_einsum_of_a_diagonal_sends_the_slope_to_the_diagonal_alone():
    """C = tr(X) = Σᵢ xᵢᵢ: ∂C/∂X is the identity; z = diag(X) · w: ∂C/∂xᵢᵢ = wᵢ ∂C/∂zᵢ."""
    with ops.Tape() as tape:
        x = tape.watch(np.arange(9.0).reshape(3, 3), "x")
        C = ops.einsum("ii", x)
        z = ops.einsum("ii,i->i", x, np.array([1.0, 2.0, 3.0]))
    assert float(ops.convert_to_numpy(C)) == 12.0
    (dC_dx,) = tape.gradients(C, [x])
    np.testing.assert_array_equal(dC_dx, np.eye(3))
    (dz_dx,) = tape.gradients(z, [x], np.ones(3))
    np.testing.assert_array_equal(dz_dx, np.diag([1.0, 2.0, 3.0]))

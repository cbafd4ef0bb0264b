"""Optimizers: one step worked by hand, many steps against a plain reference, Keras defaults."""

import math

import numpy as np
import pytest

from glassnet import optimizers


def run(optimizer, steps, rng, shape=(3, 2)):
    """Parameters after ``steps`` updates with a fixed sequence of random gradients."""
    p = rng.normal(size=shape)
    grads = [rng.normal(size=shape) for _ in range(steps)]
    start = p.copy()
    for g in grads:
        optimizer.apply([(p, g)])
    return start, grads, p


# ---- one step by hand -------------------------------------------------------------------------


def test_sgd_one_step():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    optimizers.SGD(learning_rate=0.1).apply([(p, g)])
    np.testing.assert_allclose(p, [1.0 - 0.05, -2.0 - 0.025])


def test_sgd_momentum_two_steps():
    p, g = np.array([1.0]), np.array([1.0])
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    opt.apply([(p, g)])  # m = −0.1, p = 0.9
    opt.apply([(p, g)])  # m = 0.9·(−0.1) − 0.1 = −0.19, p = 0.71
    np.testing.assert_allclose(p, [0.71])


def test_sgd_nesterov_one_step():
    p, g = np.array([1.0]), np.array([1.0])
    optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True).apply([(p, g)])
    np.testing.assert_allclose(p, [1.0 + 0.9 * -0.1 - 0.1])  # p + μ·m − η·g


def test_rmsprop_one_step():
    p, g = np.array([1.0]), np.array([2.0])
    optimizers.RMSprop(learning_rate=0.01).apply([(p, g)])
    v = 0.1 * 4.0  # v = (1 − ρ)·g²
    np.testing.assert_allclose(p, [1.0 - 0.01 * 2.0 / math.sqrt(v + 1e-7)])


def test_adam_one_step():
    p, g = np.array([1.0]), np.array([2.0])
    optimizers.Adam(learning_rate=0.01).apply([(p, g)])
    m, v = 0.1 * 2.0, 0.001 * 4.0
    alpha = 0.01 * math.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(p, [1.0 - alpha * m / (math.sqrt(v) + 1e-7)])  # ≈ 1 − 0.01


def test_adamw_decays_first():
    p, g = np.array([1.0]), np.array([0.0])
    optimizers.AdamW(learning_rate=0.1, weight_decay=0.5).apply([(p, g)])
    np.testing.assert_allclose(p, [1.0 - 0.1 * 0.5])  # g = 0: only the decay acts


# ---- many steps against plain reference implementations -----------------------------------------


def reference(name, start, grads, **kw):
    p = start.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            m = kw["momentum"] * m - kw["lr"] * g
            p = p + (kw["momentum"] * m - kw["lr"] * g if kw["nesterov"] else m)
        elif name == "rmsprop":
            v = kw["rho"] * v + (1 - kw["rho"]) * g**2
            step = kw["lr"] * g / np.sqrt(v + 1e-7)
            m = kw["momentum"] * m + step
            p = p - m
        else:  # adam / adamw
            p = p - kw["lr"] * kw.get("wd", 0.0) * p
            m = kw["b1"] * m + (1 - kw["b1"]) * g
            v = kw["b2"] * v + (1 - kw["b2"]) * g**2
            m_hat, v_hat = m / (1 - kw["b1"] ** t), v / (1 - kw["b2"] ** t)
            # Keras puts ε on √v, not on √v̂: in m̂, v̂ terms it is ε / √(1 − β₂ᵗ).
            p = p - kw["lr"] * m_hat / (np.sqrt(v_hat) + 1e-7 / math.sqrt(1 - kw["b2"] ** t))
    return p


@pytest.mark.parametrize(
    "optimizer, name, kw",
    [
        (
            lambda: optimizers.SGD(0.05, momentum=0.9),
            "sgd",
            {"lr": 0.05, "momentum": 0.9, "nesterov": False},
        ),
        (
            lambda: optimizers.SGD(0.05, momentum=0.5, nesterov=True),
            "sgd",
            {"lr": 0.05, "momentum": 0.5, "nesterov": True},
        ),
        (lambda: optimizers.RMSprop(0.01), "rmsprop", {"lr": 0.01, "rho": 0.9, "momentum": 0.0}),
        (
            lambda: optimizers.RMSprop(0.01, momentum=0.5),
            "rmsprop",
            {"lr": 0.01, "rho": 0.9, "momentum": 0.5},
        ),
        (lambda: optimizers.Adam(0.01), "adam", {"lr": 0.01, "b1": 0.9, "b2": 0.999}),
        (
            lambda: optimizers.AdamW(0.01, weight_decay=0.1),
            "adam",
            {"lr": 0.01, "b1": 0.9, "b2": 0.999, "wd": 0.1},
        ),
    ],
)
def test_many_steps_match_reference(optimizer, name, kw, rng):
    start, grads, p = run(optimizer(), 50, rng)
    np.testing.assert_allclose(p, reference(name, start, grads, **kw), rtol=1e-9, atol=1e-12)


def test_state_is_allocated_once_and_updated_in_place(rng):
    opt = optimizers.Adam()
    p, g = rng.normal(size=(4,)), rng.normal(size=(4,))
    opt.apply([(p, g)])
    state_ids = [id(a) for s in opt.state for a in s.values()]
    p_id = id(p)
    opt.apply([(p, g)])
    assert [id(a) for s in opt.state for a in s.values()] == state_ids
    assert id(p) == p_id and opt.iterations == 2


def test_keras_defaults():
    assert optimizers.SGD().learning_rate == 0.01
    rms = optimizers.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.epsilon) == (0.001, 0.9, 1e-7)
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.AdamW().weight_decay == 0.004


@pytest.mark.parametrize(
    "name, cls",
    [
        ("sgd", optimizers.SGD),
        ("RMSprop", optimizers.RMSprop),
        ("adam", optimizers.Adam),
        ("adamw", optimizers.AdamW),
    ],
)
def test_by_name(name, cls):
    assert type(optimizers.get(name)) is cls


def test_unknown_name():
    with pytest.raises(
        ValueError,
        match=r"Unknown optimizer: 'adma'\. Did you mean 'adam'\? "
        r"Valid names: adam, adamw, rmsprop, sgd\.",
    ):
        optimizers.get("adma")


@pytest.mark.parametrize("lr", [-0.1, float("nan"), "fast", float("inf")])
def test_learning_rate_must_be_a_non_negative_number(lr):
    # 0 is accepted, as Keras accepts it (a frozen run); the CLI asks for a positive one.
    with pytest.raises(ValueError, match=f"Received learning_rate={lr!r}. Expected a non-neg"):
        optimizers.SGD(learning_rate=lr)


def test_numpy_scalars_are_numbers_too():
    assert optimizers.Adam(learning_rate=np.float32(0.5)).learning_rate == 0.5


def test_clipnorm(rng):
    p, g = np.zeros(2), np.array([3.0, 4.0])
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([(p, g)])
    np.testing.assert_allclose(p, [-0.6, -0.8])

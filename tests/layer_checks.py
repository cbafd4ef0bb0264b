"""Checks that tests of layers share: a layer's backward pass against finite differences, float64
inside a hypothesis test, and a layer's working arrays kept from batch to batch."""

from __future__ import annotations

import numpy as np

import glassnet
from glassnet.layers import Dropout
from tests.gradcheck import numerical_gradient, relative_error


def check_layer(layer, a_prev, rng, training=True, tolerance=1e-6, floor=0.0, params=True):
    """Backward against finite differences of C = Σ forward(a_prev) ⊙ dC_da (random dC_da),
    for the input and (``params``) every trainable parameter (``floor``: see
    ``relative_error``). A dropout layer keeps the mask of its first call."""
    out = layer.forward(a_prev, training=training)
    dC_da = rng.normal(size=out.shape)
    if isinstance(layer, Dropout) and getattr(layer, "mask", None) is not None:
        mask = layer.mask  # the same mask for every evaluation
        layer.forward = lambda a, training=True: a * mask

    def C():
        return float((layer.forward(a_prev, training=training) * dC_da).sum())

    dC_da_prev = layer.backward(dC_da)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert dC_da_prev.shape == a_prev.shape
    assert relative_error(dC_da_prev, numerical_gradient(C, a_prev), floor) < tolerance
    if params:
        for name, p in layer.params.items():
            if name not in layer.non_trainable:
                error = relative_error(grads[name], numerical_gradient(C, p), floor)
                assert error < tolerance, name


def in_float64(test):
    """Run a hypothesis test body with float64 layers (fixtures do not mix with @given)."""

    def run(*args, **kwargs):
        glassnet.config.set_floatx("float64")
        try:
            test(*args, **kwargs)
        finally:
            glassnet.config.set_floatx("float32")

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


def trains_as_with_fresh_arrays(make_model, module, x, y, monkeypatch):
    """The model ``make_model()`` builds, trained on (x, y) as it is and again with ``module``'s
    ``workspace`` making a new array at every call: the weights must be the same, bit for bit.
    Returns the first model, for a look at its working arrays."""

    def train(reuse: bool):
        if not reuse:
            new = lambda c, name, shape, dtype: np.empty(shape, dtype)  # noqa: E731
            monkeypatch.setattr(module, "workspace", new)
        glassnet.utils.set_random_seed(3)
        model = make_model()
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        monkeypatch.undo()
        return model

    reused, fresh = train(True), train(False)
    for a, b in zip(reused.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    return reused


def reused_between_calls(layer, x, names) -> list[str]:
    """Which of the working arrays ``names`` a second call of ``layer`` (another batch of the
    same shape) took over from the first; and that the first call's outputs stayed as they were."""
    kept = layer(x, training=True)
    kept = kept if isinstance(kept, list) else [kept]
    first = [np.array(a) for a in kept]
    before = {name: vars(layer).get(name) for name in names}
    layer(x[::-1] * 2, training=True)
    for a, b in zip(kept, first, strict=True):
        np.testing.assert_array_equal(a, b)
    return [n for n, a in before.items() if a is not None and vars(layer).get(n) is a]

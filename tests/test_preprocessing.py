"""Rescaling and Normalization: formulas, gradients, adapt, and weights fit leaves alone."""

import numpy as np
import pytest

from glassnet import glassbox
from glassnet.layers import Dense, Input, Normalization, Rescaling
from glassnet.models import Sequential


@pytest.mark.parametrize("invert", [False, True])
def test_gradients_through_preprocessing(float64, rng, invert):
    norm = Normalization(invert=invert)
    norm.adapt(rng.normal(size=(30, 3)) * 4 + 2)
    model = Sequential([Input((3,)), Rescaling(0.5, offset=-1.0), norm, Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    report = glassbox.check_gradients(model, rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    assert report.ok
    assert [row[2] for row in report.rows] == ["W", "b"]  # mean and variance are not trained


def test_adapt_sets_mean_and_variance_and_fit_keeps_them(rng):
    data = rng.normal(size=(100, 4)) * [1, 2, 3, 4] + [0, 1, 2, 3]
    norm = Normalization()
    norm.adapt(data)
    np.testing.assert_allclose(norm.params["mean"], data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.params["variance"], data.var(axis=0), rtol=1e-5)
    out = norm(data)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    model = Sequential([Input((4,)), norm, Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    before = norm.params["mean"].copy()
    model.fit(data, rng.normal(size=100), epochs=2, verbose=0)
    np.testing.assert_array_equal(norm.params["mean"], before)
    lines = []
    model.summary(print_fn=lines.append)
    assert " Non-trainable params: 9 (36.00 B)" in lines  # mean, variance (4 each), count


def test_one_mean_over_everything_and_given_values(rng):
    norm = Normalization(axis=None)
    norm.adapt(np.array([[1.0, 3.0], [5.0, 7.0]]))
    np.testing.assert_allclose(norm(np.array([[4.0, 4.0]])), [[0.0, 0.0]], atol=1e-6)
    given = Normalization(mean=2.0, variance=4.0)
    np.testing.assert_allclose(given(np.array([[4.0]])), [[1.0]])
    assert Rescaling(1 / 255)(np.array([[255.0]]))[0, 0] == pytest.approx(1.0)


def test_bad_preprocessing_arguments():
    with pytest.raises(ValueError, match="both `mean` and `variance` must be set"):
        Normalization(mean=1.0)
    with pytest.raises(TypeError, match="Received scale='big'. Expected a number"):
        Rescaling("big")

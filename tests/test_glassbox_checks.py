"""The glass box's ✓ tells the truth: a right layer passes at any loss, a tiny one included, and
a wrong backward pass fails — for every kind of layer the trace shows; and each kind says in
words what its backward pass does."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import cli, glassbox, layers
from glassnet.glassbox.render import format_array, number
from glassnet.models import Sequential

LABEL = 1


def _model(kind: str, rng) -> tuple[Sequential, np.ndarray]:
    """A small float32 model around one layer of ``kind``, with a softmax over 3 classes, and a
    batch of one input for it."""
    head = [layers.Dense(3, activation="softmax")]
    if kind == "Dense":
        body, shape = [layers.Dense(5, activation="tanh")], (6,)
    elif kind == "Conv2D":  # with max pooling and flatten after it, as the deck's CNN
        body = [layers.Conv2D(3, 3, activation="tanh"), layers.MaxPooling2D(2), layers.Flatten()]
        shape = (6, 6, 2)
    elif kind == "Conv1D":
        body = [layers.Conv1D(3, 3, activation="tanh"), layers.AveragePooling1D(2),
                layers.GlobalMaxPooling1D()]  # fmt: skip
        shape = (8, 2)
    elif kind in ("SimpleRNN", "LSTM", "GRU"):
        body, shape = [getattr(layers, kind)(4)], (5, 3)
    elif kind == "BatchNormalization":
        body = [
            layers.Dense(5, activation="tanh"),
            layers.BatchNormalization(),
            layers.Dropout(0.3),
        ]
        shape = (6,)
    elif kind == "Embedding":
        body, shape = [layers.Embedding(10, 4), layers.GlobalAveragePooling1D()], (5,)
    else:
        raise AssertionError(kind)
    model = Sequential([layers.Input(shape=shape), *body, *head])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    if kind == "Embedding":
        x = rng.integers(0, 10, size=(1, *shape))
    else:
        x = rng.normal(size=(1, *shape)).astype("float32")
    if kind == "BatchNormalization":  # statistics of its own, so that γ and β matter
        bn = model.layers[1]
        bn.params["moving_mean"][...] = rng.normal(size=5) * 0.1
        bn.params["moving_variance"][...] = rng.uniform(0.5, 2, size=5)
    return model, x


def _confident(model, x, label: int = LABEL, beyond: float = 0.0) -> None:
    """Raise the output layer's bias for ``label`` until C ≈ 1e-6, as a trained network gives
    its own answer nearly all of its probability; then by ``beyond`` more (25: C ≈ 1e-17)."""
    b = model.layers[-1].params["b"]
    for _ in range(60):
        if -np.log(model.predict(x, verbose=0)[0, label]) < 3e-6:
            b[label] += beyond
            return
        b[label] += 1.0
    raise AssertionError("could not make the model confident")


BEYOND = pytest.mark.parametrize("beyond", [0.0, 25.0], ids=["C≈1e-6", "C≈1e-17"])


KINDS = ["Dense", "Conv2D", "Conv1D", "SimpleRNN", "LSTM", "GRU", "BatchNormalization", "Embedding"]


@BEYOND
@pytest.mark.parametrize("kind", KINDS)
def test_a_right_layer_passes_at_a_tiny_loss(kind, rng, beyond):
    model, x = _model(kind, rng)
    _confident(model, x, beyond=beyond)
    tr = glassbox.trace(model, x, np.array([LABEL]), learning_rate=0.01)
    assert tr.tiny_loss and 0 < tr.C < 1e-5
    checked = [(lt.name, name, c.error) for lt in tr.layers for name, c in lt.numeric.items()]
    assert len(checked) >= 2
    for name, tensor, error in checked:
        assert error <= glassbox.TOLERANCE, (name, tensor, error)
    assert "✗" not in tr.render()
    assert "C ≈ 0" in tr.render()
    assert glassbox.check_gradients(model, x, np.array([LABEL])).ok


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_backward_pass_fails_at_a_tiny_loss(kind, rng, monkeypatch):
    model, x = _model(kind, rng)
    _confident(model, x)
    broken = type(model.layers[0])  # every copy the trace makes is built from this class
    right = broken.backward

    def backward(self, dC_da, cache=None):  # right, but for ∂C/∂(first parameter) × 1.5
        dC_dx = right(self, dC_da, cache)
        first = next(iter(self.grads))
        self.grads[first] *= 1.5
        return dC_dx

    monkeypatch.setattr(broken, "backward", backward)
    tr = glassbox.trace(model, x, np.array([LABEL]), learning_rate=0.01)
    first = tr.layers[0]
    wrong = first.numeric[next(iter(first.numeric))]
    assert not wrong.ok and wrong.error > 100 * glassbox.TOLERANCE
    assert "✗" in tr.render()
    assert not glassbox.check_gradients(model, x, np.array([LABEL])).ok


def test_the_relative_error_has_a_floor_and_no_blind_spot():
    agree = glassbox.relative_error
    assert agree(np.array([3e-12]), np.array([1e-12]), 1e-4) == pytest.approx(2e-8)  # noise
    assert agree(np.array([2e-6]), np.array([1e-6]), 1e-4) == pytest.approx(1e-2)  # a factor 2
    assert agree(np.array([2e-17]), np.array([1e-17])) == pytest.approx(0.5)  # no floor: seen
    assert agree(np.array([0.5, 2.0]), np.array([0.5, 1.0])) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("Conv2D", ["goes to the place of its largest value",
                    "the same numbers, rearranged back into the input's shape",
                    "as layer 2 (MaxPooling2D) sent it back"]),
        ("Conv1D", ["shared out equally, ÷ 2", "each feature map's ∂C/∂a goes to the place"]),
        ("LSTM", ["back through time", "‖∂C/∂h_t‖"]),
        ("BatchNormalization", ["γ/√(σ² + ε)", "this step ran without dropout"]),
        ("Embedding", ["tokens are labels"]),
    ],
)  # fmt: skip
def test_every_layer_kind_says_what_its_backward_pass_does(kind, words, rng):
    model, x = _model(kind, rng)
    tr = glassbox.trace(model, x, np.array([LABEL]), learning_rate=0.01)
    text = tr.render()
    backward = text.split("BACKWARD PASS")[1].split("UPDATE")[0]
    for lt in tr.layers:  # every layer in the backward pass, under its own rule
        assert lt.backward and f"layer {lt.number} ({lt.name}) — {lt.backward}" in backward
        assert "case 2" not in lt.backward or lt.has_weights
    for said in words:
        assert said in backward, said
    if kind == "Conv2D":  # what pooling and flatten send back is shown, shaped as their input
        pool, flat = tr.layers[1], tr.layers[2]
        assert pool.dC_dx.shape == tr.layers[0].a.shape and flat.dC_dx.shape == pool.dC_da.shape
        assert np.array_equal(flat.dC_dx.reshape(-1), flat.dC_da.reshape(-1))
        kept = pool.dC_dx[pool.dC_dx != 0].size  # one place in each 2×2 window gets ∂C/∂a
        assert kept == np.count_nonzero(pool.dC_da)


def test_small_numbers_print_as_powers_of_ten():
    assert number(1.2e-6) == "1.2e-6" and number(-3.25e-10) == "-3.25e-10"
    assert number(0.61768) == "0.6177" and number(0) == "0"
    text = format_array(np.array([0.5, 2.5e-6, 0.0]))
    assert text == "[0.5000, 2.5e-6, 0]"


def test_the_model_and_the_process_keep_their_float_type(rng):
    import glassnet

    model, x = _model("Dense", rng)
    glassbox.check_gradients(model, x, np.array([LABEL]))
    assert glassnet.config.floatx() == "float32"
    assert model.layers[0].params["W"].dtype == np.float32


def test_explain_at_the_predicted_label_checks_true_and_says_the_loss_is_tiny(
    tmp_path, rng, capsys
):
    model, x = _model("Dense", rng)
    _confident(model, x)
    model.save(tmp_path / "confident.keras")
    assert cli.main(["explain", str(tmp_path / "confident.keras"), "--input",
                     *map(str, x[0])]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"No --label given: using the predicted class, {LABEL}." in out
    assert "✓" in out and "✗" not in out
    assert "C ≈ 0" in out and "--label" in out
    assert "0.0000 →" not in out


def test_json_keeps_every_float32_in_its_shortest_form(rng, tmp_path, capsys):
    import json

    model, x = _model("Conv2D", rng)
    tr = glassbox.trace(model, x, np.array([LABEL]), learning_rate=0.01)
    data = json.loads(tr.to_json())
    W = np.array(data["layers"][0]["W"], dtype=np.float32)
    assert np.array_equal(W, tr.layers[0].W)  # the same float32 numbers, read back
    assert len(repr(data["layers"][0]["W"][0][0])) <= 12  # 0.1, not 0.10000000149011612
    check = data["layers"][0]["numeric"]["W"]
    assert set(check) == {"indices", "backprop", "finite", "C"}
    dense, x = _model("Dense", rng)
    dense.save(tmp_path / "dense.keras")
    assert cli.main(["explain", str(tmp_path / "dense.keras"), "--input", *map(str, x.ravel()),
                     "--json", str(tmp_path / "t.json")]) == 0  # fmt: skip
    said = capsys.readouterr().out.splitlines()[1]
    assert said.startswith(f"Wrote the trace to {tmp_path / 't.json'} (") and "MB: every" in said


def test_a_z_within_epsilon_of_relus_kink_is_measured_again_not_marked_wrong():
    """z = 0.5·1 − 0.5 + 3·10⁻⁷ sits 3·10⁻⁷ above relu's kink: central differences at ε = 10⁻⁶
    step across it (their average of the two slopes matches neither), so the check measures that
    tensor again at ε/100 — and a wrong derivative still fails there (the tests above)."""
    model = Sequential([layers.Input((1,)), layers.Dense(1, activation="relu"), layers.Dense(1)])
    model.compile("sgd", "mse")
    model.layers[0].set_weights([np.array([[0.5]]), np.array([-0.5 + 3e-7])])
    model.layers[1].set_weights([np.array([[2.0]]), np.array([0.0])])
    x, y = np.array([[1.0]]), np.array([[1.0]])
    w = model.layers[0].params["W"]

    def C(delta):
        w[...] = 0.5 + delta
        c = float(((model.predict(x, verbose=0) - y) ** 2).mean())
        w[...] = 0.5
        return c

    straddled = (C(1e-6) - C(-1e-6)) / 2e-6
    assert abs(straddled - (-4 * (1 - 2 * 3e-7))) > 0.5  # ε = 10⁻⁶ alone would say ✗
    report = glassbox.check_gradients(model, x, y)
    assert all(row[5] < 1e-5 for row in report.rows), report

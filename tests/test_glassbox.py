"""The glass box: traces show the deck's numbers, gradients that finite differences confirm,
and exactly the step that training takes."""

import json

import numpy as np
import pytest

import glassnet
from glassnet import cli, glassbox
from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential
from tests.deck_numbers import DECK_B, DECK_W


def hand_backprop(x, y, lr):
    """The deck's example worked with the chain rule, independently of glassnet (MSE, 2 outputs)."""
    sigma = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    a, zs, activations = x, [], [x]
    for W, b in zip(DECK_W, DECK_B):
        z = W @ a + b  # the deck's column-vector form
        a = sigma(z)
        zs.append(z)
        activations.append(a)
    dC_da = 2 * (a - y) / 2  # C = mean over the 2 outputs of (a − y)²
    dC_dz = [None] * 3
    dC_dz[2] = a * (1 - a) * dC_da  # σ′(z) = a(1 − a)
    for layer in (1, 0):  # case 2: ∂C/∂z = σ′(z) ⊙ (W_nextᵀ · ∂C/∂z_next)
        s = activations[layer + 1]
        dC_dz[layer] = s * (1 - s) * (DECK_W[layer + 1].T @ dC_dz[layer + 1])
    dC_dW = [np.outer(dC_dz[i], activations[i]) for i in range(3)]
    new_W = [W - lr * g for W, g in zip(DECK_W, dC_dW)]
    return activations, dC_dz, dC_dW, new_W


def test_explain_shows_the_deck_numbers_and_hand_derived_gradients(capsys):
    assert cli.main(["explain"]) == 0
    out = capsys.readouterr().out
    for number in ("0.982", "0.1192", "0.8635", "0.1107", "0.6177", "0.8291"):
        assert number in out
    activations, dC_dz, dC_dW, _ = hand_backprop(np.array([1.0, -1.0]), np.array([0.0, 1.0]), 0.5)
    for layer in range(3):
        for value in dC_dz[layer]:
            assert f"{value:.4f}".rstrip("0") in out, (layer, value)
    assert "case 2: ∂C/∂z = σ′(z) ⊙ (W_nextᵀ·∂C/∂z_next), W_next and ∂C/∂z_next of layer 3" in out
    assert out.count("✓") == 6 and "✗" not in out


def test_trace_matches_hand_derivation(float64):
    x, y = np.array([1.0, -1.0]), np.array([0.0, 1.0])
    activations, dC_dz, dC_dW, new_W = hand_backprop(x, y, 0.5)
    tr = glassbox.trace(glassbox.deck_network(), x[None], y[None], learning_rate=0.5)
    for i, lt in enumerate(tr.layers):
        np.testing.assert_allclose(lt.a[0], activations[i + 1])
        np.testing.assert_allclose(lt.dC_dz[0], dC_dz[i])
        np.testing.assert_allclose(lt.dC_dW, dC_dW[i])
        np.testing.assert_allclose(lt.W_new, new_W[i])
    assert tr.C_new < tr.C


def random_model(rng, loss):
    layers = [
        Input(shape=(3,)),
        Dense(4, activation="tanh"),
        Dropout(0.3),
        Dense(5, activation="sigmoid"),
    ]
    if loss == "mse":
        layers.append(Dense(2, activation="elu"))
    else:
        layers.append(Dense(3, activation="softmax"))
    model = Sequential(layers)
    model.compile(optimizer="adam", loss=loss)
    return model


@pytest.mark.parametrize(
    "loss", ["mse", "categorical_crossentropy", "sparse_categorical_crossentropy"]
)
def test_every_traced_gradient_equals_finite_differences(loss, float64, rng):
    model = random_model(rng, loss)
    x = rng.normal(size=(6, 3))
    y = {
        "mse": rng.normal(size=(6, 2)),
        "categorical_crossentropy": glassnet.utils.to_categorical(rng.integers(0, 3, 6), 3),
        "sparse_categorical_crossentropy": rng.integers(0, 3, 6),
    }[loss]
    tr = glassbox.trace(model, x, y, max_checked=10**6)
    for lt in tr.layers:
        for name in ("W", "b"):
            if lt.has_weights:
                assert len(lt.numeric[name].indices) == (lt.W if name == "W" else lt.b).size
                assert lt.relative_error(name) < 1e-6
    assert glassbox.check_gradients(model, x, y).ok


def test_recorded_step_is_the_step_training_took(rng):
    model = random_model(rng, "mse")
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 2))
    recorder = glassbox.TraceRecorder(every=2)
    snapshots = []

    class Snapshot(glassnet.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            snapshots.append(self.model.get_weights())

    model.fit(
        x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, callbacks=[Snapshot(), recorder]
    )
    assert [(e, s) for e, s, _ in recorder.traces] == [(0, 0), (0, 2)]
    epoch, step, tr = recorder.traces[1]
    weighted = [lt for lt in tr.layers if lt.has_weights]
    before, after = snapshots[2], snapshots[3]
    for i, lt in enumerate(weighted):
        np.testing.assert_array_equal(lt.W, before[2 * i].T)  # Keras kernel = Wᵀ
        np.testing.assert_array_equal(lt.W_new, after[2 * i].T)  # the optimizer's real result
    np.testing.assert_array_equal(tr.x, x[16:24])
    assert tr.optimizer == "Adam"


def test_trace_does_not_change_the_model(rng):
    model = random_model(rng, "mse")
    before = model.get_weights()
    glassbox.trace(model, rng.normal(size=(2, 3)), rng.normal(size=(2, 2)))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0


def test_trace_renders_as_text_html_and_json():
    tr = glassbox.trace(glassbox.deck_network(), glassbox.DECK_INPUT, glassbox.DECK_TARGET)
    assert "FORWARD PASS" in str(tr) and "\x1b[" not in str(tr)
    assert "\x1b[1;36m" in tr.render(color=True)
    html = tr._repr_html_()
    assert html.startswith('<div class="glassnet-trace"') and "BACKWARD PASS" in html
    data = json.loads(tr.to_json())
    assert data["layers"][2]["a"][0] == pytest.approx([0.6177, 0.8291], abs=1e-4)


def test_one_neuron_in_full():
    tr = glassbox.trace(glassbox.deck_network(), glassbox.DECK_INPUT, glassbox.DECK_TARGET)
    text = tr.render(neuron=(2, 1))
    assert "layer 2 (dense_1), neuron 1: z = w·a + b" in text
    assert "[-2.0000, -1.0000]" in text and "-2.0832" in text
    with pytest.raises(ValueError, match=r"Layer 2 has neurons 0..1; received neuron 5"):
        tr.render(neuron=(2, 5))


def test_large_layers_are_summarised(rng):
    model = Sequential(
        [Input(shape=(50,)), Dense(40, activation="relu"), Dense(3, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    text = str(glassbox.trace(model, rng.normal(size=(1, 50)), np.array([1])))
    assert "W (40×50) = ‖·‖ = " in text and "largest: [" in text
    assert "finite differences on the 64 largest entries" in text


def test_explain_a_saved_model_on_an_image(digits_model, tmp_path, capsys):
    path = digits_model
    from tests.photos import draw_digit

    image = draw_digit(tmp_path / "one.png")
    capsys.readouterr()
    assert (
        cli.main(
            [
                "explain",
                str(path),
                "--image",
                str(image),
                "--label",
                "1",
                "--json",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "x (1×64)" in out and "case 1: output layer" in out
    assert (
        json.loads((tmp_path / "t.json").read_text())["loss_name"]
        == "sparse_categorical_crossentropy"
    )


def test_explain_bad_input(tmp_path, capsys):
    assert cli.main(["explain", "--input", "1", "2", "3"]) == 1
    assert "(1×3)·(2×2): the inner sizes 3 and 2 differ" in capsys.readouterr().err
    path = tmp_path / "m.keras"
    glassbox.deck_network().save(path)
    bad = tmp_path / "not-an-image.png"
    bad.write_text("text")
    assert cli.main(["explain", str(path), "--image", str(bad)]) == 1
    assert f"Cannot read {bad} as an image" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["explain", "--learning-rate", "0"])
    assert (
        "argument --learning-rate: expected a positive number, received 0"
        in capsys.readouterr().err
    )
    with pytest.raises(ValueError, match=r"Received learning_rate=-1\. Expected a positive"):
        glassbox.trace(
            glassbox.deck_network(), glassbox.DECK_INPUT, glassbox.DECK_TARGET, learning_rate=-1
        )

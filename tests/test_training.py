"""Training end to end: XOR exactly, reproducibility, and MNIST to the published accuracies."""

import numpy as np
import pytest

import glassnet
from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential
from glassnet.optimizers import SGD, RMSprop
from glassnet.utils import set_random_seed, to_categorical


def test_xor_with_sigmoid_units_is_learned_exactly():
    set_random_seed(0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    y = np.array([[0], [1], [1], [0]], dtype="float32")
    model = Sequential(
        [Input(shape=(2,)), Dense(4, activation="sigmoid"), Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=SGD(learning_rate=2.0, momentum=0.9),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=1000, batch_size=4, verbose=0)
    out = model.predict(x, verbose=0)
    np.testing.assert_array_equal(out > 0.5, y > 0.5)
    assert model.evaluate(x, y, verbose=0)[1] == 1.0
    assert np.abs(out - y).max() < 0.1


def _train_once(x, y):
    set_random_seed(42)
    model = Sequential(
        [
            Input(shape=(x.shape[1],)),
            Dense(16, activation="relu"),
            Dropout(0.3),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    return model.get_weights()


def test_same_seed_gives_bit_identical_weights(rng):
    x = rng.normal(size=(200, 10)).astype("float32")
    y = rng.integers(0, 3, size=200)
    first, second = _train_once(x, y), _train_once(x, y)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    set_random_seed(43)
    other = Sequential([Input(shape=(10,)), Dense(16)]).get_weights()[0]
    assert not np.array_equal(other, first[0])


def test_float64_training_stays_float64(float64, rng):
    model = Sequential([Input(shape=(3,)), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(rng.normal(size=(8, 3)), rng.integers(0, 2, size=8), verbose=0)
    assert model.layers[0].params["W"].dtype == np.float64
    assert model.predict(rng.normal(size=(2, 3)), verbose=0).dtype == np.float64


@pytest.mark.slow
def test_keras_mnist_mlp_recipe_reaches_98_2_percent(mnist_arrays):
    """Keras's classic mnist_mlp example: 784-512-512-10, relu, dropout 0.2, RMSprop, batch 128."""
    x, y, xt, yt = mnist_arrays
    set_random_seed(0)
    model = Sequential(
        [
            Input(shape=(784,)),
            Dense(512, activation="relu"),
            Dropout(0.2),
            Dense(512, activation="relu"),
            Dropout(0.2),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer=RMSprop(), metrics=["accuracy"])
    model.fit(x, to_categorical(y, 10), batch_size=128, epochs=20, verbose=0)
    loss, accuracy = model.evaluate(xt, to_categorical(yt, 10), verbose=0)
    assert accuracy >= 0.982, f"test accuracy {accuracy:.4f}"


@pytest.mark.slow
def test_default_cli_mlp_reaches_97_5_percent_in_5_epochs(mnist_arrays, tmp_path, capsys):
    from glassnet import cli

    assert (
        cli.main(["train", "--seed", "0", "--verbose", "0", "--output", str(tmp_path / "m.keras")])
        == 0
    )
    model = glassnet.models.load_model(tmp_path / "m.keras")
    _, _, xt, yt = mnist_arrays
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    assert accuracy >= 0.975, f"test accuracy {accuracy:.4f}"
    assert f"Test accuracy: {accuracy:.4f}" in capsys.readouterr().out


def test_blas_keeps_its_threads_when_another_thread_asks_for_one():
    """OpenBLAS ignores a raise of its thread count asked from a thread other than the main one,
    so only the main thread lowers it: a block in another thread leaves the count as it was."""
    import threading

    threadpoolctl = pytest.importorskip("threadpoolctl")
    from glassnet.backend import blas_threads_for

    def blas_threads():
        info = threadpoolctl.threadpool_info()
        return max((p["num_threads"] for p in info if p["user_api"] == "blas"), default=None)

    outside = blas_threads()
    if outside is None or outside == 1:
        pytest.skip("no BLAS thread pool with several threads is visible to threadpoolctl")
    seen = []

    def elsewhere():
        with blas_threads_for(0):
            seen.append(blas_threads())

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    with blas_threads_for(0):
        seen.append(blas_threads())
    assert seen == [outside, 1] and blas_threads() == outside


def test_small_products_train_with_one_blas_thread(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from glassnet import callbacks

    def blas_threads():
        info = threadpoolctl.threadpool_info()
        return max((p["num_threads"] for p in info if p["user_api"] == "blas"), default=None)

    outside = blas_threads()
    if outside is None:
        pytest.skip("no BLAS thread pool is visible to threadpoolctl")
    seen = []
    record = callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(blas_threads())
    )
    model = Sequential([Input((20,)), Dense(8), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = rng.normal(size=(64, 20)), rng.integers(0, 2, 64)
    model.fit(x, y, batch_size=32, verbose=0, callbacks=[record])  # 2·32·160 FLOPs a product
    big = Sequential([Input((784,)), Dense(512), Dense(2, activation="softmax")])
    big.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    big.fit(rng.normal(size=(256, 784)), rng.integers(0, 2, 256), batch_size=128, verbose=0,
            callbacks=[record])  # fmt: skip
    assert seen[0] == 1 and seen[-1] == outside and blas_threads() == outside

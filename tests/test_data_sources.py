"""Data as Keras takes it: a PyDataset (Sequence) or a Python generator, for fit, evaluate and
predict, with steps_per_epoch and validation_steps."""

import numpy as np
import pytest

from glassnet.layers import Dense, Input
from glassnet.models import Sequential
from glassnet.utils import PyDataset, Sequence


class Batches(PyDataset):
    def __init__(self, x, y, batch_size, weights=None):
        super().__init__()
        self.x, self.y, self.batch_size, self.weights = x, y, batch_size, weights
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if self.weights is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.weights[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def model_and_data(rng):
    model = Sequential([Input((3,)), Dense(4, activation="relu"), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, rng.normal(size=(20, 3)).astype("float32"), rng.integers(0, 2, 20)


def test_a_pydataset_trains_as_the_same_arrays_do(rng):
    a, x, y = model_and_data(rng)
    b, _, _ = model_and_data(rng)
    b.set_weights(a.get_weights())
    data = Batches(x, y, 5)
    history = a.fit(data, epochs=2, validation_data=Batches(x, y, 10), verbose=0)
    b.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    assert data.epochs_ended == 2
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert a.evaluate(Batches(x, y, 7), verbose=0)[0] == pytest.approx(
        a.evaluate(x, y, verbose=0)[0], rel=1e-6)  # fmt: skip
    np.testing.assert_allclose(a.predict(Batches(x, y, 6), verbose=0), a.predict(x, verbose=0))
    assert Sequence is PyDataset


def test_a_generator_with_steps_per_epoch(rng):
    model, x, y = model_and_data(rng)

    def batches():
        while True:  # endless, as Keras's generator examples are
            for i in range(0, 20, 4):
                yield x[i : i + 4], y[i : i + 4], np.ones(4)

    history = model.fit(batches(), steps_per_epoch=5, epochs=3, verbose=0,
                        validation_data=batches(), validation_steps=2)  # fmt: skip
    assert len(history.history["loss"]) == 3 and "val_loss" in history.history
    logs = model.evaluate(batches(), steps=5, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-5)
    assert model.predict((x[i : i + 4] for i in range(0, 20, 4)), verbose=0).shape == (20, 2)


def test_a_finite_generator_ends_training_with_keras_warning(rng):
    model, x, y = model_and_data(rng)
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        history = model.fit(((x[i : i + 5], y[i : i + 5]) for i in range(0, 20, 5)), epochs=3,
                            verbose=0)  # fmt: skip
    assert len(history.history["loss"]) == 1  # one pass, then the generator was dry


def test_bad_batches_get_the_array_messages(rng):
    model, x, y = model_and_data(rng)
    with pytest.raises(ValueError, match=r"Input x has shape \(4, 5\), but the model expects"):
        model.fit(iter([(np.zeros((4, 5)), y[:4])]), verbose=0)
    with pytest.raises(ValueError, match="must be a tuple \\(x, y\\)"):
        model.fit(iter([x[:4]]), verbose=0)
    with pytest.raises(ValueError, match="its batches carry the targets"):
        model.fit(Batches(x, y, 5), y, verbose=0)
    with pytest.raises(ValueError, match="Received steps=0"):
        model.fit(Batches(x, y, 5), steps_per_epoch=0, verbose=0)


class Loader:
    """A collection of batches gone over afresh each epoch, as a tf.data.Dataset or a PyTorch
    DataLoader is: ``iter()`` starts a new pass (here reshuffled), batches are lists."""

    def __init__(self, x, y, batch_size, seed=0):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.passes = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        self.passes += 1
        order = self.rng.permutation(len(self.x))
        for start in range(0, len(self.x), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield [self.x[rows], self.y[rows]]


def test_a_collection_of_batches_is_gone_over_again_each_epoch(rng):
    x = rng.normal(size=(40, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    model = Sequential([Input(shape=(3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    train, val = Loader(x, y, 8), Loader(x[:16], y[:16], 8)
    history = model.fit(train, epochs=4, validation_data=val, verbose=0)
    assert train.passes == 4 and val.passes == 4  # not one pass used up by the first epoch
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(Loader(x, y, 8), verbose=0) == pytest.approx(
        model.evaluate(x, y, verbose=0), rel=1e-5
    )
    assert model.predict(Loader(x, y, 40, seed=1), verbose=0).shape == (40, 1)


def test_a_pytorch_dataloader_feeds_fit_as_keras_s_does(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is a benchmark extra (.[bench])")
    x = rng.normal(size=(30, 3)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    model = Sequential([Input(shape=(3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(loader, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert set(model.evaluate(loader, verbose=0, return_dict=True)) == {"loss", "accuracy"}

"""A small problem and a small model, for the tests of training, callbacks and progress."""

from glassnet.layers import Dense, Dropout, Input
from glassnet.models import Sequential


def small_problem(rng, n=64):
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, y


def small_model():
    model = Sequential(
        [
            Input(shape=(4,)),
            Dense(8, activation="relu"),
            Dropout(0.1),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

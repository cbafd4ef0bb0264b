"""The TensorBoard callback's event files: the framing and checksums as TFRecord defines them,
and — where the tensorboard package is installed — read by TensorBoard's own reader."""

import struct
from pathlib import Path

import numpy as np
import pytest

from glassnet import callbacks
from glassnet.layers import Dense, Input
from glassnet.models import Sequential


def test_crc32c_is_castagnolis():
    # The standard check value: CRC-32C of b"123456789" is 0xE3069283; TFRecord masks it.
    crc = 0xE3069283
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert callbacks._masked_crc(b"123456789") == masked


def records(path):
    """The TFRecord payloads of an event file, each checksum verified."""
    data, out, i = Path(path).read_bytes(), [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        assert struct.unpack("<I", data[i + 8 : i + 12])[0] == callbacks._masked_crc(
            data[i : i + 8])  # fmt: skip
        body = data[i + 12 : i + 12 + length]
        assert struct.unpack("<I", data[i + 12 + length : i + 16 + length])[0] == (
            callbacks._masked_crc(body))  # fmt: skip
        out.append(body)
        i += 16 + length
    return out


def trained(tmp_path, **kwargs):
    model = Sequential([Input((3,)), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).normal(size=(16, 3)), np.arange(16) % 2
    history = model.fit(x, y, epochs=3, batch_size=4, validation_data=(x, y), verbose=0,
                        callbacks=[callbacks.TensorBoard(tmp_path / "logs", **kwargs)])  # fmt: skip
    return history


def test_event_files_hold_the_epoch_logs(tmp_path):
    history = trained(tmp_path)
    train = list((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))
    validation = list((tmp_path / "logs" / "validation").glob("events.out.tfevents.*"))
    assert len(train) == len(validation) == 1
    bodies = records(train[0])
    assert b"brain.Event:2" in bodies[0] and len(bodies) == 1 + 3
    loss = struct.pack("<f", history.history["loss"][-1])
    assert b"epoch_loss" in bodies[-1] and loss in bodies[-1]
    assert b"epoch_loss" in records(validation[0])[-1]


def test_tensorboard_reads_them(tmp_path):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard package is not installed (it is optional)",
    )
    history = trained(tmp_path, update_freq=2)
    reader = accumulator.EventAccumulator(str(tmp_path / "logs" / "train"))
    reader.Reload()
    assert {"epoch_loss", "epoch_accuracy", "batch_loss"} <= set(reader.Tags()["scalars"])
    losses = [event.value for event in reader.Scalars("epoch_loss")]
    np.testing.assert_allclose(losses, history.history["loss"], rtol=1e-6)
    assert [event.step for event in reader.Scalars("batch_loss")] == [2, 4, 6, 8, 10, 12]


def test_what_is_not_written_says_so():
    with pytest.raises(NotImplementedError, match="writes the scalar logs"):
        callbacks.TensorBoard(histogram_freq=1)
    with pytest.raises(ValueError, match="Received update_freq='sometimes'"):
        callbacks.TensorBoard(update_freq="sometimes")

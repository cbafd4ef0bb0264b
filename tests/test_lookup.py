"""StringLookup, IntegerLookup and TextVectorization: Keras's vocabularies, ids and vectors (the
numbers below are what real Keras 3 gave for the same calls), inside models that take text, in
.keras files both ways, and every bad input with its message."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import glassnet
from glassnet import layers
from glassnet.layers import IntegerLookup, StringLookup, TextVectorization
from glassnet.models import load_model

TEXTS = np.array(["The cat sat.", "the dog, the CAT!", "a bird — Über"])


# ---- what Keras gives, call for call ------------------------------------------------------------


def test_text_vectorization_standardizes_splits_ranks_and_pads_as_keras():
    text = TextVectorization(max_tokens=20, output_sequence_length=5)
    text.adapt(TEXTS)
    # Most frequent first; ties by the token, high to low (code points: "—" > "Über" > "sat").
    # Only ASCII letters are lowered ("Über" stays), only ASCII punctuation goes ("—" stays).
    assert text.get_vocabulary() == ["", "[UNK]", "the", "cat", "—", "Über", "sat", "dog",
                                     "bird", "a"]  # fmt: skip
    np.testing.assert_array_equal(text(TEXTS), [[2, 3, 6, 0, 0], [2, 7, 2, 3, 0], [9, 8, 4, 5, 0]])
    np.testing.assert_array_equal(text(np.array([["the cat"], ["zebra"]])),
                                  [[2, 3, 0, 0, 0], [1, 0, 0, 0, 0]])  # fmt: skip
    assert text.vocabulary_size() == 10
    assert text.get_vocabulary(include_special_tokens=False)[:2] == ["the", "cat"]


def test_without_a_sequence_length_a_batch_is_padded_to_its_longest():
    text = TextVectorization()
    text.adapt(np.array(["a b a", "b c"]))
    np.testing.assert_array_equal(text(np.array(["a b a", "c", ""])),
                                  [[3, 2, 3], [4, 0, 0], [0, 0, 0]])  # fmt: skip


def test_ngrams_and_tf_idf_as_keras():
    text = TextVectorization(output_mode="tf_idf", ngrams=2)
    text.adapt(np.array(["a b a", "b c"]))
    assert text.get_vocabulary() == ["[UNK]", "b", "a", "c", "b c", "b a", "a b"]
    # idf = log(1 + documents ÷ (1 + documents holding the token)); the unknown word's is the mean
    np.testing.assert_allclose(text(np.array(["a b a", "c d"])), [
        [0, 0.51082563, 1.3862944, 0, 0, 0.6931472, 0.6931472],
        [1.3255205, 0, 0, 0.6931472, 0, 0, 0]], rtol=1e-6)  # fmt: skip


def test_counts_padded_to_max_tokens():
    text = TextVectorization(output_mode="count", pad_to_max_tokens=True, max_tokens=8)
    text.adapt(np.array(["a b a", "b c"]))
    np.testing.assert_array_equal(text(np.array(["a b a", "c d"])),
                                  [[0, 1, 2, 0, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0, 0, 0]])  # fmt: skip


def test_string_lookup_ids_vectors_and_back():
    lookup = StringLookup()
    lookup.adapt(np.array(["b", "a", "b", "c", "a", "b"]))
    assert lookup.get_vocabulary() == ["[UNK]", "b", "a", "c"]
    np.testing.assert_array_equal(lookup(np.array(["a", "z", "b"])), [2, 0, 1])
    many = StringLookup(output_mode="multi_hot", vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(many(np.array([["a", "b"], ["c", "z"]])),
                                  [[0, 1, 1, 0], [1, 0, 0, 1]])  # fmt: skip
    one = StringLookup(output_mode="one_hot", vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(one(np.array(["a", "z"])), [[0, 1, 0, 0], [1, 0, 0, 0]])
    assert one(np.array([["a"], ["z"]])).shape == (2, 4)
    back = StringLookup(vocabulary=["a", "b"], invert=True)
    np.testing.assert_array_equal(back(np.array([[1, 2], [0, 7]])),
                                  [["a", "b"], ["[UNK]", "[UNK]"]])  # fmt: skip


def test_a_mask_token_is_id_0():
    lookup = StringLookup(mask_token="", vocabulary=["a", "b"])
    assert lookup.get_vocabulary() == ["", "[UNK]", "a", "b"]
    np.testing.assert_array_equal(lookup(np.array([["a", ""], ["q", "b"]])), [[2, 0], [1, 3]])


def test_integer_lookup_and_its_oov_buckets():
    lookup = IntegerLookup()
    lookup.adapt(np.array([3, 3, 7, 1, 7, 7]))
    assert lookup.get_vocabulary() == [-1, 7, 3, 1]
    np.testing.assert_array_equal(lookup(np.array([7, 1, 5])), [1, 3, 0])
    buckets = IntegerLookup(num_oov_indices=2, vocabulary=[10, 20])
    np.testing.assert_array_equal(buckets(np.array([10, 5, 6, 20])), [2, 1, 0, 3])  # 5 % 2 = 1
    assert lookup(np.array([7.0, 1.0])).tolist() == [1, 3]  # ids that travelled as floats


def test_max_tokens_keeps_the_most_frequent():
    lookup = StringLookup(max_tokens=3)
    lookup.adapt(["x", "y", "y", "z", "z", "z"])
    assert lookup.get_vocabulary() == ["[UNK]", "z", "y"]


def test_standardize_and_split_may_be_functions():
    text = TextVectorization(standardize=lambda t: np.char.upper(t), split=lambda t: [
        s.split("-") for s in t], output_sequence_length=3)  # fmt: skip
    text.adapt(["a-b", "b-c"])
    assert text.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(text(["c-a"]), [[3, 4, 0]])
    chars = TextVectorization(split="character", standardize=None)
    chars.adapt(["abba"])
    np.testing.assert_array_equal(chars(["ab", "b"]), [[3, 2], [2, 0]])


# ---- inside a model -----------------------------------------------------------------------------


def text_model():
    glassnet.utils.set_random_seed(0)
    text = TextVectorization(max_tokens=20, output_sequence_length=5)
    text.adapt(TEXTS)
    inputs = glassnet.Input(shape=(1,), dtype="string")
    x = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(text(inputs)))
    model = glassnet.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_a_model_reads_text_trains_and_predicts():
    model = text_model()
    embedding = model.layers[2].get_weights()[0].copy()
    history = model.fit(TEXTS, np.array([1, 0, 1]), epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    seen = [2, 3, 4, 5, 6, 7, 8, 9]  # the words of the texts; no other row gets a gradient
    moved = np.abs(model.layers[2].get_weights()[0] - embedding).max(axis=1)
    assert (moved[seen] > 0).all() and (moved[10:] == 0).all()
    flat, column = model.predict(TEXTS, verbose=0), model.predict(TEXTS[:, None], verbose=0)
    np.testing.assert_array_equal(flat, column)  # (n,) strings are samples of shape (1,)
    as_bytes = model.predict(np.array([t.encode() for t in TEXTS], dtype=object), verbose=0)
    np.testing.assert_array_equal(as_bytes, flat)


def test_a_text_model_round_trips_through_a_keras_file(tmp_path):
    model = text_model()
    model.save(tmp_path / "text.keras")
    with zipfile.ZipFile(tmp_path / "text.keras") as zf:  # where Keras keeps a vocabulary
        stored = zf.read("assets/layers/text_vectorization/vocabulary.txt").decode()
        assert "assets/layers/text_vectorization/_lookup_layer/vocabulary.txt" in zf.namelist()
    assert stored.split("\n")[:4] == ["", "[UNK]", "the", "cat"]
    again = load_model(tmp_path / "text.keras")
    assert again.layers[1].get_vocabulary() == model.layers[1].get_vocabulary()
    np.testing.assert_array_equal(again.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0))


def test_strings_and_numbers_go_where_they_belong():
    model = text_model()
    with pytest.raises(TypeError, match=r"x must hold strings: the model's input is Input\("):
        model.predict(np.ones((2, 1)), verbose=0)
    numbers = glassnet.Sequential([glassnet.Input(shape=(1,)), layers.Dense(1)])
    with pytest.raises(TypeError, match="x holds strings, but the model's input takes numbers"):
        numbers.predict(np.array([["a"]]), verbose=0)
    with pytest.raises(TypeError, match="must hold numbers or strings; received objects of type"):
        model.predict(np.array([["a"], [None]], dtype=object), verbose=0)
    with pytest.raises(ValueError, match="holds bytes that are not UTF-8 text"):
        model.predict(np.array([b"\xff"], dtype=object), verbose=0)


# ---- bad inputs and arguments, each with its message ---------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: StringLookup(output_mode="binary_x"), ValueError, "Expected one of int, one_hot"),
        (lambda: StringLookup(num_oov_indices=2), NotImplementedError, "TensorFlow's own hash"),
        (lambda: StringLookup(max_tokens=1), ValueError, "max_tokens must be greater than 1"),
        (lambda: StringLookup(vocabulary=["a", "a"]), ValueError, r"repeated terms are \['a'\]"),
        (lambda: StringLookup(mask_token="", vocabulary=["a", ""]), ValueError,
         "Found reserved mask token ''"),
        (lambda: StringLookup(max_tokens=2, vocabulary=["a", "b"]), ValueError,
         "larger than the maximum vocab size"),
        (lambda: StringLookup(output_mode="tf_idf", vocabulary=["a"]), ValueError,
         "idf_weights argument must also be provided"),
        (lambda: StringLookup(sparse=True), NotImplementedError, r"sparse=\.\.\."),
        (lambda: IntegerLookup(vocabulary=[1.5]), ValueError, "holds integers; received 1.5"),
        (lambda: TextVectorization(split="comma"), ValueError, "Received split='comma'"),
        (lambda: TextVectorization(output_mode="count", output_sequence_length=3), ValueError,
         "must not be set if output_mode is not 'int'"),
        (lambda: TextVectorization(ngrams="2"), ValueError, "ngrams must be None, an integer"),
    ],
)  # fmt: skip
def test_bad_arguments_say_what_is_wrong(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_calls_say_what_is_wrong():
    given = StringLookup(vocabulary=["a"])
    with pytest.raises(ValueError, match="Cannot adapt layer .* after setting a static vocab"):
        given.adapt(["a"])
    with pytest.raises(TypeError, match="StringLookup looks up strings; received an array of"):
        given(np.array([1.0]))
    with pytest.raises(ValueError, match="needs a collection of samples; received a single"):
        StringLookup().adapt("abc")
    strict = StringLookup(num_oov_indices=0, vocabulary=["a"])
    with pytest.raises(ValueError, match=r"found OOV values \['q'\]"):
        strict(np.array(["a", "q"]))
    with pytest.raises(RuntimeError, match="you must set the layer's vocabulary before calling"):
        StringLookup(output_mode="multi_hot")(np.array(["a"]))
    with pytest.raises(ValueError, match="the last shape dimension must be 1"):
        TextVectorization()(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="TextVectorization reads strings"):
        TextVectorization()(np.ones(3))
    adapted_tf_idf = StringLookup(output_mode="tf_idf")
    adapted_tf_idf.adapt(["a", "b"])
    with pytest.raises(NotImplementedError, match="does not save an adapted tf_idf vocabulary"):
        adapted_tf_idf.asset_files()


@pytest.mark.parametrize(
    ("vocabulary", "message"),
    [(b"\n[UNK]\nthe\n\xff\n", "its vocabulary.txt is not UTF-8 text"),
     (b"\n[UNK]\nthe\nthe\n", "repeated terms")],
)  # fmt: skip
def test_a_hostile_vocabulary_in_a_file_is_refused(tmp_path, vocabulary, message):
    text_model().save(tmp_path / "text.keras")
    with zipfile.ZipFile(tmp_path / "text.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["assets/layers/text_vectorization/vocabulary.txt"] = vocabulary
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path / "bad.keras")


# ---- real Keras reads glassnet's file ----------------------------------------------------------


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("keras", "tensorflow")),
                    reason="real Keras 3 with TensorFlow is not installed (pip install -e "
                    "'.[bench]'): Keras feeds strings to a model on that backend only")  # fmt: skip
def test_real_keras_reads_a_glassnet_text_model(tmp_path):
    model = text_model()
    model.fit(TEXTS, np.array([1, 0, 1]), epochs=2, verbose=0)
    model.save(tmp_path / "text.keras")
    np.save(tmp_path / "pred.npy", model.predict(TEXTS, verbose=0))
    script = """
import sys, numpy as np, keras, tensorflow as tf
m = keras.models.load_model(sys.argv[1] + "/text.keras")
texts = ["The cat sat.", "the dog, the CAT!", "a bird — Über"]
print(m.layers[1].get_vocabulary())
print(np.abs(m.predict(tf.constant([[t] for t in texts]), verbose=0)
             - np.load(sys.argv[1] + "/pred.npy")).max())
"""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    vocabulary, difference = run.stdout.strip().split("\n")[-2:]
    assert "'the', 'cat'" in vocabulary.replace("np.str_(", "").replace(")", "")
    assert float(difference) < 1e-6


def test_the_glass_box_shows_a_text_model_step_and_checks_it():
    from glassnet import glassbox

    model = text_model()
    text = glassbox.trace(model, TEXTS[:2], np.array([1, 0])).render()
    assert "looks each token up in its vocabulary of 10 and gives its id" in text
    assert "[2, 3, 6, 0, 0]" in text.replace("2.0000", "2")  # the ids layer 2 reads
    assert "✓" in text and "✗" not in text  # the Embedding's and Dense's gradients checked
    one = glassbox.trace(model, "the cat", 1).render()  # one text: a batch of one
    assert "x (1×1)" in one

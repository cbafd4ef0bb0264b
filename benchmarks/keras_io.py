"""keras-io's example scripts with only their imports changed: glassnet against real Keras 3.

keras-io's scripts are not part of this repository (their code stays theirs): point
``--examples`` at a checkout of https://github.com/keras-team/keras-io (its ``examples/``
folder). Each chosen script is run twice, in fresh processes: once with its ``keras`` and
``tensorflow.keras`` imports turned into ``glassnet``, once on real Keras 3 (``KERAS_BACKEND``,
torch by default).
Both runs get the same edits, listed per script below and printed with the results:

- data that would be downloaded comes from here instead (MNIST from ``GLASSNET_DATA`` through
  glassnet's loader, for both runs; other files as same-shaped stand-ins, said so);
- fewer epochs and, where an epoch would take minutes on two cores, fewer samples;
- ``plt.show()`` draws nowhere (``MPLBACKEND=Agg``); a line at the end prints the results.

    python benchmarks/keras_io.py --examples ~/keras-io/examples [--only vision/autoencoder.py]

Prints a markdown table: per script, each framework's results and seconds.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MNIST_LOADER = """
import glassnet.datasets.mnist as _mnist_source
keras.datasets.mnist.load_data = _mnist_source.load_data  # MNIST from GLASSNET_DATA, not the web
"""

SINE_DAYS = """
import numpy as _np
import pandas as _pd

def _nab_like(jump):  # NAB's art_daily_* files: 14 days of 5-minute values, one daily cycle
    index = _pd.date_range("2014-04-01", periods=4032, freq="5min", name="timestamp")
    rng = _np.random.default_rng(0 if not jump else 1)
    t = _np.arange(4032)
    value = 20 + 60 * (_np.sin(2 * _np.pi * t / 288) > 0) * _np.sin(2 * _np.pi * t / 288) ** 2
    value = value + rng.normal(0, 1.0, 4032)
    if jump:
        value[3000:3100] += 80  # the anomaly: a jump up for a few hours
    return _pd.DataFrame({"value": value}, index=index)

pd.read_csv = lambda url, **kw: _nab_like("jumpsup" in url)
"""


IMDB_LIKE = """
import numpy as _np

def _imdb_like(num_words=None, **_):  # keras.datasets.imdb's shape: lists of word ids, 0/1
    rng = _np.random.default_rng(0)
    words = num_words or 20000
    def reviews(n):
        labels = rng.integers(0, 2, n)
        out = []
        for label in labels:  # common words, and a few that lean one way (ids 100-199 vs 200-299)
            ids = rng.zipf(1.3, rng.integers(40, 400)) % (words - 4) + 4
            leaning = rng.integers(100, 200, rng.integers(2, 8)) + 100 * label
            ids[rng.integers(0, len(ids), len(leaning))] = leaning
            out.append([1] + ids.tolist())
        return _np.array(out, dtype=object), labels
    return reviews(5000), reviews(5000)

keras.datasets.imdb.load_data = _imdb_like
"""

FORDA_LIKE = """
import numpy as _np

def _forda_like(filename, delimiter=None):  # FordA's shape: label (-1/1), then 500 values
    test = "TEST" in filename
    rng = _np.random.default_rng(1 if test else 0)
    n = 1320 if test else 3601
    labels = rng.choice([-1, 1], n)
    t = _np.arange(500)
    freq = _np.where(labels == 1, 0.031, 0.025)[:, None] * rng.normal(1, 0.08, (n, 1))
    x = _np.sin(2 * _np.pi * freq * t + rng.uniform(0, 6.3, (n, 1))) + rng.normal(0, 1.0, (n, 500))
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)  # z-normalized
    return _np.column_stack([labels, x])

np.loadtxt = _forda_like
"""

LICENSE_TEXTS = """
import glob as _glob
import os as _os

def _license_texts(fname, origin=None, **_):  # a local corpus in place of the download
    files = sorted(p for p in _glob.glob("/usr/share/common-licenses/*") if _os.path.isfile(p))
    text = "".join(open(p, encoding="utf-8", errors="replace").read() for p in files)[:100000]
    path = _os.path.abspath(fname)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path

keras.utils.get_file = _license_texts
"""

PHRASES = """
import numpy as _np

def _phrases():  # fra.txt's shape: English, tab, French, tab, attribution; 10,000 lines
    lexicon = {"i": "je", "you": "tu", "we": "nous", "see": "vois", "love": "aime",
               "eat": "mange", "the": "le", "a": "un", "cat": "chat", "dog": "chien",
               "house": "maison", "big": "grand", "small": "petit", "red": "rouge",
               "now": "maintenant", "here": "ici", "run": "cours", "go": "va", "stop": "arrete",
               "bread": "pain", "water": "eau", "car": "voiture", "tree": "arbre", "sun": "soleil"}
    rng = _np.random.default_rng(0)
    words = sorted(lexicon)
    lines = []
    for _ in range(10000):
        english = list(rng.choice(words, rng.integers(1, 5)))
        mark = rng.choice([".", "!", "?"])
        lines.append(" ".join(english).capitalize() + mark + "\\t"
                     + " ".join(lexicon[w] for w in english).capitalize() + mark + "\\tCC-BY")
    with open("fra.txt", "w", encoding="utf-8") as f:
        f.write("\\n".join(lines) + "\\n")

_phrases()
"""

CREDITCARD_LIKE = """def _creditcard_like():  # creditcard.csv's shape: Time, V1-V28, Amount, Class
    rng = np.random.default_rng(0)
    n, fraud = 284807, rng.choice(284807, 492, replace=False)
    x = rng.normal(size=(n, 28))
    x[fraud, :6] += rng.normal(1.5, 1.0, (492, 6))  # frauds lean away in a few components
    amount = rng.lognormal(3, 1.5, n)
    label = np.zeros(n, dtype=int)
    label[fraud] = 1
    with open("creditcard.csv", "w") as f:
        print(",".join(['"Time"'] + [f'"V{k}"' for k in range(1, 29)] + ['"Amount"', '"Class"']),
              file=f)
        for i in range(n):
            print(",".join([str(i), *(f"{v:.6f}" for v in x[i]), f"{amount[i]:.2f}",
                            f'"{label[i]}"']), file=f)
    return "creditcard.csv"


fname = _creditcard_like()"""

JENA_LIKE = """
import zipfile as _zipfile
import numpy as _np

def _jena_like(fname=None, origin=None, **_):  # Jena's CSV: 420,551 rows, 10 minutes apart
    rng = _np.random.default_rng(0)
    n = 420551
    t = _np.arange(n)
    day, year = 2 * _np.pi * t / 144, 2 * _np.pi * t / 52560
    walk = _np.cumsum(rng.normal(0, 0.05, n))  # weather that wanders over days
    T = 9 - 9 * _np.cos(year) - 4 * _np.cos(day) + 0.8 * (walk - _np.convolve(
        walk, _np.ones(4320) / 4320, "same")) + rng.normal(0, 0.3, n)  # fmt: skip
    p = 989 + 8 * _np.sin(year / 3 + 1) + 2 * walk / (1 + _np.abs(walk).max()) + rng.normal(0, 1, n)
    vpmax = 6.1 * _np.exp(17.3 * T / (T + 237))
    rh = _np.clip(80 - 15 * _np.cos(day + 0.5) + rng.normal(0, 8, n), 10, 100)
    vpact = vpmax * rh / 100
    cols = {"Date Time": [f"t{i}" for i in range(n)], "p (mbar)": p, "T (degC)": T,
            "Tpot (K)": T + 273.15 + (1000 - p) * 0.08, "Tdew (degC)": T - (100 - rh) / 5,
            "rh (%)": rh, "VPmax (mbar)": vpmax, "VPact (mbar)": vpact,
            "VPdef (mbar)": vpmax - vpact, "sh (g/kg)": 622 * vpact / p,
            "H2OC (mmol/mol)": 1000 * vpact / p, "rho (g/m**3)": 348 * p / (T + 273.15),
            "wv (m/s)": _np.abs(rng.normal(2, 1.5, n)), "max. wv (m/s)": _np.abs(
                rng.normal(3.5, 2, n)), "wd (deg)": rng.uniform(0, 360, n)}  # fmt: skip
    pd.DataFrame(cols).to_csv("jena_climate_2009_2016.csv", index=False, float_format="%.3f")
    with _zipfile.ZipFile(fname, "w") as zf:
        zf.write("jena_climate_2009_2016.csv")
    return fname

keras.utils.get_file = _jena_like
"""

HOUSING_LIKE = """
import types as _types
import numpy as _np

def _housing_like(path=None, test_split=0.2, seed=113):  # boston_housing's shape: 506 × 13
    rng = _np.random.default_rng(0)
    x = _np.column_stack([rng.lognormal(0, 1.5, 506), rng.uniform(0, 100, 506),
                          rng.uniform(0.5, 28, 506), rng.integers(0, 2, 506),
                          rng.uniform(0.38, 0.87, 506), rng.normal(6.3, 0.7, 506),
                          rng.uniform(3, 100, 506), rng.uniform(1, 12, 506),
                          rng.integers(1, 25, 506), rng.uniform(187, 711, 506),
                          rng.uniform(12, 22, 506), rng.uniform(0.3, 397, 506),
                          rng.uniform(1.7, 38, 506)])  # fmt: skip
    y = _np.clip(22 + 8 * (x[:, 5] - 6.3) - 0.5 * (x[:, 12] - 12) - 0.1 * x[:, 0]
                 + rng.normal(0, 3, 506), 5, 50)  # rooms up, poverty and crime down
    order = _np.random.RandomState(seed).permutation(506)
    x, y = x[order], y[order]
    cut = int(506 * (1 - test_split))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])

keras.datasets.boston_housing = _types.SimpleNamespace(load_data=_housing_like)
"""


AUSTIN_LIKE = """
import numpy as _np
import pandas as _pd

def _austin_like():  # austin_weather.csv's shape: one row a day, 2013-12-21 to 2017-07-31
    rng = _np.random.default_rng(0)
    dates = _pd.date_range("2013-12-21", "2017-07-31", freq="D")
    season = -_np.cos(2 * _np.pi * (dates.dayofyear.to_numpy() - 15) / 365.25)
    front = _np.zeros(len(dates))  # cold fronts and warm spells that last a few days
    for i in range(1, len(dates)):
        front[i] = 0.75 * front[i - 1] + rng.normal(0, 4)
    avg = _np.round(69 + 16 * season + front)
    _pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "TempHighF": avg + 10, "TempAvgF": avg,
                   "TempLowF": avg - 10}).to_csv("austin_weather.csv", index=False)

_austin_like()
"""


@dataclass
class Example:
    """One keras-io script: what it reaches for, and the edits both runs get."""

    path: str
    reaches_for: str
    data: str
    edits: list[tuple[str, str]] = field(default_factory=list)  # (regex, replacement), in order
    prelude: str = ""  # after the imports (a data loader, stand-in files)
    result: str = "{}"  # an expression of the script's names, printed as JSON at its end


EXAMPLES = {
    "vision/mnist_convnet.py": Example(
        path="vision/mnist_convnet.py",
        reaches_for="Conv2D, MaxPooling2D, Dropout, to_categorical, validation_split",
        data="MNIST (60,000 + 10,000), 2 epochs (the script: 15)",
        edits=[(r"epochs = 15", "epochs = 2")],
        prelude=MNIST_LOADER,
        result='{"test_loss": score[0], "test_accuracy": score[1]}',
    ),
    "vision/autoencoder.py": Example(
        path="vision/autoencoder.py",
        reaches_for="Conv2D, MaxPooling2D(padding='same'), UpSampling2D, binary_crossentropy",
        data="MNIST, the first 6,000 training images, 1 + 1 epochs (the script: 50 + 100)",
        edits=[
            (r"epochs=50", "epochs=1"),
            (r"epochs=100", "epochs=1"),
            (
                r"(\(train_dataset, _\), \(test_dataset, _\) = mnist.load_data\(\))",
                r"\1\ntrain_dataset = train_dataset[:6000]",
            ),
        ],
        prelude="from glassnet.datasets import mnist as _mnist_source\nmnist = _mnist_source\n",
        result='{"denoising_val_loss": autoencoder.evaluate(noisy_test_dataset, test_dataset, '
        "verbose=0)}",
    ),
    "timeseries/timeseries_anomaly_detection.py": Example(
        path="timeseries/timeseries_anomaly_detection.py",
        reaches_for="Conv1D(strides=2, padding='same'), Conv1DTranspose, Dropout, EarlyStopping",
        data="NAB-shaped stand-ins (4,032 five-minute values, a daily cycle; the test file with "
        "a jump up), 10 epochs (the script: 50, with early stopping)",
        edits=[(r"epochs=50", "epochs=10")],
        prelude=SINE_DAYS,
        result='{"val_loss": history.history["val_loss"][-1], "anomalous_samples": '
        "int(np.sum(anomalies)), 'anomalous_points': len(anomalous_data_indices)}",
    ),
    "timeseries/timeseries_weather_forecasting.py": Example(
        path="timeseries/timeseries_weather_forecasting.py",
        reaches_for="timeseries_dataset_from_array (keras.preprocessing), take(1) and .numpy() "
        "on a batch, LSTM(32), EarlyStopping, ModelCheckpoint(save_weights_only)",
        data="Jena-shaped stand-ins (420,551 rows of 14 weather columns: yearly and daily "
        "cycles, a wandering temperature, physics-linked humidity), 2 epochs (the script: 10); "
        "model_checkpoint.h5 → .weights.h5 (Keras 3 asks for it); the heat map without the "
        "date column (pandas 2's corr() refuses text)",
        edits=[
            (r"epochs = 10", "epochs = 2"),
            (r"model_checkpoint\.h5", "model_checkpoint.weights.h5"),
            (r"show_heatmap\(df\)", "show_heatmap(df.drop(columns=[date_time_key]))"),
        ],
        prelude=JENA_LIKE,
        result='{"val_loss": history.history["val_loss"][-1], "loss": history.history["loss"][-1]}',
    ),
    "vision/siamese_contrastive.py": Example(
        path="vision/siamese_contrastive.py",
        reaches_for="a Lambda over two towers of one shared model, a contrastive loss function "
        "written with ops, BatchNormalization, AveragePooling2D, (n, 28, 28) into "
        "Input((28, 28, 1))",
        data="MNIST pairs (60,000 + 60,000 + 20,000), 1 epoch (the script: 10); its tf.math.* and "
        "tf.keras.* as keras.ops and keras (keras-io's Keras 3 spelling)",
        edits=[
            (r"tf\.math\.reduce_sum", "keras.ops.sum"),
            (r"tf\.math\.reduce_mean", "keras.ops.mean"),
            (r"tf\.math\.square", "keras.ops.square"),
            (r"tf\.math\.sqrt", "keras.ops.sqrt"),
            (r"tf\.math\.maximum", "keras.ops.maximum"),
            (r"tf\.keras\.", "keras."),
            (r"tf\.concat", "keras.ops.concatenate"),
            (r"epochs = 10", "epochs = 1"),
        ],
        prelude=MNIST_LOADER,
        result='{"test_loss_accuracy": results}',
    ),
    "structured_data/regression_boston_housing.py": Example(
        path="structured_data/regression_boston_housing.py",
        reaches_for="Dense(input_shape=[13]), mse with mae and mse metrics, EarlyStopping, "
        "validation_split, verbose=0",
        data="boston_housing-shaped stand-ins (506 houses, 13 features, prices from rooms, "
        "poverty and crime plus noise), its 100 epochs with early stopping; tf.keras.datasets "
        "as keras.datasets",
        edits=[(r"tf\.keras\.datasets", "keras.datasets")],
        prelude=HOUSING_LIKE,
        result='{"test_mae": mae, "test_mse": mse, "epochs": len(history.history["loss"])}',
    ),
    "timeseries/timeseries_classification_from_scratch.py": Example(
        path="timeseries/timeseries_classification_from_scratch.py",
        reaches_for="Conv1D, BatchNormalization, ReLU, GlobalAveragePooling1D, ModelCheckpoint, "
        "ReduceLROnPlateau, EarlyStopping, load_model",
        data="FordA-shaped stand-ins (3,601 + 1,320 z-normalized series of 500, two noisy sine "
        "frequencies), 10 epochs (the script: 500, with early stopping); best_model.h5 → "
        "best_model.keras (Keras 3 saves .keras only) and no plot_model (no graphviz here)",
        edits=[
            (r"epochs = 500", "epochs = 10"),
            (r"best_model\.h5", "best_model.keras"),
            (r"keras\.utils\.plot_model\(model, show_shapes=True\)", "pass"),
        ],
        prelude=FORDA_LIKE,
        result='{"test_accuracy": test_acc, "test_loss": test_loss}',
    ),
    "nlp/addition_rnn.py": Example(
        path="nlp/addition_rnn.py",
        reaches_for="LSTM, RepeatVector, LSTM(return_sequences=True), Dense on every step, "
        "np.bool inputs",
        data="the script's own 50,000 generated sums, 5 epochs (the script: 29)",
        edits=[(r"epochs = 30", "epochs = 6")],
        result='{"val_accuracy": model.evaluate(x_val, y_val, verbose=0)[1]}',
    ),
    "keras_recipes/antirectifier.py": Example(
        path="keras_recipes/antirectifier.py",
        reaches_for="a Layer subclass (build, add_weight, call, get_config) written with ops, "
        "from_logits loss, SparseCategoricalAccuracy",
        data="MNIST, 3 epochs (the script: 20); its tf.* calls as keras.ops (as keras-io's "
        "Keras 3 version writes them), for both",
        edits=[
            (r"tf\.reduce_mean", "keras.ops.mean"),
            (r"tf\.nn\.relu", "keras.ops.relu"),
            (r"tf\.concat", "keras.ops.concatenate"),
            (r"tf\.matmul", "keras.ops.matmul"),
            (r"epochs = 20", "epochs = 3"),
        ],
        prelude=MNIST_LOADER,
        result='{"test_loss_accuracy": model.evaluate(x_test, y_test, verbose=0), '
        '"train_loss_accuracy": model.evaluate(x_train, y_train, verbose=0)}',
    ),
    "generative/lstm_character_level_text_generation.py": Example(
        path="generative/lstm_character_level_text_generation.py",
        reaches_for="LSTM on one-hot characters, RMSprop, predict one sample at a time (1,600 "
        "calls an epoch), keras.utils.get_file",
        data="the first 100,000 characters of Debian's license texts (/usr/share/common-licenses) "
        "in place of Nietzsche, 2 epochs (the script: 40)",
        edits=[(r"epochs = 40", "epochs = 2")],
        prelude=LICENSE_TEXTS,
        result='{"loss": model.evaluate(x, y, verbose=0), "generated": generated[:60]}',
    ),
    "nlp/lstm_seq2seq.py": Example(
        path="nlp/lstm_seq2seq.py",
        reaches_for="Input(shape=(None, tokens)), LSTM(return_state=True), initial_state, "
        "layer.output of a loaded model, encoder and decoder models sharing its layers",
        data="fra.txt-shaped stand-ins (10,000 phrases of 1–4 words from a 24-word "
        "English–French lexicon), 3 epochs (the script: 100); model.save('s2s') → "
        "'s2s_model.keras' (Keras 3 saves .keras only)",
        edits=[(r"epochs = 100", "epochs = 3"), (r'"s2s"', '"s2s_model.keras"')],
        prelude=PHRASES,
        result='{"val_loss_accuracy": model.evaluate([encoder_input_data[-2000:], '
        "decoder_input_data[-2000:]], decoder_target_data[-2000:], verbose=0), "
        '"last_decoded": decoded_sentence.strip()}',
    ),
    "structured_data/imbalanced_classification.py": Example(
        path="structured_data/imbalanced_classification.py",
        reaches_for="class_weight, FalseNegatives/FalsePositives/TrueNegatives/TruePositives, "
        "Precision, Recall, ModelCheckpoint per epoch, Dense(input_shape=...)",
        data="creditcard.csv-shaped stand-ins (284,807 rows of 30 features, 492 frauds leaning "
        "away in six of them), 5 epochs (the script: 30); the checkpoints' .h5 → .keras "
        "(Keras 3 saves .keras only)",
        edits=[
            (r'fname = "/Users/fchollet/Downloads/creditcard.csv"', CREDITCARD_LIKE),
            (r"epochs=30", "epochs=5"),
            (r"fraud_model_at_epoch_\{epoch\}\.h5", "fraud_model_at_epoch_{epoch}.keras"),
        ],
        result="model.evaluate(val_features, val_targets, verbose=0, return_dict=True)",
    ),
    "nlp/bidirectional_lstm_imdb.py": Example(
        path="nlp/bidirectional_lstm_imdb.py",
        reaches_for="Input(shape=(None,), dtype='int32'), Embedding, Bidirectional(LSTM), "
        "imdb.load_data, pad_sequences",
        data="IMDB-shaped stand-ins (5,000 + 5,000 reviews of 40–400 word ids, a few ids leaning "
        "to each label), 1 epoch (the script: 25,000 + 25,000, 2 epochs)",
        edits=[(r"epochs=2", "epochs=1")],
        prelude=IMDB_LIKE,
        result='{"val_loss_accuracy": model.evaluate(x_val, y_val, verbose=0)}',
    ),
    "timeseries/lstm_vs_cnn_timeseries_classification.py": Example(
        path="timeseries/lstm_vs_cnn_timeseries_classification.py",
        reaches_for="LSTM(dropout, recurrent_dropout) twice, Conv1D + BatchNormalization + "
        "MaxPooling1D, GlobalAveragePooling1D, ModelCheckpoint(save_best_only), "
        "EarlyStopping(restore_best_weights), load_model",
        data="FordA-shaped stand-ins (as timeseries_classification_from_scratch's), 3 epochs "
        "each model (the script: 100, with early stopping)",
        edits=[(r"epochs = 100", "epochs = 3")],
        prelude=FORDA_LIKE,
        result='{"lstm_test_accuracy": lstm_test_acc, "cnn_test_accuracy": cnn_test_acc, '
        '"lstm_test_loss": lstm_test_loss, "cnn_test_loss": cnn_test_loss}',
    ),
    "timeseries/timeseries_forecasting_with_lstm_for_temperature_prediction.py": Example(
        path="timeseries/timeseries_forecasting_with_lstm_for_temperature_prediction.py",
        reaches_for="timeseries_dataset_from_array (tf.keras.preprocessing), a for loop and "
        "next(iter(...)) over it, .numpy() on a batch, LSTM(20), Adam(learning_rate=0.01)",
        data="austin_weather.csv-shaped stand-ins (1,319 days: a yearly cycle and fronts that "
        "last a few days), its 200 epochs; its `! wget` notebook line dropped and "
        "tf.keras as keras",
        edits=[
            (r"(?m)^! wget .*$", ""),
            (r"tf\.keras\.", "keras."),
        ],
        prelude=AUSTIN_LIKE,
        result='{"val_loss": history.history["val_loss"][-1], "loss": history.history["loss"][-1], '
        '"val_mae_degrees": float(np.mean(np.abs(np.ravel(output_validation) - '
        "np.ravel(target_validation.numpy()))))}",
    ),
}


def turn_imports(source: str, framework: str, keep_tensorflow: bool = False) -> str:
    """``source`` with its ``keras`` and ``tensorflow.keras`` imports turned to ``framework``'s
    (``import tensorflow as tf`` dropped, unless the code uses TensorFlow for its data): the
    only change a user makes."""
    target = "glassnet" if framework == "glassnet" else "keras"
    if not keep_tensorflow:
        source = re.sub(r"^import tensorflow as tf\n", "", source, flags=re.M)
    source = re.sub(r"^from tensorflow import keras$", f"import {target} as keras", source,
                    flags=re.M)  # fmt: skip
    source = re.sub(r"\btensorflow\.keras\b", target, source)
    source = re.sub(r"^import keras$", f"import {target} as keras", source, flags=re.M)
    source = re.sub(r"^import keras_core as keras$", f"import {target} as keras", source,
                    flags=re.M)  # fmt: skip
    return re.sub(r"^from keras(_core)?\b", f"from {target}", source, flags=re.M)


def rewrite(source: str, example: Example, framework: str, seed: int = 0) -> str:
    """The script for one framework: its imports turned, the edits made, the prelude after the
    last import, and a line printing the results."""
    target = "glassnet" if framework == "glassnet" else "keras"
    source = turn_imports(source, framework)
    for pattern, replacement in example.edits:
        source, count = re.subn(pattern, replacement, source)
        if not count:
            raise SystemExit(f"{example.path}: the edit {pattern!r} found nothing to change")
    lines = source.splitlines()
    imports = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    last_import = max(n.end_lineno for n in imports) - 1  # the line, counted from 0
    prelude = f"import {target} as keras\n" + example.prelude
    lines.insert(last_import + 1, prelude + f"keras.utils.set_random_seed({seed})\n")
    lines.append(f"print('RESULT ' + __import__('json').dumps({example.result}))")
    return "\n".join(lines) + "\n"


def run(script: str, framework: str, timeout: int) -> tuple[dict | str, float]:
    """Run a rewritten script in a fresh process: its results (or its last error), seconds."""
    env = {**os.environ, "MPLBACKEND": "Agg", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND",
                                                                              "torch")}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:  # what a script saves lands there
        path = Path(folder) / "script.py"
        path.write_text(script)
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                                  env=env, timeout=timeout, cwd=folder)  # fmt: skip
        except subprocess.TimeoutExpired:
            return f"over {timeout} s", timeout
    seconds = time.perf_counter() - start
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :]), seconds
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"failed: {last[:160]}", seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", required=True, type=Path,
                        help="keras-io's examples/ folder")  # fmt: skip
    parser.add_argument("--only", nargs="*", default=sorted(EXAMPLES))
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--seed", type=int, default=0, help="the seed both runs set first")
    args = parser.parse_args()
    print("| script | reaches for | data and epochs (both runs) | glassnet | Keras 3 |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.only:
        example = EXAMPLES[name]
        source = (args.examples / example.path).read_text()
        cells = []
        for framework in ("glassnet", "keras"):
            result, seconds = run(
                rewrite(source, example, framework, args.seed), framework, args.timeout
            )
            shown = (", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in result.items()) if isinstance(result, dict)
                     else result)  # fmt: skip
            cells.append(f"{shown} ({seconds:.0f} s)")
        print(f"| {name} | {example.reaches_for} | {example.data} | {cells[0]} | {cells[1]} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

"""Saving and loading models: files are data, never code (DESIGN.md §9).

A ``.keras`` file is a zip in Keras 3's layout:

- ``config.json``: the architecture and the compile settings, in Keras's config format;
- ``metadata.json``: who wrote it and when;
- ``model.weights.npz``: every weight array in Keras's orientation under Keras's names
  (``layers/dense/vars/0`` is the first Dense kernel), and the optimizer state under
  ``optimizer/vars/…`` so that training can resume exactly.

Files are written atomically — to a temporary file beside the target, then renamed over it — so a
crash mid-save leaves the previous file intact. Loading reads JSON and ``.npz`` with pickling
disabled: nothing in the file is ever executed.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

from glassnet import losses, optimizers
from glassnet.backend import __version__, xp
from glassnet.models.sequential import Sequential

__all__ = ["load_model", "load_weights", "save_model", "save_weights"]

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.npz"


# ---- writing --------------------------------------------------------------------------------


def _write_atomically(path: Path, write, overwrite: bool) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _weight_arrays(model: Sequential, with_optimizer: bool) -> dict:
    arrays = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            arrays[f"layers/{layer.name}/vars/{i}"] = w
    if with_optimizer and model.optimizer is not None and model.optimizer.state:
        state = [xp.asarray(model.optimizer.iterations), *model.optimizer.variables()]
        for i, arr in enumerate(state):
            arrays[f"optimizer/vars/{i}"] = arr
    return arrays


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    xp.savez(buffer, **arrays)
    return buffer.getvalue()


def _compile_config(model: Sequential) -> dict | None:
    if not model.compiled:
        return None
    opt = model.optimizer
    return {
        "optimizer": {
            "module": "keras.optimizers",
            "class_name": type(opt).__name__,
            "config": opt.get_config(),
            "registered_name": None,
        },
        "loss": {
            "module": "keras.losses",
            "class_name": type(model.loss).__name__,
            "config": model.loss.get_config(),
            "registered_name": None,
        },
        "loss_weights": None,
        "metrics": [m if isinstance(m, str) else m.name for m in model._metric_names],
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def save_model(model: Sequential, filepath, overwrite=True) -> None:
    """Write ``model`` to a ``.keras`` zip file, atomically."""
    path = Path(filepath)
    if path.suffix != ".keras":
        raise ValueError(
            "Invalid filepath extension for saving. Please add the `.keras` extension, e.g. "
            f"model.save('{path.with_suffix('.keras').name}'). Received: filepath={filepath}"
        )
    if not model.built:
        raise ValueError(
            "Cannot save a model that has not been built: fit it, or give it an "
            "Input(shape=...), first."
        )
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": model.get_config(),
        "registered_name": None,
        "build_config": {"input_shape": list(model.input_shape)},
        "compile_config": _compile_config(model),
    }
    metadata = {
        "keras_version": None,
        "glassnet_version": __version__,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    weights = _npz_bytes(_weight_arrays(model, with_optimizer=True))

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA, json.dumps(metadata))
            zf.writestr(CONFIG, json.dumps(config))
            zf.writestr(WEIGHTS, weights)

    _write_atomically(path, write, overwrite)


def save_weights(model: Sequential, filepath, overwrite=True) -> None:
    """Write the model's weights alone to a ``.weights.npz`` file, atomically."""
    path = Path(filepath)
    if not path.name.endswith(".weights.npz"):
        raise ValueError(
            "The filename must end in `.weights.npz` (glassnet writes NumPy archives; "
            f"Keras's `.weights.h5` is not supported yet). Received: filepath={filepath}"
        )
    data = _npz_bytes(_weight_arrays(model, with_optimizer=False))
    _write_atomically(path, lambda f: f.write(data), overwrite)


# ---- reading --------------------------------------------------------------------------------


def _open_archive(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a .keras model file: it is not a zip archive (is it truncated, or "
            "a different format?)."
        )
    return zipfile.ZipFile(path)


def _read_member(zf: zipfile.ZipFile, path: Path, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise ValueError(f"{path} is not a complete .keras model file: it has no {name}.") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path} is corrupt: {name} cannot be read ({exc}).") from None


def _read_json(zf, path, name) -> dict:
    try:
        return json.loads(_read_member(zf, path, name))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is corrupt: {name} is not valid JSON ({exc}).") from None


def _read_npz(data: bytes, path: Path, name: str) -> dict:
    try:
        with xp.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is corrupt: {name} cannot be read ({exc}).") from None


def _set_layer_weights(model: Sequential, arrays: dict, path: Path) -> None:
    """Match saved layers to the model's layers with weights by position, as Keras does."""
    saved: dict[str, list] = {}
    for key in arrays:  # in the order they were written
        if key.startswith("layers/"):
            saved.setdefault(key.split("/")[1], []).append(arrays[key])
    layers = [layer for layer in model.layers if layer.params]
    if len(saved) != len(layers):
        raise ValueError(
            f"{path} holds weights for {len(saved)} layers ({', '.join(saved) or 'none'}); "
            f"the model has {len(layers)} layers with weights."
        )
    for layer, weights in zip(layers, saved.values()):
        try:
            layer.set_weights(weights)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True) -> Sequential:
    """Read a model written by ``model.save``: architecture, weights, and (if saved) compile
    settings and optimizer state."""
    path = Path(filepath)
    with _open_archive(path) as zf:
        config = _read_json(zf, path, CONFIG)
        arrays = _read_npz(_read_member(zf, path, WEIGHTS), path, WEIGHTS)
    if config.get("class_name") != "Sequential":
        raise ValueError(
            f"{path} holds a {config.get('class_name')!r} model; glassnet can load "
            "Sequential models only."
        )
    try:
        model = Sequential.from_config(config["config"])
        if not model.built and config.get("build_config"):
            model.build(tuple(config["build_config"]["input_shape"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} has a config.json glassnet cannot read: {exc!r}.") from None
    _set_layer_weights(model, arrays, path)

    compile_config = config.get("compile_config")
    if compile and compile_config:
        model.compile(
            optimizer=optimizers.get(compile_config["optimizer"]),
            loss=losses.get(compile_config["loss"]),
            metrics=compile_config.get("metrics") or None,
        )
        _restore_optimizer(model, arrays, path)
    return model


def _restore_optimizer(model: Sequential, arrays: dict, path: Path) -> None:
    keys = sorted(
        (k for k in arrays if k.startswith("optimizer/vars/")),
        key=lambda k: int(k.rsplit("/", 1)[1]),
    )
    if not keys:
        return
    optimizer = model.optimizer
    optimizer.build([p for p, _ in model._param_grad_pairs()])
    variables = optimizer.variables()
    if len(keys) != len(variables) + 1:
        raise ValueError(
            f"{path}: the optimizer state has {len(keys) - 1} arrays; "
            f"{type(optimizer).__name__} needs {len(variables)}."
        )
    optimizer.iterations = int(arrays[keys[0]])
    for var, key in zip(variables, keys[1:]):
        if var.shape != arrays[key].shape:
            raise ValueError(
                f"{path}: optimizer state {key} has shape {arrays[key].shape}; "
                f"expected {var.shape}."
            )
        var[...] = arrays[key]


def load_weights(model: Sequential, filepath) -> None:
    """Load weights from a ``.weights.npz`` file, or from the weights inside a ``.keras`` file."""
    path = Path(filepath)
    if path.suffix == ".keras":
        with _open_archive(path) as zf:
            arrays = _read_npz(_read_member(zf, path, WEIGHTS), path, WEIGHTS)
    else:
        if not path.exists():
            raise FileNotFoundError(f"No weights file at {path}.")
        arrays = _read_npz(path.read_bytes(), path, path.name)
    _set_layer_weights(model, arrays, path)

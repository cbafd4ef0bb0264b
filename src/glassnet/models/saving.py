"""Saving and loading models in Keras 3's ``.keras`` format, both ways (DESIGN.md §9).

A ``.keras`` file is a zip holding

- ``config.json``: the architecture and compile settings, in Keras's config format;
- ``metadata.json``: who wrote it, and what is needed to reproduce it;
- ``model.weights.h5``: every variable under Keras's path. A model's layers form a container in
  which each layer is named by its class in snake case, counted as Keras counts
  (``layers/dense/vars/0``, ``layers/dense_1/vars/0``, …); the optimizer's state is
  ``optimizer/vars/0`` (iterations), ``/1`` (the learning rate), then its slots in Keras's order.
  Each layer decides how its deck-oriented parameters become Keras's variables
  (``Layer.keras_variables``: a Dense kernel is Wᵀ);
- ``assets/<layer path>/vocabulary.txt``: an adapted vocabulary (``StringLookup``, …), a token a
  line, as Keras writes it.

Files are written to a temporary file beside the target and renamed over it, so a crash leaves the
previous file whole; the new file gets the permissions any new file gets (or the old file's).

Reading treats the file as hostile: its size and every member's are bounded before reading, member
names must be plain and unique, JSON is parsed with bounded size, the HDF5 tree may hold only
groups and plain float datasets (no links, no external or virtual storage), the config may build
no more parameters than the weights hold, and every variable must match its layer by path, name
and shape. Nothing in a file is ever executed: no pickle, no code.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import platform
import secrets
import stat
import zipfile
import zlib
from pathlib import Path

from glassnet import losses, metrics, optimizers
from glassnet.backend import (
    __version__,
    custom_object_scope,
    floatx,
    function_from_config,
    parameter_budget,
    process_index,
    serialize_function,
    snake_case,
    xp,
)
from glassnet.layers import Layer
from glassnet.layers.base import layer_attributes, tracked_layers
from glassnet.layers.wrappers import Wrapper
from glassnet.models.cloning import model_from_config
from glassnet.models.model import Model

__all__ = ["load_model", "load_weights", "save_model", "save_weights"]

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
ASSETS = "assets/"  # a layer's files beside its weights: assets/<layer path>/vocabulary.txt
LEGACY_WEIGHTS = "model.weights.npz"  # glassnet 0.1's files

MAX_FILE = 4 << 30  # bytes: a .keras file (or .weights.h5) larger than this is refused
MAX_JSON = 64 << 20  # bytes: config.json and metadata.json
MAX_MEMBERS = 64
MAX_H5_OBJECTS = 100_000
MAX_LAYERS = 2_000  # layers in a file's config, nested models' included (ResNet-152 has ~500)
MAX_RATIO = 16  # a weights member inflating more than this many times its zipped size is a bomb
KERAS_FORMAT = "3.15.1"  # the Keras version whose files glassnet's match, written as Keras does


class _Corrupt(ValueError):
    """A file that is not what it claims: the message names the file and what is wrong."""


# ---- walking a model as Keras does ----------------------------------------------------------


def _saveables(layer: Layer, path: str = "", seen: set | None = None, named: bool = True):
    """(path, layer, named) for ``layer`` and every layer inside it, at the paths Keras's saving
    walk (``saving_lib._save_state``) gives them: a functional model's layers under ``layers/``,
    each named by its class in snake case and counted (``layers/dense``, ``layers/dense_1``, …);
    the layers a subclassed model or a layer written with ``call`` keeps as attributes under the
    attribute's name, the attributes taken in sorted order and a list as a container like
    ``layers`` (a subclassed model's ``layers`` are one more such attribute: a layer reached
    twice stays where it was reached first); a wrapper's inner layers under Keras's group names.
    ``named``: whether the config gives the layer its name (a layer kept as an attribute is made
    anew, with a new name, when its owner is)."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield path, layer, named
    prefix = f"{path}/" if path else ""
    children = _children(layer)
    named = named and not _keeps_attributes(layer)
    for name, child in children:
        if isinstance(child, Layer):
            yield from _saveables(child, prefix + name, seen, named)
            continue
        counts: dict[str, int] = {}
        for inner in child:
            kind = snake_case(_kind(inner))
            n = counts[kind] = counts.get(kind, -1) + 1
            key = f"{prefix}{name}/{kind}" + (f"_{n}" if n else "")
            yield from _saveables(inner, key, seen, named)


def _keeps_attributes(layer: Layer) -> bool:
    """Whether the layers inside ``layer`` are its attributes (a subclassed model's, a layer's
    written with ``call``), not the entries of a config."""
    if isinstance(layer, Model):
        return layer.subclassed()
    return not isinstance(layer, Wrapper) and layer.records()


def _children(layer: Layer) -> list[tuple[str, Layer | list[Layer]]]:
    """The attributes Keras's walk goes into, in its order (see ``_saveables``)."""
    if isinstance(layer, Wrapper):  # Bidirectional, TimeDistributed: a group per inner layer
        return layer.sublayers()
    if not _keeps_attributes(layer):
        return [("layers", layer.layers)] if isinstance(layer, Model) else []
    found = layer_attributes(layer)
    if isinstance(layer, Model):
        found.append(("layers", [v for _, v in tracked_layers(layer)]))
    return sorted(found, key=lambda item: item[0])


def _kind(layer: Layer) -> str:
    """The class Keras knows ``layer`` by (a model made with the functional API: Functional)."""
    if isinstance(layer, Model) and not layer.subclassed():
        return layer.keras_class[1]
    return type(layer).__name__


def _own_variables(layer: Layer) -> list[str]:
    """The parameters Keras stores at the layer's own ``vars`` group, in order: a model's and a
    wrapper's are their inner layers'; a layer written with ``call`` keeps those of the layers
    it uses at their own paths."""
    if isinstance(layer, (Model, Wrapper)):
        return []
    if layer.sublayers():
        return [name for name in layer.params if name in layer._variables]
    return list(layer.params)


# ---- writing --------------------------------------------------------------------------------


def _temporary_name(directory: Path) -> Path:
    return directory / f".glassnet-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _remove_stale_temporaries(directory: Path) -> None:
    """Temporary files left by saves that were killed (their process is gone)."""
    for tmp in directory.glob(".glassnet-*-*.tmp"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


def _new_file_mode(existing: Path) -> int:
    """The old file's permissions when replacing one, else those a new file gets (umask)."""
    try:
        return stat.S_IMODE(existing.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path, write, overwrite: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    Through a symlink the file it points to is replaced, not the link. A save that is killed
    leaves a temporary file that the next save in the same folder removes.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save to {path}: it is a directory.")
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target.parent)
    tmp = _temporary_name(target.parent)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _parameter_owners(model: Model) -> list[tuple]:
    """(layer, name) of each parameter the optimizer updates, in the order of
    ``model.trainable_pairs()``: the optimizer's state for it (m, v, …) is written in the same
    Keras layout as the parameter (transposed where a Dense kernel is)."""
    return [
        (layer, name)
        for layer in model.leaf_layers()
        if layer.trainable and model.trainable
        for name in layer.params
        if name not in layer.non_trainable
    ]


def _h5_bytes(model: Model, with_optimizer: bool) -> bytes:
    """``model.weights.h5`` in Keras's layout, as bytes."""
    import h5py  # only when a file is written: `import glassnet` stays light

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for path, layer, _ in _saveables(model):
            prefix = f"{path}/" if path else ""
            group = f.create_group(f"{prefix}vars")
            group.attrs["name"] = layer.name
            cell = getattr(layer, "keras_cell", None)
            if cell:  # Keras keeps a recurrent layer's variables in its cell: layers/lstm/cell
                group = f.create_group(f"{prefix}cell/vars")
                group.attrs["name"] = cell
            for i, name in enumerate(_own_variables(layer)):
                value = layer.to_keras(name, layer.params[name])
                # np.array, not ascontiguousarray: that makes a 0-d count 1-d
                group.create_dataset(str(i), data=xp.array(value, order="C"))
        opt = model.optimizer if with_optimizer else None
        if opt is not None:
            group = f.create_group("optimizer/vars")
            group.attrs["name"] = opt.name
            group.create_dataset("0", data=xp.int64(opt.iterations))
            if opt.schedule is None:  # Keras keeps η as a variable unless a schedule sets it
                group.create_dataset("1", data=xp.float32(opt.learning_rate))
            if opt.state:
                owners = _parameter_owners(model)
                for i, (value, owner) in enumerate(
                    zip(opt.variables(), opt.variable_owners()), start=len(group)
                ):
                    layer, name = owners[owner]
                    data = xp.array(layer.to_keras(name, value), order="C")
                    group.create_dataset(str(i), data=data)
    return buffer.getvalue()


def _compile_config(model: Model) -> dict | None:
    if not model.compiled:
        return None
    opt = model.optimizer

    def loss_entry(loss):
        if isinstance(loss, str):
            return loss
        if isinstance(loss, (list, tuple)):
            return [loss_entry(each) for each in loss]
        if isinstance(loss, dict):
            return {k: loss_entry(v) for k, v in loss.items()}
        made = losses.get(loss)
        if isinstance(made, losses.LossFunctionWrapper) and made is not loss:
            return serialize_function(loss)  # a function of (y_true, y_pred), as Keras writes it
        loss = made
        return {
            "module": "keras.losses",
            "class_name": type(loss).__name__,
            "config": loss.get_config(),
            "registered_name": None,
        }

    def metric_entry(spec):
        if isinstance(spec, (list, tuple)):
            return [metric_entry(m) for m in spec]
        if isinstance(spec, dict):
            return {k: metric_entry(v) for k, v in spec.items()}
        return None if spec is None else metrics.name_of(spec)

    args = model.get_compile_config()
    return {
        "optimizer": {
            "module": "keras.optimizers",
            "class_name": type(opt).__name__,
            "config": opt.get_config(),
            "registered_name": None,
        },
        "loss": loss_entry(args["loss"]),
        "loss_weights": args["loss_weights"],
        "metrics": metric_entry(args["metrics"]),
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _metadata(model: Model) -> dict:
    import numpy  # for its version and BLAS, recorded so that a result can be reproduced

    blas = numpy.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    return {
        "keras_version": KERAS_FORMAT,
        "glassnet_version": __version__,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "numpy_version": numpy.__version__,
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "python_version": platform.python_version(),
        "floatx": floatx(),
        "seed": _global_seed(),
    }


def _global_seed():
    from glassnet import backend

    seq = backend._GLOBAL_SEED_SEQUENCE
    return None if seq is None else int(seq.entropy)


def _check_suffix(filepath, suffix: str, example: str) -> Path:
    path = Path(os.fspath(filepath))
    if not path.name.endswith(suffix):
        raise ValueError(
            f"Invalid filepath extension for saving. Please add the `{suffix}` extension, e.g. "
            f"{example}. Received: filepath={filepath}"
        )
    return path


def save_model(model: Model, filepath, overwrite=True) -> None:
    """Write ``model`` to a ``.keras`` zip file in Keras 3's layout, atomically (under
    data-parallel training, from rank 0 only: every rank holds the same weights)."""
    path = _check_suffix(filepath, ".keras", "model.save('model.keras')")
    if not model.built:
        raise ValueError(
            "Cannot save a model that has not been built: fit it, or give it an "
            "Input(shape=...), first."
        )
    if process_index():
        return
    config = model.keras_config()
    config["compile_config"] = _compile_config(model)
    weights = _h5_bytes(model, with_optimizer=True)
    metadata = _metadata(model)
    assets = {
        f"{ASSETS}{layer_path}/{name}": data
        for layer_path, layer, _ in _saveables(model)
        for name, data in layer.asset_files().items()
    }

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA, json.dumps(metadata))
            zf.writestr(CONFIG, json.dumps(config))
            zf.writestr(WEIGHTS, weights, compress_type=zipfile.ZIP_STORED)
            for name, data in assets.items():
                zf.writestr(name, data)

    write_atomically(path, write, overwrite)


def save_weights(model: Model, filepath, overwrite=True) -> None:
    """Write the model's weights alone to a ``.weights.h5`` file, as Keras's ``save_weights``."""
    path = _check_suffix(filepath, ".weights.h5", "model.save_weights('model.weights.h5')")
    if process_index():
        return  # rank 0 writes, as save_model
    data = _h5_bytes(model, with_optimizer=False)
    write_atomically(path, lambda f: f.write(data), overwrite)


# ---- reading: every file is hostile until checked -----------------------------------------------


def _open_regular(path: Path, what: str):
    """Open ``path`` for reading if it is a regular file of bounded size (no FIFO, no device)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"No {what} at {path}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path} is a directory, not a {what}.")
    if not stat.S_ISREG(info.st_mode):
        raise _Corrupt(f"{path} is not a regular file (a pipe or a device?); cannot load it.")
    if info.st_size > MAX_FILE:
        raise _Corrupt(f"{path} is {info.st_size:,} bytes; glassnet reads at most {MAX_FILE:,}.")
    return open(path, "rb")


def _read_zip(path: Path) -> dict[str, bytes]:
    """The members of a ``.keras`` zip, each checked and bounded before and while reading: the
    JSON to MAX_JSON, the assets (vocabularies) to MAX_JSON together, the weights to what their
    zipped size can hold (``_inflated_bound``)."""
    with _open_regular(path, "model file") as f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise _Corrupt(
                f"{path} is not a .keras model file: it is not a readable zip archive ({exc})."
            ) from None
        with zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            if len(infos) > MAX_MEMBERS:
                raise _Corrupt(f"{path} holds {len(infos)} members; a .keras file holds a few.")
            for name in names:
                if names.count(name) > 1:
                    raise _Corrupt(f"{path} holds {name!r} twice; which one is meant is unclear.")
                if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
                    raise _Corrupt(f"{path} holds a member with an unsafe name: {name!r}.")
            wanted = [
                i
                for i in infos
                if i.filename in (CONFIG, METADATA, WEIGHTS, LEGACY_WEIGHTS)
                or (i.filename.startswith(ASSETS) and not i.is_dir())
            ]
            members = {}
            assets_left = MAX_JSON  # every asset together: vocabularies are text, not weights
            for info in wanted:
                if info.filename.startswith(ASSETS):
                    bound = assets_left
                elif info.filename.endswith(".json"):
                    bound = MAX_JSON
                else:
                    bound = min(MAX_FILE, _inflated_bound(info))
                members[info.filename] = _read_member(zf, info, bound, path)
                if info.filename.startswith(ASSETS):
                    assets_left -= len(members[info.filename])
    for required in (CONFIG,):
        if required not in members:
            raise _Corrupt(f"{path} is not a complete .keras model file: it has no {required}.")
    if WEIGHTS not in members and LEGACY_WEIGHTS not in members:
        raise _Corrupt(f"{path} is not a complete .keras model file: it has no {WEIGHTS}.")
    return members


def _read_member(zf, info, limit: int, path: Path) -> bytes:
    """One zip member's bytes, refused from its declared size or as soon as it inflates past
    ``limit``: a zip bomb costs at most ``limit`` bytes."""
    if info.file_size > limit:
        raise _Corrupt(
            f"{path}: {info.filename} would inflate to {info.file_size:,} bytes "
            f"(at most {limit:,} are read for this model)."
        )
    try:
        with zf.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError,
            NotImplementedError, ValueError) as exc:  # fmt: skip
        raise _Corrupt(f"{path} is corrupt: {info.filename} cannot be read ({exc}).") from None
    if len(data) > limit:
        raise _Corrupt(f"{path}: {info.filename} inflates past {limit:,} bytes.")
    return data


def _parse_json(data: bytes, path: Path, name: str) -> dict:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise _Corrupt(f"{path} is corrupt: {name} is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise _Corrupt(f"{path} is corrupt: {name} must hold a JSON object.")
    return value


class _Stored:
    """The arrays of a weights file by Keras's path: what each declares (shape, dtype) is known
    at once; its values are read only when a layer asks for that path with the shape it needs,
    so a dataset declared (or inflating) to gigabytes is refused before any of it is read."""

    def __init__(self, declared: dict, read, names: dict, path: Path, legacy: bool, stored: int):
        self.declared = declared  # path -> (shape, dtype)
        self._read, self.names, self.path, self.legacy = read, names, path, legacy
        self.stored = stored  # bytes that really hold values: a bound on what can be read

    def __contains__(self, key: str) -> bool:
        return key in self.declared

    def __iter__(self):
        return iter(self.declared)

    def budget(self) -> int:
        """How many parameters the config may build: what the layers' arrays declare, but never
        more than the stored bytes can hold as float32 (a compressed or unallocated dataset
        declares what it does not hold)."""
        declared = sum(math.prod(shape) for k, (shape, _) in self.declared.items()
                       if not k.startswith("optimizer/"))  # fmt: skip
        return min(declared, self.stored // 4)

    def read(self, key: str, shape: tuple | None = None, what: str | None = None):
        """The array at ``key``, after checking its declared shape (if given) and dtype;
        ``what`` names it in a complaint ("Layer 'dense' weight W")."""
        declared, dtype = self.declared[key]
        if shape is not None and tuple(declared) != tuple(shape):
            raise _Corrupt(
                f"{self.path}: {what or key} has shape {tuple(shape)}; received an array of "
                f"shape {tuple(declared)}" + (f" at {key}." if what else ".")
            )
        allowed = "fiu" if declared == () else "f"  # integers only as counts (iterations)
        if dtype.kind not in allowed or dtype.itemsize > 8:
            raise _Corrupt(f"{self.path}: weight {key} has dtype {dtype}; expected floats.")
        value = xp.asarray(self._read(key))
        if value.shape != tuple(declared):
            raise _Corrupt(
                f"{self.path}: {key} holds {value.shape}, not the {declared} it declares."
            )
        return value


@contextlib.contextmanager
def _stored_weights(members: dict, path: Path):
    """The file's weights as ``_Stored``, open while the block reads them."""
    if WEIGHTS not in members:
        yield _stored_npz(members[LEGACY_WEIGHTS], path)
        return
    import h5py  # only when a file is read

    unreadable = (OSError, ValueError, KeyError, RuntimeError, TypeError)

    def corrupt(exc):
        return _Corrupt(f"{path} is corrupt: its weights cannot be read ({exc}).")

    try:
        f = h5py.File(io.BytesIO(members[WEIGHTS]), "r")
        datasets, names = _walk_h5(f, path)
        declared = {k: (tuple(d.shape), d.dtype) for k, d in datasets.items()}
    except _Corrupt:
        raise
    except unreadable as exc:
        raise corrupt(exc) from None

    def read(key):
        try:
            return datasets[key][()]
        except unreadable as exc:
            raise corrupt(exc) from None

    try:  # what the block raises about the model itself passes through as it is
        yield _Stored(declared, read, names, path, False, len(members[WEIGHTS]))
    finally:
        f.close()


def _walk_h5(f, path: Path) -> tuple[dict, dict]:
    """Every dataset of a Keras weights file by path (unread), and the layer name each ``vars``
    group records. The tree may hold only groups and plain datasets, each object under one name:
    no links of any other kind, no object reached twice (a hard link, a cycle), no storage
    outside the file."""
    import h5py

    datasets, names, seen = {}, {}, set()
    pending = [("", f)]
    while pending:
        prefix, group = pending.pop()
        for name in group:
            if len(seen) >= MAX_H5_OBJECTS:
                raise _Corrupt(f"{path}: the weights file holds too many objects.")
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise _Corrupt(
                    f"{path}: the weights file holds a link ({prefix}{name}); links are refused."
                )
            obj = group[name]
            if obj.id in seen:
                raise _Corrupt(
                    f"{path}: the weights file reaches one object under two names "
                    f"({prefix}{name}); a Keras file names each once."
                )
            seen.add(obj.id)
            if isinstance(obj, h5py.Dataset):
                if obj.is_virtual or obj.external:
                    raise _Corrupt(
                        f"{path}: weight {prefix}{name} is stored outside the file; refused."
                    )
                datasets[f"{prefix}{name}"] = obj
                continue
            if name == "vars":
                names[prefix.rstrip("/")] = str(obj.attrs.get("name", ""))
            pending.append((f"{prefix}{name}/", obj))
    return datasets, names


def _stored_npz(data: bytes, path: Path) -> _Stored:
    """glassnet 0.1's weights (``model.weights.npz``): each array's header read first, its
    values when asked for, nothing unpickled."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        declared = {}
        stored = sum(min(i.file_size, _inflated_bound(i)) for i in archive.infolist())
        for name in archive.namelist():
            with archive.open(name) as member:
                version = xp.lib.format.read_magic(member)
                header = {(1, 0): xp.lib.format.read_array_header_1_0,
                          (2, 0): xp.lib.format.read_array_header_2_0}.get(version)  # fmt: skip
                if header is None:
                    raise ValueError(f"npy format {version}")
                shape, _, dtype = header(member)
            declared[name.removesuffix(".npy")] = (tuple(shape), dtype)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise _Corrupt(f"{path} is corrupt: {LEGACY_WEIGHTS} cannot be read ({exc}).") from None

    def read(key):
        try:
            with archive.open(f"{key}.npy") as member:
                return xp.lib.format.read_array(member, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise _Corrupt(f"{path} is corrupt: {LEGACY_WEIGHTS} cannot be read ({exc}).") from None

    return _Stored(declared, read, {}, path, True, stored)


def _with_path(exc: Exception, path: Path) -> Exception:
    """The same complaint, naming the file (as a plain ValueError or NotImplementedError)."""
    kind = NotImplementedError if isinstance(exc, NotImplementedError) else ValueError
    return kind(f"{path}: {exc}")


def _model_from_config(config: dict, path: Path, budget: int, custom_objects=None) -> Model:
    inner = config.get("config")
    if not isinstance(inner, dict):
        raise _Corrupt(f"{path} has a config.json without the model's config.")
    count = _layer_count(inner)
    if count > MAX_LAYERS:
        raise _Corrupt(
            f"{path} describes a model of {count:,} layers; glassnet loads models of at most "
            f"{MAX_LAYERS:,} layers."
        )
    try:
        with parameter_budget(budget):
            return model_from_config(config, custom_objects)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise _Corrupt(f"{path} has a config.json glassnet cannot read: {exc!r}.") from None
    except (ValueError, NotImplementedError) as exc:
        raise _with_path(exc, path) from None


def _layer_count(config) -> int:
    """Layers a model config lists, those of models nested in it included (not built: counted)."""
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return 0
    nested = (entry.get("config") for entry in layers if isinstance(entry, dict))
    return len(layers) + sum(_layer_count(inner) for inner in nested)


def _set_layer_weights(model: Model, stored: _Stored, names: dict):
    """Give each layer the variables stored at its path, checking name and shape first.

    ``names`` holds the layer name each ``vars`` group records; pass ``{}`` where the model's
    names need not match (``load_weights`` into a model built anew)."""
    path, legacy = stored.path, stored.legacy
    expected_paths = set()
    plan = []
    for layer_path, layer, named in _saveables(model):
        if isinstance(layer, (Model, Wrapper)):
            continue  # a model's or a wrapper's own group holds nothing
        own = _own_variables(layer)
        key = f"layers/{layer.name}" if legacy else layer_path
        stored_name = names.get(key) if named else None
        if getattr(layer, "keras_cell", None):
            key = f"{key}/cell"  # a recurrent layer's variables are its cell's
        expected_paths.add(key)
        if stored_name and stored_name != layer.name:
            raise _Corrupt(
                f"{path}: the weights at {key} belong to layer {stored_name!r}, but the config "
                f"puts layer {layer.name!r} there. Were layers reordered?"
            )
        keys = [f"{key}/vars/{i}" for i in range(len(own))]
        if any(k not in stored for k in keys):
            raise _Corrupt(
                f"{path}: layer {layer.name!r} needs {len(own)} weight arrays at {key}/vars; "
                f"{sum(k in stored for k in keys)} are there."
            )
        if f"{key}/vars/{len(own)}" in stored:
            raise _Corrupt(f"{path}: {key}/vars holds more arrays than layer {layer.name!r} has.")
        plan.append((layer, own, keys))
    groups = {k.rsplit("vars/", 1)[0].rstrip("/") or "vars" for k in stored if "vars/" in k}
    stray = groups - expected_paths - {"optimizer"}
    if stray:
        raise _Corrupt(f"{path} holds weights for layers its config lacks: {sorted(stray)[:3]}.")
    for layer, own, keys in plan:  # each read at the shape its layer needs, or refused unread
        values = [
            stored.read(k, layer.to_keras(name, layer.params[name]).shape,
                        f"Layer {layer.name!r} weight {name}")
            for k, name in zip(keys, own)
        ]  # fmt: skip
        layer.set_keras_variables(values, source=f"{path}: ", names=own)


def _restore_optimizer(model: Model, stored: _Stored) -> None:
    path, legacy = stored.path, stored.legacy
    keys = [k for k in stored if k.startswith("optimizer/vars/")]
    if not keys:
        return
    optimizer = model.optimizer
    # iterations, then η unless a schedule sets it (glassnet 0.1 wrote no η either)
    has_lr = not legacy and optimizer.schedule is None
    first = 2 if has_lr else 1
    if len(keys) > first:  # slots were saved: the optimizer had stepped
        optimizer.build([p for p, _ in model.trainable_pairs()])
    variables = optimizer.variables()
    if len(keys) != len(variables) + first or any(
        f"optimizer/vars/{i}" not in stored for i in range(len(keys))
    ):
        raise _Corrupt(
            f"{path}: the optimizer state has {len(keys) - first} arrays; "
            f"{type(optimizer).__name__} needs {len(variables)}."
        )
    owners = _parameter_owners(model)
    values = []
    slots = zip(variables, optimizer.variable_owners(), optimizer.variable_names())
    for i, (var, owner, slot) in enumerate(slots, start=first):
        layer, name = owners[owner]
        expected = var.shape if legacy else layer.to_keras(name, var).shape
        value = stored.read(f"optimizer/vars/{i}", expected)
        if not xp.isfinite(value).all() or (slot in optimizer.NON_NEGATIVE and (value < 0).any()):
            domain = "finite and ≥ 0" if slot in optimizer.NON_NEGATIVE else "finite"
            raise _Corrupt(
                f"{path}: optimizer state optimizer/vars/{i} ({type(optimizer).__name__}'s "
                f"{slot} of {layer.name}/{name}) must be {domain}; the file's is not."
            )
        values.append(value if legacy else layer.from_keras(name, value))
    iterations = stored.read("optimizer/vars/0", ())
    if not 0 <= float(iterations) < 2**62:
        raise _Corrupt(f"{path}: the optimizer's iteration count is not a count.")
    if has_lr:
        lr = float(stored.read("optimizer/vars/1", ()))
        if not (lr >= 0 and xp.isfinite(lr)):
            raise _Corrupt(f"{path}: the stored learning rate {lr} is not a learning rate.")
        # η is stored in float32, as Keras keeps it: where that is the compiled η, keep the
        # compiled one exactly, so that a resumed run computes bit for bit as an unbroken one.
        if xp.float32(lr) != xp.float32(optimizer.learning_rate):
            optimizer.learning_rate = lr
    optimizer.iterations = int(iterations)
    for var, value in zip(variables, values):
        var[...] = value


def _inflated_bound(info) -> int:
    """The most bytes a zip member of weights may inflate to: floats compress little (trained
    weights by ~10 %), so more than MAX_RATIO times its compressed size is a bomb, not weights."""
    return MAX_RATIO * info.compress_size + (1 << 20)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True) -> Model:
    """Read a ``.keras`` file written by glassnet or by Keras 3: architecture, weights, and
    (if saved) compile settings and optimizer state. Every part is checked before it is used:
    each weight's declared shape against its layer before any of its values is read."""
    path = Path(os.fspath(filepath))
    if not path.name.endswith(".keras"):
        raise ValueError(
            f"File format not supported: filepath={filepath}. glassnet reads `.keras` files "
            "(Keras 3's format)."
        )
    try:
        members = _read_zip(path)
        config = _parse_json(members[CONFIG], path, CONFIG)
        with _stored_weights(members, path) as stored, custom_object_scope(custom_objects or {}):
            model = _model_from_config(config, path, stored.budget(), custom_objects)
            _set_layer_weights(model, stored, stored.names)
            _read_assets(model, members, path)
            compile_config = config.get("compile_config")
            if compile and compile_config:
                _compile_from_config(model, compile_config, path, custom_objects)
                _restore_optimizer(model, stored)
    except RecursionError:
        raise _Corrupt(f"{path}: its config nests too deeply to be a model.") from None
    return model


def _read_assets(model: Model, members: dict, path: Path) -> None:
    """Give each layer the files Keras keeps for it under ``assets/<its path>/`` (a
    vocabulary); a layer that holds none ignores them, as Keras does."""
    for layer_path, layer, _ in _saveables(model):
        folder = f"{ASSETS}{layer_path}/"
        files = {
            name[len(folder) :]: data
            for name, data in members.items()
            if name.startswith(folder) and "/" not in name[len(folder) :]
        }
        if files:
            layer.read_asset_files(files, f"{path}: ")


def _compile_from_config(model: Model, compile_config, path: Path, custom_objects=None) -> None:
    if not isinstance(compile_config, dict) or not isinstance(
        compile_config.get("optimizer"), (dict, str)
    ):
        raise _Corrupt(f"{path}: its compile settings are not in Keras's form.")
    try:
        model.compile(
            optimizer=optimizers.get(compile_config["optimizer"]),
            loss=_loss_from_config(compile_config.get("loss"), custom_objects),
            loss_weights=compile_config.get("loss_weights"),
            metrics=compile_config.get("metrics") or None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise _Corrupt(f"{path}: its compile settings cannot be read: {exc!r}.") from None
    except (ValueError, NotImplementedError) as exc:
        raise _with_path(exc, path) from None


def _loss_from_config(entry, custom_objects):
    """The compile config's loss (or losses), a function among them found by its name in the
    registry or ``custom_objects``."""
    if isinstance(entry, list):
        return [_loss_from_config(e, custom_objects) for e in entry]
    if isinstance(entry, dict) and entry.get("class_name") in ("function", "__lambda__"):
        return function_from_config(entry, custom_objects, "loss function")
    if isinstance(entry, dict) and "class_name" not in entry:  # by output name
        return {k: _loss_from_config(v, custom_objects) for k, v in entry.items()}
    return entry


def load_weights(model: Model, filepath, optimizer: bool = False) -> None:
    """Load weights from a ``.weights.h5`` file (Keras's layout) or from a ``.keras`` file;
    with ``optimizer``, also the optimizer's state from a ``.keras`` file."""
    path = Path(os.fspath(filepath))
    if path.name.endswith(".keras"):
        members = _read_zip(path)
    elif path.name.endswith(".weights.h5"):
        with _open_regular(path, "weights file") as f:
            members = {WEIGHTS: f.read(MAX_FILE + 1)}
    else:
        raise ValueError(
            f"Received filepath={filepath}. Expected a `.weights.h5` file (as save_weights "
            "writes) or a `.keras` file."
        )
    with _stored_weights(members, path) as stored:
        _set_layer_weights(model, stored, {})  # matched by path, as Keras does
        if optimizer and path.name.endswith(".keras"):
            _restore_optimizer(model, stored)

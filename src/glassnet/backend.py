"""The bottom of glassnet: the array module, the float type, seeding and name lookup.

Everything numeric goes through ``xp``, one alias for the array module (NumPy today), so that a GPU
array library with NumPy's API can be slotted in later without touching the layers.

All randomness flows from explicit ``np.random.Generator`` objects (DESIGN.md §7): ``make_rng``
turns a seed, or nothing, into one. ``set_random_seed`` fixes the global default from which
unseeded layers, initializers and ``fit`` draw their own generators.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import ctypes
import difflib
import functools
import importlib.metadata
import importlib.util
import itertools
import json
import marshal
import math
import numbers
import os
import platform
import random
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__version__ = "0.1.0"

xp = np
"""The array module: every array operation in glassnet is written ``xp.<op>``."""

_FLOATX = "float32"
_EPSILON = 1e-7
_GLOBAL_SEED_SEQUENCE: np.random.SeedSequence | None = None

__all__ = [
    "blas_threads",
    "blas_threads_for",
    "check_positive",
    "check_trial_batch",
    "clear_session",
    "did_you_mean",
    "epsilon",
    "floatx",
    "format_shape",
    "intel_processor",
    "lookup",
    "make_rng",
    "mkl",
    "num_threads",
    "parallel_map",
    "parameter_budget",
    "registered_name",
    "reserve_parameters",
    "set_floatx",
    "set_random_seed",
    "snake_case",
    "unique_name",
    "worth_sharing",
    "xp",
]


# ---- names and shapes, as Keras writes them ----------------------------------------------------


def snake_case(name: str) -> str:
    """``"InputLayer"`` → ``"input_layer"``, ``"Conv2D"`` → ``"conv2d"``, ``"MaxPooling2D"`` →
    ``"max_pooling2d"``: as Keras names layers and their file groups.

    >>> snake_case("GlobalAveragePooling2D")
    'global_average_pooling2d'
    """
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)  # a capitalized word starts a part
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()  # so does a capital after a letter


def format_shape(shape) -> str:
    """``(None, 784)`` the way Keras prints shapes."""
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def fits(shape, declared) -> bool:
    """Whether an array's ``shape`` is ``declared``'s, a ``None`` there matching any length."""
    declared = tuple(declared)
    return len(shape) == len(declared) and all(d is None or d == s for d, s in zip(declared, shape))


# ---- the float type ---------------------------------------------------------------------------


def floatx() -> str:
    """The default float type, as a string: ``"float32"`` unless ``set_floatx`` changed it.

    >>> floatx()
    'float32'
    """
    return _FLOATX


FLOAT_TYPES = ("float32", "float64")  # what glassnet computes in


def set_floatx(value: str) -> None:
    """Set the default float type: ``"float32"`` (fast, Keras's default) or ``"float64"``.

    float64 is what gradient checks use. Layers built after the call use the new type.
    """
    global _FLOATX
    if value not in FLOAT_TYPES:
        raise ValueError(
            f"Received floatx={value!r}. glassnet computes in 'float32' (the default) or "
            "'float64'; float16 has no fast path here (NumPy's BLAS and the fused kernels work "
            "in 32 or 64 bits)."
        )
    _FLOATX = value


def epsilon() -> float:
    """The fuzz factor used to keep logarithms and divisions finite (Keras's ``1e-7``)."""
    return _EPSILON


def set_random_seed(seed: int) -> None:
    """Seed every generator glassnet creates from now on that was not given a seed of its own,
    and, as Keras's does, Python's ``random`` and NumPy's global generator (``np.random.rand``,
    …), which a script's own data code may use.

    Same seed, same weights, same batch order, same dropout masks: the same numbers.
    """
    global _GLOBAL_SEED_SEQUENCE
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Received seed={seed!r}. Expected a non-negative integer.")
    _GLOBAL_SEED_SEQUENCE = np.random.SeedSequence(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def check_positive(name: str, value, allow_zero: bool = False, why: str = "") -> float:
    """``value`` as a float if it is a finite number above 0 (or ≥ 0); else the ValueError
    every glassnet check of a rate or a size says, with ``why`` after it.

    >>> check_positive("learning_rate", 0.1)
    0.1
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value >= 0 if allow_zero else value > 0):
        bound = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"Received {name}={value!r}. Expected {bound} number{why}.")
    return float(value)


def global_seed_sequence() -> np.random.SeedSequence | None:
    """The seed sequence ``set_random_seed`` made last (None before it, or after
    ``clear_session``): a new one means every generator drawn from the old one is stale."""
    return _GLOBAL_SEED_SEQUENCE


def make_rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """A generator for one consumer: from ``seed`` if given, else from the global seed, if set.

    Each call without a seed spawns a fresh child of the global seed sequence, so consumers
    created in the same order after ``set_random_seed`` get the same streams.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        return np.random.default_rng(seed)
    if _GLOBAL_SEED_SEQUENCE is not None:
        return np.random.default_rng(_GLOBAL_SEED_SEQUENCE.spawn(1)[0])
    return np.random.default_rng()


def lookup(kind: str, name: Any, registry: dict[str, Any]) -> Any:
    """Find ``name`` in ``registry`` or raise a ``ValueError`` that lists the valid names.

    >>> lookup("activation", "relu", {"relu": 1, "sigmoid": 2})
    1
    >>> lookup("activation", "rleu", {"relu": 1, "sigmoid": 2})
    Traceback (most recent call last):
    ...
    ValueError: Unknown activation: 'rleu'. Did you mean 'relu'? Valid names: relu, sigmoid.
    """
    if not isinstance(name, str):
        raise TypeError(f"Expected the {kind} as a string name; received {name!r}.")
    key = name.lower()
    if key in registry:
        return registry[key]
    raise ValueError(
        f"Unknown {kind}: {name!r}.{did_you_mean(key, registry)} "
        f"Valid names: {', '.join(sorted(registry))}."
    )


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


BLAS_THREADS_SPIN = False
"""True when NumPy's BLAS was loaded before glassnet could ask its idle threads to sleep
(``import numpy`` before ``import glassnet``, with ``OPENBLAS_THREAD_TIMEOUT`` unset) and could
not be told afterwards (``restart_blas_threads``): they then spin on every core for a while after
each matrix product. Set by ``glassnet/__init__.py``."""


def restart_blas_threads() -> bool:
    """Have an OpenBLAS loaded before glassnet take ``OPENBLAS_THREAD_TIMEOUT`` after all.

    OpenBLAS reads its environment once, when it is loaded, and its worker threads take the
    timeout when they start. So: read the environment again (``openblas_read_env``), stop the
    workers (``blas_thread_shutdown_``, what OpenBLAS itself does before a fork) and start them
    again (``blas_thread_init``), with the short spin. ``import numpy`` before
    ``import glassnet`` is how most scripts begin: without this, a thread spinning 0.1 s after
    each product kept glassnet's own work to one thread (an LSTM step took 15 % longer).
    Returns whether every loaded OpenBLAS exported the three functions and took the setting."""
    try:  # a controller of its own: _blas_controller's, made now, would miss the BLAS that
        from threadpoolctl import ThreadpoolController  # others load later (SciPy's, by Numba)
    except ImportError:  # pragma: no cover - a dependency
        return False
    restarted = False
    for library in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        try:
            loaded = ctypes.CDLL(library.filepath)  # already loaded: the same library
            read_environment = loaded.openblas_read_env
            stop, start = loaded.blas_thread_shutdown_, loaded.blas_thread_init
        except (OSError, AttributeError):  # another build: its threads spin as before
            return False
        read_environment()
        stop()
        start()
        restarted = True
    return restarted


@functools.cache
def num_threads() -> int:
    """How many threads glassnet's own elementwise work may use, read once, at first use:
    ``GLASSNET_NUM_THREADS`` if set; else one if BLAS's idle threads spin (a second thread of
    ours would only fight them: W1 steps took 5.66 ms with two, 5.39 with one, 5.09 with two and
    sleeping BLAS threads); else the CPUs this process may run on."""
    if os.environ.get("GLASSNET_NUM_THREADS"):
        return max(1, int(os.environ["GLASSNET_NUM_THREADS"]))
    if BLAS_THREADS_SPIN:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def limit_threads(threads: int) -> None:
    """From now on, at most ``threads`` threads for BLAS and for glassnet's own work (a process
    that shares its machine with others of the same job, see ``glassnet.distribution``)."""
    os.environ["GLASSNET_NUM_THREADS"] = str(threads)
    num_threads.cache_clear()
    controller = _blas_controller()
    if controller is not None:
        controller.limit(limits=threads, user_api="blas")


_PROCESS = (0, 1)  # (this process's index, how many) in a data-parallel job


def set_process(index: int, count: int) -> None:
    """Record this process's place in a data-parallel job (``glassnet.distribution`` does)."""
    global _PROCESS
    _PROCESS = (int(index), int(count))


def process_index() -> int:
    """This process's rank in a data-parallel job; 0 alone. Only rank 0 writes files."""
    return _PROCESS[0]


def process_count() -> int:
    return _PROCESS[1]


SMALL_PRODUCT_FLOPS = 16e6
"""Below this many floating-point operations per matrix product (2·rows·n_in·n_out, as
``Layer.largest_product`` counts them), BLAS's second thread costs more than it gives: a batch of
32 or 64 rows of a 784→128 layer (6.4 and 12.8 MFLOP) on one thread, a batch of 128 (25.7) on
two. On the Intel Xeon VM (2 vCPUs), seconds per epoch, alternating fresh processes (medians of
three epochs): W4 (batch 64) 0.775, 0.709, 0.828, 0.621, 0.799 with two threads (the threshold
at 5e6, which counted batch 32 and 64 as large) against 0.746, 0.642, 0.565, 0.645, 0.622 with
one; W3 (batch 32) 1.50, 1.70 against 1.26, 1.60. On the AMD EPYC VM before, ms a step with one
thread against two: batch 32 0.36–0.37 against 0.39–0.49; batch 128 0.84–0.85 against 0.68–0.87."""


_ONE_BLAS_THREAD = False  # inside a blas_threads_for block that asked for one thread


@contextlib.contextmanager
def blas_threads_for(flops: float):
    """Within this block, BLAS uses one thread if the largest matrix product has fewer than
    ``SMALL_PRODUCT_FLOPS`` operations; else as it was. (For NumPy's BLAS, where threadpoolctl
    is there to say so; MKL's products read ``blas_threads``.)

    Only in the main thread: BLAS's thread count is one setting for the whole process, and
    OpenBLAS (0.3.31) ignores a raise of it asked from any other thread, so a block elsewhere (a
    request to ``glassnet serve``) could lower it but never put it back; nor do the settings of
    a threadpoolctl controller made in another thread reach it (both measured)."""
    global _ONE_BLAS_THREAD
    if threading.current_thread() is not threading.main_thread() or flops >= SMALL_PRODUCT_FLOPS:
        yield
        return
    before, _ONE_BLAS_THREAD = _ONE_BLAS_THREAD, True
    try:
        controller = _blas_controller()
        if controller is None or os.environ.get("OPENBLAS_NUM_THREADS"):
            yield
        else:
            with controller.limit(limits=1, user_api="blas"):
                yield
    finally:
        _ONE_BLAS_THREAD = before


def blas_threads() -> int:
    """How many threads a matrix product started here and now may use: one within a share of
    ``parallel_map`` (the other cores run the other shares) or a ``blas_threads_for`` block
    that asked for one; else ``num_threads()``."""
    if _ONE_BLAS_THREAD or getattr(_SPREAD, "busy", False):
        return 1
    return num_threads()


BLAS_CHOICES = ("auto", "mkl", "numpy")


@functools.cache
def mkl() -> ctypes.CDLL | None:
    """Intel MKL's runtime library, loaded, when glassnet's layers multiply with it; else None
    (NumPy's own BLAS multiplies: OpenBLAS, in NumPy's wheels).

    ``GLASSNET_BLAS`` chooses, read once, at the first product: ``numpy``; ``mkl`` (an error if
    MKL is not installed); unset or ``auto``, MKL on an Intel processor where the ``mkl``
    package is installed (``pip install "glassnet[mkl]"``) and Numba is there to call it
    (``kernels.matmul``). On the Intel Xeon VM (2 vCPUs) W1–W3 trained 1.17–1.43× as fast with
    it as with OpenBLAS; on an AMD EPYC VM (2 vCPUs) OpenBLAS was the faster, W1 1.09×
    (1.09–1.18), W2 1.11×, W6 1.06× (0.99–1.10), W5 level (benchmarks/README.md, 2026-12-08),
    so ``auto`` keeps NumPy's BLAS on other processors. Its OpenMP threads wait 1 ms after a product
    before they sleep (``KMP_BLOCKTIME=1`` unless set; Intel's default, 200 ms, kept them
    spinning on the core where glassnet's own threads run the optimizer and the other half of
    an LSTM's batch). On that machine, ms a step, MKL against NumPy's BLAS in one process
    (medians of six epochs): W1 4.07 against 5.16 with 1 ms, 4.78 against 5.18 with 0 ms,
    3.56 against 4.56 with 5 ms; W6 16.26 against 18.53 with 1 ms, 15.96 against 17.54 with 0,
    14.92 against 15.41 with 5."""
    choice = os.environ.get("GLASSNET_BLAS", "auto").strip().lower() or "auto"
    if choice not in BLAS_CHOICES:
        raise ValueError(
            f"GLASSNET_BLAS={os.environ['GLASSNET_BLAS']!r} is not one of "
            f"{', '.join(BLAS_CHOICES)}."
        )
    if choice == "numpy" or (choice == "auto" and not intel_processor()):
        return None
    path = _mkl_path() if importlib.util.find_spec("numba") is not None else None
    if path is None:
        if choice == "mkl":
            raise RuntimeError(
                "GLASSNET_BLAS=mkl, but MKL's runtime library (libmkl_rt) and Numba were not "
                'both found. Install them with: pip install "glassnet[mkl]"; or unset '
                "GLASSNET_BLAS to multiply with NumPy's BLAS."
            )
        return None
    os.environ.setdefault("KMP_BLOCKTIME", "1")  # read when MKL starts its OpenMP threads
    library = ctypes.CDLL(str(path))
    library.MKL_Set_Num_Threads_Local.argtypes = [ctypes.c_int]
    library.MKL_Set_Num_Threads_Local.restype = ctypes.c_int
    for name, real in (("cblas_sgemm", ctypes.c_float), ("cblas_dgemm", ctypes.c_double)):
        # (layout, trans_a, trans_b, m, n, k, α, a, lda, b, ldb, β, c, ldc): c = α·a·b + β·c
        gemm = getattr(library, name)
        gemm.argtypes = [ctypes.c_int] * 6 + [real, ctypes.c_void_p, ctypes.c_int,
                                              ctypes.c_void_p, ctypes.c_int, real,
                                              ctypes.c_void_p, ctypes.c_int]  # fmt: skip
        gemm.restype = None
    return library


@functools.cache
def intel_processor() -> bool:
    """Whether this machine's processor is Intel's (MKL's own fast paths are for those): its
    vendor, GenuineIntel, in /proc/cpuinfo on Linux; in the processor's name elsewhere (an x86
    Mac's is Intel's)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("vendor_id"):
                    return "GenuineIntel" in line
    except OSError:
        pass
    if platform.system() == "Darwin":
        return platform.machine() == "x86_64"
    return "Intel" in platform.processor()


def _mkl_path():
    """Where the ``mkl`` package put ``libmkl_rt`` (its wheel: the environment's ``lib``)."""
    try:
        files = importlib.metadata.distribution("mkl").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.startswith(("libmkl_rt.", "mkl_rt.")):  # .so.3, .dylib, .2.dll
            path = file.locate()
            if os.path.exists(path):
                return os.path.realpath(path)
    return None


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, made once, in the main thread: finding
    them takes 0.3 ms, switching their thread count 10 µs, and the recurrent layers switch it at
    every batch."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency; without it BLAS keeps its threads
        return None
    return ThreadpoolController()


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (workers, pool), made on first use
_SPREAD = threading.local()  # .busy: this thread is running a share of a parallel_map
_PARALLEL_MIN = 1 << 18  # elements: below this, handing work to another thread costs more


def worth_sharing(size: int, min_size: int = _PARALLEL_MIN) -> bool:
    """Whether work on ``size`` elements would be spread over threads by ``parallel_map`` (more
    than one thread, enough work, not already inside a share of a spread)."""
    return num_threads() > 1 and size >= min_size and not getattr(_SPREAD, "busy", False)


def parallel_map(fn, items, min_size: int = _PARALLEL_MIN) -> None:
    """Call ``fn`` on every item, spread over ``num_threads()`` threads (the caller's included).

    For NumPy work that releases the GIL, such as elementwise updates of disjoint slices of
    arrays. Each item is a tuple whose first element is an array: its size balances the load,
    and below ``min_size`` elements in all the items run in the caller's thread.
    """
    global _POOL
    if len(items) == 1 or not worth_sharing(sum(item[0].size for item in items), min_size):
        for item in items:
            fn(item)
        return
    n = num_threads()
    if _POOL is None or _POOL[0] != n - 1:
        _POOL = (n - 1, ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="glassnet"))
    # Greedy balance by size: the biggest items first, each to the least-loaded thread.
    loads = [[0, []] for _ in range(n)]
    for item in sorted(items, key=lambda it: -it[0].size):
        lightest = min(loads, key=lambda load: load[0])
        lightest[0] += item[0].size
        lightest[1].append(item)

    errors = xp.geterr()  # the caller's np.errstate, which is per thread

    def run(batch):
        _SPREAD.busy = True
        try:
            with xp.errstate(**errors):
                for item in batch:
                    fn(item)
        finally:
            _SPREAD.busy = False

    futures = [_POOL[1].submit(run, batch) for _, batch in loads[1:]]
    run(loads[0][1])
    for future in futures:
        future.result()


def split_evenly(n: int, parts: int) -> list[slice]:
    """0 … n cut into ``parts`` slices whose sizes differ by at most one (none empty): the
    pieces of work ``parallel_map`` shares out.

    >>> split_evenly(5, 2)
    [slice(0, 2, None), slice(2, 5, None)]
    """
    edges = [n * k // parts for k in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]


CUSTOM_OBJECTS: dict[str, object] = {}
"""Classes and functions registered with ``glassnet.saving.register_keras_serializable``, by
registered name ("package>Name"): configs and files may name them, as Keras's registry allows."""


def registered_name(obj) -> str | None:
    """The name ``register_keras_serializable`` gave ``obj`` (a function, or a class — its own,
    not one a parent class inherited), else None."""
    if isinstance(obj, type):
        return vars(obj).get("_registered_name")
    return getattr(obj, "_registered_name", None)


def serialize_function(fn) -> dict | str:
    """A function as Keras 3 writes it in a config: a registered or named function by its
    name; a lambda as Keras's ``__lambda__`` (its code, which glassnet itself never loads)."""
    if getattr(fn, "__name__", "") != "<lambda>":
        name = registered_name(fn) or fn.__name__
        return {"module": "builtins", "class_name": "function", "config": name,
                "registered_name": "function"}  # fmt: skip
    closure = None
    if fn.__closure__:  # the values it reads from around it, where a config can hold them
        closure = [cell.cell_contents for cell in fn.__closure__]
        try:
            json.dumps(closure)
        except (TypeError, ValueError):
            closure = None
    code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
    return {"class_name": "__lambda__",
            "config": {"code": code, "defaults": fn.__defaults__, "closure": closure}}  # fmt: skip


_SCOPE: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "glassnet_custom_objects", default=None
)


@contextlib.contextmanager
def custom_object_scope(objects: dict):
    """Inside it, configs and files may name ``objects`` (name → class or function) as if they
    were registered, as Keras's ``custom_object_scope``; ``load_model(custom_objects=…)`` opens
    one."""
    token = _SCOPE.set({**(_SCOPE.get() or {}), **(objects or {})})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def known_objects(custom_objects: dict | None = None) -> dict:
    """The classes and functions a config may name: registered, in scope, then given."""
    return {**CUSTOM_OBJECTS, **(_SCOPE.get() or {}), **(custom_objects or {})}


def function_key(entry) -> str:
    """What identifies a serialized function: its name, or a lambda's code."""
    if isinstance(entry, dict) and entry.get("class_name") == "__lambda__":
        return "__lambda__:" + str((entry.get("config") or {}).get("code"))
    return entry.get("config") if isinstance(entry, dict) else entry


def function_from_config(entry, custom_objects: dict | None = None, what: str = "function"):
    """The function a config names, found among the registered objects and ``custom_objects``
    (where a copy made in memory finds a lambda by its code); never code from the file: a lambda
    saved as code is refused."""
    known = known_objects(custom_objects)
    key = function_key(entry)
    if isinstance(key, str) and key.startswith("__lambda__:"):
        if callable(known.get(key)):
            return known[key]
        raise ValueError(
            f"The file holds a {what} as Python code (a lambda); glassnet never runs code from "
            "a file, as Keras's safe_mode. Define the function, register it with "
            "glassnet.saving.register_keras_serializable (or pass custom_objects), and save again."
        )
    name = key
    fn = known.get(name) if isinstance(name, str) else None
    if fn is None and isinstance(name, str) and ">" in name:
        fn = known.get(name.split(">", 1)[1])
    if not callable(fn):
        raise ValueError(
            f"Unknown {what} {name!r}: register it with "
            "glassnet.saving.register_keras_serializable, or pass custom_objects={"
            f"{name!r}: the_function}}."
        )
    return fn


_NAME_COUNTS: dict[str, int] = {}


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: ``dense``, then ``dense_1``, ``dense_2``, …"""
    count = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Forget automatic layer names and the global seed, as ``keras.backend.clear_session``."""
    global _GLOBAL_SEED_SEQUENCE
    _NAME_COUNTS.clear()
    _GLOBAL_SEED_SEQUENCE = None


_PARAMETER_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "glassnet_parameter_budget", default=None
)


@contextlib.contextmanager
def parameter_budget(limit: int):
    """Within this block, layers may create at most ``limit`` parameters in all.

    Loading a file builds the model its config describes; the budget is what the file's weights
    hold, so a config that asks for 2·10⁷ units fails before allocating anything.
    """
    token = _PARAMETER_BUDGET.set([limit])
    try:
        yield
    finally:
        _PARAMETER_BUDGET.reset(token)


MAX_TRIAL_BATCH = 1 << 26  # numbers in a batch run only to learn a call's output shape


def check_trial_batch(shape) -> None:
    """While a file is loaded (a budget in force), refuse to make a batch of ``shape`` — the one a
    layer written with ``call`` runs to learn its output's shape — larger than MAX_TRIAL_BATCH
    numbers: the shape came from the file, and the budget counts parameters, not inputs."""
    if _PARAMETER_BUDGET.get() is None:
        return
    size = math.prod(int(d) for d in shape)
    if size > MAX_TRIAL_BATCH:
        raise ValueError(
            f"the config asks for inputs of shape {tuple(shape)[1:]} a sample; glassnet builds a "
            f"model from a file on a batch of at most {MAX_TRIAL_BATCH:,} numbers."
        )


def reserve_parameters(shape) -> None:
    """Count a parameter of ``shape`` against the budget in force, if any (before allocating)."""
    budget = _PARAMETER_BUDGET.get()
    if budget is None:
        return
    size = math.prod(int(d) for d in shape)
    if size > budget[0]:
        raise ValueError(
            "the config asks for more parameters than the weights hold (a weight of shape "
            f"{tuple(shape)} does not fit in what is left, {budget[0]:,} values)."
        )
    budget[0] -= size

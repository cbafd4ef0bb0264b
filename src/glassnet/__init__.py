"""glassnet: a neural-network library written from scratch in NumPy, in the notation of a teaching
deck, behind a Keras-compatible API.

Replace ``keras`` with ``glassnet`` in a Keras script's imports and it runs::

    from glassnet.models import Sequential
    from glassnet.layers import Dense

The submodules mirror Keras: ``activations``, ``callbacks``, ``config``, ``datasets``,
``initializers``, ``layers``, ``losses``, ``metrics``, ``models``, ``optimizers``, ``utils``.
"""

import os
import sys

# OpenBLAS keeps its worker threads spinning for up to 2²⁸ cycles after each matrix product. On a
# few cores they then fight glassnet's own threads (the optimizer update runs on every core) for
# the CPU. A short spin lets them sleep instead. A value the user set wins. If NumPy came first,
# its OpenBLAS has read its environment already: glassnet asks it to read it again and restart
# its threads (backend.restart_blas_threads); where that is not possible, the threads spin, and
# glassnet keeps its own work to one thread rather than fight them (see backend.num_threads).
_blas_loaded_first = "numpy" in sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# The imports come after those lines on purpose: NumPy, loaded by them, must see the setting.
from glassnet import (  # noqa: E402
    activations,
    backend,
    callbacks,
    config,
    datasets,
    distribution,
    initializers,
    kernels,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    preprocessing,
    random,
    regularizers,
    saving,
    utils,
)
from glassnet.backend import __version__  # noqa: E402 (one version, the package's: pyproject reads it)
from glassnet.layers import Input  # noqa: E402
from glassnet.models import Model, Sequential  # noqa: E402

backend.BLAS_THREADS_SPIN = _blas_loaded_first and not backend.restart_blas_threads()

__all__ = [
    "Input",
    "Model",
    "Sequential",
    "__version__",
    "activations",
    "backend",
    "callbacks",
    "config",
    "datasets",
    "distribution",
    "initializers",
    "kernels",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "preprocessing",
    "random",
    "regularizers",
    "saving",
    "utils",
]

"""glassnet: a neural-network library written from scratch in NumPy, in the notation of a teaching
deck, behind a Keras-compatible API.

Replace ``keras`` with ``glassnet`` in a Keras script's imports and it runs::

    from glassnet.models import Sequential
    from glassnet.layers import Dense

The submodules mirror Keras: ``activations``, ``callbacks``, ``config``, ``datasets``,
``initializers``, ``layers``, ``losses``, ``metrics``, ``models``, ``optimizers``, ``utils``.
"""

__version__ = "0.1.0"

import os

# OpenBLAS keeps its worker threads spinning for up to 2²⁸ cycles after each matrix product. On a
# few cores they then fight glassnet's own threads (the optimizer update runs on every core) for
# the CPU. A short spin lets them sleep instead. It only takes effect if NumPy is not loaded yet,
# and a value the user set wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from glassnet import (
    activations,
    backend,
    callbacks,
    config,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    utils,
)
from glassnet.layers import Input
from glassnet.models import Sequential

__all__ = [
    "Input",
    "Sequential",
    "__version__",
    "activations",
    "backend",
    "callbacks",
    "config",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "utils",
]

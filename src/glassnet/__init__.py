"""glassnet: a neural-network library written from scratch in NumPy, in the notation of a teaching
deck, behind a Keras-compatible API.

Replace ``keras`` with ``glassnet`` in a Keras script's imports and it runs::

    from glassnet.models import Sequential
    from glassnet.layers import Dense

The submodules mirror Keras: ``activations``, ``callbacks``, ``config``, ``datasets``,
``initializers``, ``layers``, ``losses``, ``metrics``, ``models``, ``optimizers``, ``utils``.
"""

__version__ = "0.1.0"

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

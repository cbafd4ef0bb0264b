"""Global settings, as in ``keras.config``: the default float type and the fuzz factor.

>>> import glassnet
>>> glassnet.config.floatx()
'float32'
"""

from glassnet.backend import epsilon, floatx, set_floatx

__all__ = ["epsilon", "floatx", "set_floatx"]

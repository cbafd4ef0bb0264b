"""``keras.preprocessing``, for the scripts that import from there: ``sequence.pad_sequences``
is ``glassnet.utils.pad_sequences``, ``timeseries_dataset_from_array`` is ``glassnet.utils``'s."""

from glassnet.preprocessing import sequence
from glassnet.utils import timeseries_dataset_from_array

__all__ = ["sequence", "timeseries_dataset_from_array"]

"""prunebook: the helper package of the executable book on pruning before training.

The core API (stable: chapters, assignments and outside checks call it) is re-exported here::

    from prunebook import forward, gradient, train, flow, decompose, random_mask, usable_neurons
"""

from prunebook._version import __version__
from prunebook.data import Dataset, sample_data, signal_vector, stack_datasets
from prunebook.decomposition import decompose, reconstruct
from prunebook.evaluate import test_error
from prunebook.network import classification_error, forward, gradient, init_weights, loss
from prunebook.pruning import (
    kept_dimensions,
    neuron_snr,
    random_mask,
    signal_carrying,
    signal_neuron_counts,
    usable,
    usable_neurons,
)
from prunebook.result import TrainingDiverged, TrainResult
from prunebook.train import flow, train

__all__ = [
    "__version__",
    "Dataset",
    "TrainResult",
    "TrainingDiverged",
    "classification_error",
    "decompose",
    "flow",
    "forward",
    "gradient",
    "init_weights",
    "kept_dimensions",
    "loss",
    "neuron_snr",
    "random_mask",
    "reconstruct",
    "sample_data",
    "signal_carrying",
    "signal_neuron_counts",
    "signal_vector",
    "stack_datasets",
    "test_error",
    "train",
    "usable",
    "usable_neurons",
]

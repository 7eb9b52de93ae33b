"""TensorFlow and Keras for the modules that build or run models (``from ..backend import keras, tf``),
imported once without their C++ start-up noise (absl, oneDNN, CUDA probing), in Python as in the CLI."""
from .console import import_tensorflow

import_tensorflow(start_devices=False)  # devices start later: a multi-worker strategy must be created first

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]

"""TensorFlow and Keras for the modules that build or run models (``from ..backend import keras, tf``),
imported once without their C++ start-up noise (absl, oneDNN, CUDA probing), in Python as in the CLI."""
from .console import import_tensorflow

import_tensorflow(start_devices=False)  # devices start later: a multi-worker strategy must be created first

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def _not_retracing_advice(record) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()


# trajsr's graphs are traced once per batch size by design (powers of two): TensorFlow's advice against
# retracing is noise for Python users too; their other TensorFlow warnings stay as they are
if _not_retracing_advice.__name__ not in {getattr(f, "__name__", "") for f in tf.get_logger().filters}:
    tf.get_logger().addFilter(_not_retracing_advice)

__all__ = ["keras", "tf"]

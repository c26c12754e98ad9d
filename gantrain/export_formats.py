"""The formats ``gantrain-export`` writes a run's generator in, by name: each writes its file into a
folder and returns the file's name; one that cannot convert G raises a ConfigError naming the model.

- ``savedmodel``: a TensorFlow SavedModel of :class:`Sampler`, which needs no gantrain to load.
- ``keras``: G as a ``.keras`` file; its custom layers are gantrain's (``import gantrain.models``).
- ``tflite``: G converted to TensorFlow Lite (inputs ``z`` and, conditional, ``labels``).
- ``onnx``: G converted with tf2onnx (the ``onnx`` extra), the same inputs.

Usage: ``name = FORMATS["savedmodel"](generator, folder, "dcgan")``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import tensorflow as tf

from gantrain.errors import ConfigError
from gantrain.evaluation.draw import evaluation_noise
from gantrain.evaluation.measure import pixels
from gantrain.models.conditioning import generate, noise_size

# What SavedModel.sample draws for a seed, as written into the manifest and docs.
SEED_RULE = (
    "sample(seeds) draws each seed's noise on its own: tf.random.stateless_normal([z_dim], seed=[seed, 2]), "
    "the first noise vector gantrain-generate seed=<seed> draws (it draws n vectors as one stateless draw of "
    "shape [n, z_dim] with the same key, so its k-th sample for k > 0 is not sample([seed + k]))"
)
ONNX_EXTRA = 'format=onnx needs tf2onnx and onnxruntime: pip install "gantrain[onnx]"'
ONNX_OPSET = 17  # supported by onnxruntime releases since 2022


class Sampler(tf.Module):
    """A generator with two functions that need no gantrain to call:

    - ``sample(seeds (n,) int64[, labels (n,) int64])``: uint8 images (n, H, W, C) as gantrain-generate
      writes them, or float32 points (n, 2) of a toy run; the noise of each seed as :data:`SEED_RULE` says.
    - ``generate(z (n, z_dim) float32[, labels (n,) int64])``: G's output, images in [-1, 1] or points.
    """

    def __init__(self, generator: keras.Model):
        super().__init__(name="gantrain_generator")
        self.generator = generator
        self.z_dim = noise_size(generator)
        self.conditional = len(generator.inputs) == 2
        self.is_image = len(generator.outputs[0].shape) == 4
        z = tf.TensorSpec([None, self.z_dim], tf.float32, name="z")
        seeds = tf.TensorSpec([None], tf.int64, name="seeds")
        labels = [tf.TensorSpec([None], tf.int64, name="labels")] if self.conditional else []
        self.generate = tf.function(self._generate, input_signature=[z, *labels])
        self.sample = tf.function(self._sample, input_signature=[seeds, *labels])

    def _generate(self, z, labels=None):
        return generate(self.generator, z, labels)

    def _sample(self, seeds, labels=None):
        noise = tf.map_fn(
            lambda seed: evaluation_noise(1, self.z_dim, seed)[0],
            seeds,
            fn_output_signature=tf.TensorSpec([self.z_dim], tf.float32),
        )
        x = self._generate(noise, labels)
        return pixels(x) if self.is_image else x


def write_savedmodel(generator: keras.Model, folder: Path, model: str) -> str:
    sampler = Sampler(generator)
    signatures = {
        "sample": sampler.sample.get_concrete_function(),
        "generate": sampler.generate.get_concrete_function(),
    }
    tf.saved_model.save(sampler, str(folder / "savedmodel"), signatures=signatures)
    return "savedmodel"


def write_keras(generator: keras.Model, folder: Path, model: str) -> str:
    generator.save(folder / "generator.keras")
    return "generator.keras"


def named_inputs(generator: keras.Model) -> keras.Model:
    """G with its inputs named ``z`` and (conditional) ``labels`` (int32), the names converted models show."""
    z = keras.Input((noise_size(generator),), name="z")
    if len(generator.inputs) == 1:
        return keras.Model(z, generator(z, training=False))
    labels = keras.Input((), dtype="int32", name="labels")
    return keras.Model([z, labels], generator([z, labels], training=False))


def write_tflite(generator: keras.Model, folder: Path, model: str) -> str:
    try:
        with quiet_output():
            converted = tf.lite.TFLiteConverter.from_keras_model(named_inputs(generator)).convert()
    except Exception as err:
        raise ConfigError("format", f"model {model} does not convert to TensorFlow Lite: {reason(err)}") from None
    (folder / "generator.tflite").write_bytes(converted)
    return "generator.tflite"


def write_onnx(generator: keras.Model, folder: Path, model: str) -> str:
    import tf2onnx  # checked by check_onnx before anything is written

    named = named_inputs(generator)
    specs = [tf.TensorSpec(i.shape, i.dtype, name=i.name) for i in named.inputs]
    function = tf.function(lambda *inputs: named(list(inputs) if len(inputs) > 1 else inputs[0], training=False))
    try:
        with quiet_output():
            tf2onnx.convert.from_function(
                function, input_signature=specs, opset=ONNX_OPSET, output_path=str(folder / "generator.onnx")
            )
    except Exception as err:
        raise ConfigError("format", f"model {model} does not convert to ONNX: {reason(err)}") from None
    return "generator.onnx"


def check_onnx() -> None:
    """A ConfigError naming the extra when tf2onnx or onnxruntime is missing."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise ConfigError("format", ONNX_EXTRA) from None


def reason(err: BaseException) -> str:
    """A converter's error in one line: the ops it lacks where it says so (its message is an MLIR
    dump of every op), else its first line."""
    text = str(err).strip() or type(err).__name__
    lacking = re.search(r"TF Select ops: (.+)", text)
    if lacking:
        return f"its runtime has no built-in kernel for {lacking[1].strip()} as this model uses it"
    return text.splitlines()[0][:200]


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Standard output and error (file descriptors 1 and 2) discarded for the block: the converters
    print the graphs they save and log every op they cannot convert, and the command's own output is
    one JSON line, or one error line."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


FORMATS: dict[str, Callable[[keras.Model, Path, str], str]] = {
    "savedmodel": write_savedmodel,
    "keras": write_keras,
    "tflite": write_tflite,
    "onnx": write_onnx,
}

"""Class conditioning (``model.conditional=true``): the layers every model uses to take a label.

- :class:`ConditionalBatchNorm`: batch norm whose scale and shift are looked up per class
  (de Vries et al. 2017; Miyato & Koyama 2018, as in SNGAN's and BigGAN's generators). A subclass
  of Keras's batch norm, so the moving average of G recomputes its statistics like any other.
- :func:`with_class_embedding`: z concatenated with a learned embedding of the label (G without
  batch norm: mlp, and dcgan/resnet with ``g_batchnorm=false``).
- :class:`Projection`: the projection discriminator's term <embed(y), features> (Miyato & Koyama
  2018), added to D's unconditional logit.
- :func:`discriminator_model`: D from its input, last features and logit; a conditional D also
  takes the label and adds the projection and, for ACGAN's auxiliary loss (``loss.aux_classifier``,
  Odena et al. 2017), class logits from the same features.

A conditional G takes ``[z (B, z_dim), y (B,) int32]``; a conditional D takes ``[x, y]`` and
returns the logit (B, 1), or ``[logit, class_logits (B, classes)]`` with the classifier head.
:func:`generate` calls either kind of G.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from gantrain.models.spectral_norm import dense


def label_input() -> keras.KerasTensor:
    return keras.Input((), dtype="int32", name="label")


@keras.saving.register_keras_serializable("gantrain")  # a saved G (gantrain-export format=keras) reloads
class ConditionalBatchNorm(layers.BatchNormalization):
    """Inputs ``[x (B, ..., C), y (B,)]``: x normalised without its own scale and shift, then
    ``gamma[y] * x + beta[y]`` with gamma (classes, C) starting at 1 and beta at 0."""

    def __init__(self, classes: int, **kwargs):
        super().__init__(center=False, scale=False, **kwargs)
        self.classes = classes

    def build(self, input_shape):
        x_shape = input_shape[0]
        super().build(x_shape)
        self.input_spec = None  # batch norm's spec describes x alone; this layer also takes y
        channels = x_shape[-1]
        self.class_gamma = self.add_weight(name="class_gamma", shape=(self.classes, channels), initializer="ones")
        self.class_beta = self.add_weight(name="class_beta", shape=(self.classes, channels), initializer="zeros")

    def call(self, inputs, training=None, mask=None):
        x, y = inputs
        normalized = super().call(x, training=training)
        # (B, C) -> (B, 1, ..., 1, C): one scale and shift per example, broadcast over positions.
        shape = [-1] + [1] * (len(x.shape) - 2) + [x.shape[-1]]
        gamma = tf.reshape(tf.cast(tf.gather(self.class_gamma, y), normalized.dtype), shape)
        beta = tf.reshape(tf.cast(tf.gather(self.class_beta, y), normalized.dtype), shape)
        return gamma * normalized + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        for key in ("center", "scale"):
            config.pop(key, None)
        return {**config, "classes": self.classes}


def with_class_embedding(z, y, classes: int, initializer="uniform"):
    """[z, embed(y)]: a learned vector per class (as wide as z, drawn from ``initializer``) beside the noise."""
    embedding = layers.Embedding(classes, z.shape[-1], embeddings_initializer=initializer, name="class_embedding")
    return layers.Concatenate()([z, embedding(y)])


@keras.saving.register_keras_serializable("gantrain")
class Projection(layers.Layer):
    """Inputs ``[features (B, F), y (B,)]`` -> <embed(y), features> (B, 1) in float32. The
    embedding is a bias-free dense layer on the one-hot label, so ``spectral_norm`` normalises it
    like D's other layers (SNGAN's ``SNEmbedID``); ``initializer`` draws its starting values."""

    def __init__(self, classes: int, spectral_norm: bool = False, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.classes, self.spectral_norm = classes, spectral_norm
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embed = dense(
            input_shape[0][-1],
            spectral_norm=self.spectral_norm,
            use_bias=False,
            dtype="float32",
            kernel_initializer=self.initializer,
            name="embedding",
        )
        self.embed.build((None, self.classes))

    def call(self, inputs, training=None):
        features, y = inputs
        embedded = self.embed(tf.one_hot(y, self.classes), training=training)
        return tf.reduce_sum(embedded * tf.cast(features, tf.float32), axis=1, keepdims=True)

    def matrix(self) -> tf.Tensor:
        """The class embeddings (classes, F) as inference uses them."""
        return self.embed(tf.eye(self.classes), training=False)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "classes": self.classes,
            "spectral_norm": self.spectral_norm,
            "initializer": keras.initializers.serialize(self.initializer),
        }


def discriminator_model(
    x,
    features,
    logit,
    conditional: bool,
    classes: int,
    projection: bool,
    class_head: bool,
    spectral_norm: bool = False,
    embedding_initializer="glorot_uniform",
) -> keras.Model:
    """D from its input ``x``, last ``features`` (B, F) and unconditional ``logit`` (B, 1). A
    conditional D also takes the label, with outputs as :func:`discriminator_outputs` makes them."""
    if not conditional:
        return keras.Model(x, logit, name="discriminator")
    y = label_input()
    outputs = discriminator_outputs(
        features, logit, y, classes, projection, class_head, spectral_norm, embedding_initializer
    )
    return keras.Model([x, y], outputs, name="discriminator")


def discriminator_outputs(
    features,
    logit,
    y,
    classes: int,
    projection: bool,
    class_head: bool,
    spectral_norm: bool = False,
    embedding_initializer="glorot_uniform",
):
    """A conditional D's outputs: the logit plus the projection term when ``projection`` (the term
    alone when ``logit`` is None: a D whose only logit is the projection, as R3GAN's); with
    ``class_head``, also ACGAN's class logits. ``spectral_norm``: on the embedding and the class
    head too, as on D's other layers; ``embedding_initializer``: the projection's starting values."""
    if projection:
        term = Projection(classes, spectral_norm, embedding_initializer, name="projection")([features, y])
        logit = term if logit is None else layers.Add(dtype="float32")([logit, term])
    if not class_head:
        return logit
    return [logit, dense(classes, spectral_norm=spectral_norm, dtype="float32", name="class_logits")(features)]


def generate(generator: keras.Model, z, labels=None, training: bool = False):
    """G's samples of noise ``z`` (and, for a conditional G, ``labels``)."""
    if labels is None:
        return generator(z, training=training)
    return generator([tf.convert_to_tensor(z), tf.cast(labels, tf.int32)], training=training)


def noise_size(generator: keras.Model) -> int:
    """z_dim of either kind of G."""
    return generator.inputs[0].shape[-1]

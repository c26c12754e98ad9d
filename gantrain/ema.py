"""An exponential moving average of the generator's weights (``train.ema``).

After each generator update: ``ema <- decay * ema + (1 - decay) * weight`` for the trainable
weights; non-trainable state (batch-norm statistics) is copied. The average starts as a copy of G.
Samples and evaluation use the averaged generator when it is on (Yazici et al. 2019).

Usage: ``ema = MovingAverage(generator, 0.999); ema.update(); ema.model(z)``.
"""

from __future__ import annotations

import keras


class MovingAverage:
    def __init__(self, model: keras.Model, decay: float):
        self.decay = decay
        self.source = model
        self.model = keras.models.clone_model(model)
        self.model.set_weights(model.get_weights())

    def update(self) -> None:
        """One averaging step; call in cross-replica context (inside or outside a tf.function)."""
        for average, weight in zip(self.model.trainable_weights, self.source.trainable_weights, strict=True):
            average.assign(self.decay * average + (1.0 - self.decay) * weight)
        for average, weight in zip(self.model.non_trainable_weights, self.source.non_trainable_weights, strict=True):
            average.assign(weight)

"""tf.distribute strategies by name. Models, optimizers and RNGs are created in ``scope()``.

Usage: ``strategy = STRATEGIES.build(cfg.strategy)``.
"""

from __future__ import annotations

import tensorflow as tf

from gantrain.registry import Registry

STRATEGIES = Registry("strategy")


@STRATEGIES.register("default")
def default() -> tf.distribute.Strategy:
    """Whatever strategy is current: one device, the first GPU if there is one."""
    return tf.distribute.get_strategy()

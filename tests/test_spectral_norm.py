"""Spectral normalization: the layer's effective kernel has top singular value 1."""

import numpy as np
import pytest
import tensorflow as tf

from gantrain.models.spectral_norm import SNConv2D, SNDense


def top_singular_value(kernel) -> float:
    kernel = np.asarray(kernel)
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


@pytest.mark.parametrize(
    "layer, x",
    [(lambda: SNDense(7), np.ones((2, 5))), (lambda: SNConv2D(6, 3), np.ones((2, 8, 8, 4)))],
    ids=["dense", "conv"],
)
def test_power_iteration_drives_the_top_singular_value_to_one(layer, x):
    layer = layer()
    x = tf.constant(x, tf.float32)
    layer(x)  # build
    # The kernel's own directions with singular values 10 (far from 1 to start with) and at most 5
    # after it: each power iteration shrinks the error by (5/10)^2, whatever the random draws.
    kernel = np.asarray(layer._kernel)
    left, values, right = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), full_matrices=False)
    values = np.r_[10.0, np.linspace(5.0, 1.0, len(values) - 1)]
    layer._kernel.assign((left * values @ right).reshape(kernel.shape))
    assert top_singular_value(layer._kernel) == pytest.approx(10.0)
    for _ in range(30):  # one power iteration per training call
        layer(x, training=True)
    assert top_singular_value(layer.normalized_kernel(training=False)) == pytest.approx(1.0, abs=1e-3)


def test_inference_calls_leave_u_alone():
    layer = SNDense(3)
    x = tf.ones((1, 4))
    layer(x, training=True)
    u = layer.u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.u.numpy(), u)


def test_gradient_runs_through_sigma():
    """d/dW of sum(W_sn x) includes sigma's dependence on W: for a 1x1 kernel W_sn = sign(W)
    whatever W, so the gradient is zero (an implementation that treats sigma as a constant
    would give x / |W|)."""
    layer = SNDense(1, use_bias=False)
    x = tf.constant([[2.0]])
    layer(x)
    layer._kernel.assign([[3.0]])
    for _ in range(3):
        layer(x, training=True)
    with tf.GradientTape() as tape:
        y = layer(x, training=False)
    np.testing.assert_allclose(y, [[2.0]], rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, layer._kernel), [[0.0]], atol=1e-6)

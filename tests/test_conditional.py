"""Class-conditional GANs (model.conditional, loss.aux_classifier): each mechanism against a hand-built
equivalent (projection logit, conditional batch norm, ACGAN's loss), labels drawn from the run's
stream (mirrored = default, bitwise resume), one preview row per class, the conditional metrics,
and the data's labels (folder subfolders, CIFAR-10 batches)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from PIL import Image

from gantrain import api
from gantrain.data import DATASETS
from gantrain.errors import ConfigError
from gantrain.evaluation.features import conditional_metrics
from gantrain.models.conditioning import ConditionalBatchNorm, Projection
from gantrain.run.strategies import STRATEGIES
from gantrain.training.losses import class_cross_entropy
from tests.conftest import (
    TINY,
    assert_same_state,
    assert_same_step,
    build_step,
    fake_images,
    straight_and_resumed,
)

IMAGES = tf.constant(np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1)).astype(np.uint8))
LABELS = tf.constant(np.arange(40, dtype=np.int64) % 4)  # four classes
MLP = ["model=mlp", *TINY["mlp"], "model.conditional=true", "train.batch_size=8", "train.n_critic=2"]
DCGAN = ["model=dcgan", *TINY["dcgan"], "model.conditional=true", "train.batch_size=8", "train.n_critic=1"]


def conditional_step(overrides: list[str], strategy=None):
    """(gan, step) of a conditional GAN on IMAGES with LABELS, as train() builds them."""
    from gantrain.config import check_train
    from gantrain.training.gan import build_gan
    from gantrain.training.step import TrainStep

    cfg = api.compose(overrides)
    gan = build_gan(cfg, tuple(IMAGES.shape[1:]), strategy, num_classes=4)
    return gan, TrainStep(gan, IMAGES, check_train(cfg.train), LABELS)


def test_projection_adds_the_class_embedding_s_inner_product_with_d_s_features():
    gan, _ = conditional_step([*MLP, "loss=nsgan"])
    d = gan.discriminator
    # D's plain logit and the features the projection sees, taken out of the same network.
    total = [layer for layer in d.layers if isinstance(layer, keras.layers.Add)][0]
    parts = keras.Model(d.inputs, [total.input[0], d.get_layer("projection").input[0]])
    x = tf.random.normal([6, 8, 8, 1], seed=1)
    y = tf.constant([0, 1, 2, 3, 1, 0])
    plain, features = (t.numpy() for t in parts([x, y]))
    embeddings = d.get_layer("projection").matrix().numpy()
    expected = plain[:, 0] + np.sum(embeddings[y.numpy()] * features, axis=1)
    np.testing.assert_allclose(d([x, y]).numpy()[:, 0], expected, rtol=1e-5, atol=1e-5)
    # The label matters only through the projection: two labels differ by <E[a] - E[b], features>.
    other = d([x, tf.constant([3, 3, 3, 3, 3, 3])]).numpy()[:, 0]
    np.testing.assert_allclose(
        d([x, y]).numpy()[:, 0] - other,
        np.sum((embeddings[y.numpy()] - embeddings[3]) * features, axis=1),
        rtol=1e-4,
        atol=1e-5,
    )


def test_projection_layer_is_the_embedding_row_dotted_with_the_features():
    layer = Projection(3)
    features = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    y = np.array([2, 0, 1, 2, 1])
    out = layer([tf.constant(features), tf.constant(y)]).numpy()
    np.testing.assert_allclose(out[:, 0], np.sum(layer.embed.kernel.numpy()[y] * features, axis=1), rtol=1e-5)
    # With spectral normalization the embedding matrix is divided by its largest singular value.
    normalized = Projection(3, spectral_norm=True)
    normalized([tf.constant(features), tf.constant(y)])
    for _ in range(50):  # power iterations, one per training call
        normalized([tf.constant(features), tf.constant(y)], training=True)
    assert np.linalg.norm(normalized.matrix().numpy(), 2) == pytest.approx(1.0, rel=1e-3)


def test_conditional_batch_norm_is_batch_norm_with_a_scale_and_shift_per_class():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(6, 4, 4, 5)).astype(np.float32)
    y = np.array([0, 2, 1, 2, 0, 1])
    layer = ConditionalBatchNorm(3, momentum=0.9)
    layer([tf.constant(x), tf.constant(y)])  # builds it
    gamma, beta = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(3, 5)).astype(np.float32)
    layer.class_gamma.assign(gamma)
    layer.class_beta.assign(beta)
    out = layer([tf.constant(x), tf.constant(y)], training=True).numpy()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = gamma[y][:, None, None] * (x - mean) / np.sqrt(var + layer.epsilon) + beta[y][:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert not layer.center and not layer.scale  # no shared scale and shift besides the per-class ones
    # Inference uses the moving statistics, as plain batch norm does.
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model, shared", [("dcgan", 0), ("resnet", 1)])
def test_conditional_generators_with_batch_norm_use_it_per_class_and_without_embed_the_label(model, shared):
    """dcgan: every batch norm per class; resnet: every one in the blocks, the last one (after the
    blocks) shared by all classes, as SNGAN's conditional ResNet generator has it."""
    from gantrain.models import build_models

    node = api.compose([f"model={model}", *TINY[model], "model.conditional=true"]).model
    generator, discriminator = build_models(node, (8, 8, 1), num_classes=4)
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    per_class = norms[: len(norms) - shared]
    assert per_class and all(isinstance(layer, ConditionalBatchNorm) and layer.classes == 4 for layer in per_class)
    assert not any(isinstance(layer, ConditionalBatchNorm) for layer in norms[len(norms) - shared :])
    assert [i.shape[1:] for i in generator.inputs] == [(4,), ()] and len(discriminator.inputs) == 2
    plain, _ = build_models(OmegaConf.merge(node, {"g_batchnorm": False}), (8, 8, 1), num_classes=4)
    assert plain.get_layer("class_embedding").output.shape[-1] == 4  # as wide as z, beside it
    assert not [layer for layer in plain.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_acgan_loss_is_the_cross_entropy_of_the_class_logits():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]], np.float32)
    labels = np.array([0, 2])
    expected = -np.log(np.exp(logits[np.arange(2), labels]) / np.exp(logits).sum(axis=1))
    np.testing.assert_allclose(class_cross_entropy(tf.constant(labels), tf.constant(logits)), expected, rtol=1e-6)


def test_one_step_s_losses_rebuilt_by_hand_from_the_stream():
    """d_loss = hinge on (real, its label) and (fake, a uniform label) + w * (CE real + CE fake);
    g_loss = hinge's G term + w * CE of G's samples; the penalty's points carry the real labels."""
    w = 0.5
    gan, step = conditional_step(
        [*MLP, "loss=hinge", f"loss.aux_classifier={w}", "loss.penalty=gp", "train.n_critic=1"]
    )
    rng = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)  # the step's draws, replayed
    index = rng.uniform([1, 8], 0, 40, dtype=tf.int64)[0]
    d_noise, g_noise = rng.normal([1, 8, 4])[0], rng.normal([1, 8, 4])[0]
    eps = rng.uniform([1, 8])[0]
    fake_labels = rng.uniform([1, 8], 0, 4, dtype=tf.int64)[0]
    g_labels = rng.uniform([1, 8], 0, 4, dtype=tf.int64)[0]
    real = tf.cast(tf.gather(IMAGES, index), tf.float32) / 127.5 - 1.0
    real_labels = tf.gather(LABELS, index)
    d, g = gan.discriminator, gan.generator
    fake = g([d_noise, tf.cast(fake_labels, tf.int32)], training=True)
    g_fake = g([g_noise, tf.cast(g_labels, tf.int32)], training=True)  # G changes only after D's update
    (d_real, c_real), (d_fake, c_fake) = (
        d([x, tf.cast(y, tf.int32)], training=True) for x, y in ((real, real_labels), (fake, fake_labels))
    )
    points = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    with tf.GradientTape() as tape:
        tape.watch(points)
        d_points = d([points, tf.cast(real_labels, tf.int32)], training=True)[0]
    norms = tf.norm(tf.reshape(tape.gradient(d_points, points), [8, -1]), axis=1)
    gp = float(tf.reduce_mean(tf.square(norms - 1.0)))
    hinge = tf.reduce_mean(tf.nn.relu(1 - d_real) + tf.nn.relu(1 + d_fake))
    ce = tf.reduce_mean(class_cross_entropy(real_labels, c_real)) + tf.reduce_mean(
        class_cross_entropy(fake_labels, c_fake)
    )
    metrics = step.compiled()
    assert float(metrics["gp"]) == pytest.approx(gp, rel=1e-4)
    assert float(metrics["d_loss"]) == pytest.approx(float(hinge + w * ce) + 10.0 * gp, rel=1e-4)
    # G's loss, with D as its update left it (G's update does not change D).
    scores, classes = d([g_fake, tf.cast(g_labels, tf.int32)], training=True)
    g_loss = tf.reduce_mean(-scores) + w * tf.reduce_mean(class_cross_entropy(g_labels, classes))
    assert float(metrics["g_loss"]) == pytest.approx(float(g_loss), rel=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [
        # mlp: synchronized batch norm and a class embedding in G; projection, ACGAN and the penalty
        # (whose points carry the real labels) in D.
        [*MLP, "model.g_batchnorm=true", "loss=wgan_gp", "loss.aux_classifier=1"],
        # dcgan without batch norm (class embedding beside z); spectrally normalised projection and head.
        [*DCGAN, "model.g_batchnorm=false", "model.d_spectral_norm=true", "loss=hinge", "loss.aux_classifier=0.5"],
        # The relativistic loss: G's update scores a real batch with its labels; R1 + R2 and ACGAN's
        # head come from D's one call on real and fake; augmentation transforms every view.
        [*DCGAN, "model.g_batchnorm=false", "loss=rpgan", "loss.aux_classifier=0.5", "train.augment=[translation]"],
    ],
    ids=["mlp-wgan_gp-acgan", "dcgan-hinge-sn-acgan", "dcgan-rpgan-acgan-augment"],
)
def test_mirrored_conditional_step_equals_default_step(overrides):
    results = []
    for strategy in (
        tf.distribute.get_strategy(),
        STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})),
    ):
        keras.utils.set_random_seed(0)
        gan, step = conditional_step(overrides, strategy)
        metrics = {k: float(v) for k, v in step.compiled(3).items()}
        results.append((metrics, gan.generator.get_weights() + gan.discriminator.get_weights()))
    assert_same_step(*results)


def test_resume_of_a_conditional_run_is_bitwise(tmp_path, make_cfg, mnist_npz):
    options = [
        *DCGAN,
        "dataset=mnist",
        f"dataset.path={mnist_npz}",
        "loss=hinge",
        "loss.aux_classifier=0.3",
        "train.ema=0.9",
        "train.checkpoint_every=2",
        "train.sample_every=100",
        "train.log_every=1",
    ]
    assert_same_state(*straight_and_resumed(make_cfg, tmp_path, options, steps=4, split=2))


def test_labels_are_drawn_after_everything_else_and_only_for_conditional_runs():
    """An unconditional step draws what it drew before conditioning existed (test_packing's
    recorded step checks the numbers); a conditional one draws the fake labels last."""
    from gantrain.config import check_train
    from gantrain.training.gan import build_gan
    from gantrain.training.step import TrainStep

    cfg = api.compose(["model=mlp", *TINY["mlp"], "train.batch_size=8"])
    plain = TrainStep(build_gan(cfg, (2,)), tf.zeros([16, 2]), check_train(cfg.train))
    assert list(plain.draw()) == ["index", "d_noise", "g_noise", "eps"] and plain.gan.sample_labels is None
    gan, step = conditional_step([*MLP, "loss=wgan_gp"])
    draws = step.draw()
    assert list(draws) == ["index", "d_noise", "g_noise", "eps", "d_labels", "g_labels"]
    assert set(np.unique(draws["d_labels"])) <= {0, 1, 2, 3} and gan.sample_labels.numpy().tolist()[:2] == [0] * 2


@pytest.mark.slow
def test_conditional_run_previews_one_row_per_class_and_measures_its_classes(tmp_path, make_cfg, mnist_npz):
    from gantrain.evaluation.features.classifier import embed, load_or_train
    from gantrain.evaluation.measure import evaluate, sample_metrics
    from gantrain.evaluation.plan import evaluation_plan
    from gantrain.run.train import train

    cfg = make_cfg(
        *DCGAN,
        "dataset=mnist",
        f"dataset.path={mnist_npz}",
        "loss=hinge",
        "train.steps=2",
        "train.sample_every=2",
        "train.num_samples=20",
        "eval.every=2",
        "eval.num_samples=40",
    )
    last = train(cfg, tmp_path / "run")
    grid = Image.open(tmp_path / "run" / "samples" / "step_000002.png")
    # 10 classes x 2 columns of 28-pixel tiles with 2-pixel gaps.
    assert grid.size == (2 * 30 + 2, 10 * 30 + 2)
    assert {"class_accuracy", "intra_fid", "fid"} <= last.keys()
    again = evaluate(tmp_path / "run", num_samples=40)
    assert again["class_accuracy"] == last["class_accuracy"] and again["intra_fid"] == pytest.approx(last["intra_fid"])
    # Known answers through the same measurement: images drawn "for" the class the run's classifier
    # sees in them score 1; drawn for the class after it, 0.
    dataset = DATASETS.build(cfg.dataset)
    images = np.repeat(dataset.head(20), 2, axis=0)  # two of each: every class has a covariance for intra-FID
    seen = embed(load_or_train(cfg.dataset), images)[1].argmax(axis=1)
    for labels, accuracy in ((seen, 1.0), ((seen + 1) % 10, 0.0)):
        metrics, _ = sample_metrics(
            cfg.dataset, dataset, images / 127.5 - 1.0, evaluation_plan("mnist", conditional=True), labels=labels
        )
        assert metrics["class_accuracy"] == accuracy


def test_too_few_samples_for_fid_or_intra_fid_is_one_line_and_writes_nothing(tmp_path, make_cfg, mnist_npz):
    from gantrain.evaluation.measure import evaluate
    from gantrain.run.train import train

    overrides = [*DCGAN, "dataset=mnist", f"dataset.path={mnist_npz}", "train.steps=1"]
    message = "intra-FID needs at least 2 samples per class: 20 or more for 10 classes, got 15"
    with pytest.raises(ConfigError, match=f"^eval.num_samples: {message}$"):
        train(make_cfg(*overrides, "eval.every=1", "eval.num_samples=15"), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    train(make_cfg(*overrides), tmp_path / "run")
    # 15 samples drawn for the classes in turn: five classes get one each, whose covariance is undefined.
    with pytest.raises(ConfigError, match=f"^num_samples: {message}$"):
        evaluate(tmp_path / "run", num_samples=15)
    with pytest.raises(ConfigError, match="^num_samples: FID and KID need at least 2 samples, got 1$"):
        evaluate(tmp_path / "run", num_samples=1)
    assert not (tmp_path / "run" / "eval.json").exists()


def test_conditional_metrics_known_answers():
    features = np.random.default_rng(0).normal(size=(400, 3))
    labels = np.arange(400) % 2
    probs = np.eye(2)[labels]
    probs[:100] = np.eye(2)[1 - labels[:100]]  # a quarter misclassified
    references = {
        "mu": np.stack([features[labels == k].mean(0) for k in (0, 1)]),
        "sigma": np.stack([np.cov(features[labels == k], rowvar=False) for k in (0, 1)]),
    }
    result = conditional_metrics(features, probs, labels, references)
    assert result["class_accuracy"] == 0.75
    assert result["intra_fid"] == pytest.approx(0.0, abs=1e-6)  # each class's samples are its reals
    shifted = conditional_metrics(features + np.array([2.0, 0, 0]), probs, labels, references)
    assert shifted["intra_fid"] == pytest.approx(4.0, rel=1e-6)  # ||mu shift||^2, covariances equal


def test_folder_labels_are_the_class_subfolders(tmp_path):
    for i, name in enumerate(["cat", "ant", "cat", "bee"]):
        (tmp_path / "data" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(fake_images(1, 12, 12, 3, seed=i)[0]).save(tmp_path / "data" / name / f"{i}.png")
    dataset = DATASETS.build(OmegaConf.create({"name": "folder", "path": str(tmp_path / "data"), "resolution": 8}))
    assert dataset.y.tolist() == [0, 1, 2, 2] and dataset.classes == 3  # ant/1, bee/3, cat/0, cat/2: sorted paths
    Image.fromarray(fake_images(1, 12, 12, 3)[0]).save(tmp_path / "data" / "loose.png")
    assert (
        DATASETS.build(OmegaConf.create({"name": "folder", "path": str(tmp_path / "data"), "resolution": 8})).y is None
    )


def test_cifar10_keeps_its_labels(tmp_path):
    from tests.conftest import write_cifar_batches

    write_cifar_batches(tmp_path / "cifar-10-batches-py")
    dataset = DATASETS.build(OmegaConf.create({"name": "cifar10", "path": str(tmp_path)}))
    assert dataset.y.tolist() == [7 * n % 10 for n in range(20)] and dataset.classes == 10  # as the batches hold them


def test_conditional_needs_labels_and_says_where_to_get_them():
    from gantrain.run.train import check

    with pytest.raises(ConfigError, match="model.conditional: needs class labels, and dataset ring8 has none"):
        check(api.compose(["model=mlp", "dataset=ring8", "model.conditional=true"]))


def test_acgan_needs_a_conditional_model():
    with pytest.raises(ConfigError, match="loss.aux_classifier"):
        build_step(["model=mlp", *TINY["mlp"], "loss.aux_classifier=1"], tf.zeros([16, 2]))

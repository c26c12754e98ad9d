"""What each dataset and model declares about itself where it registers, as the modules that read
those facts use them."""

import numpy as np
import pytest

from gantrain import api
from gantrain.data import DATASETS, Dataset
from gantrain.errors import ConfigError
from gantrain.evaluation.plan import evaluation_plan, kind_of
from gantrain.models import MODELS
from tests.conftest import TINY

NO_LABELS = {
    "mnist": "its file has no labels (y_train/y_test in the .npz, or the labels IDX file beside the images)",
    "fashion_mnist": "its file has no labels (the labels IDX file beside the images)",
    "cifar10": "its batches have no labels",
    "folder": "put each class's images in a subfolder of its own",
    "stacked_mnist": "choose a dataset with labels (mnist, fashion_mnist, cifar10, a folder with class subfolders)",
    "ring8": "choose a dataset with labels (mnist, fashion_mnist, cifar10, a folder with class subfolders)",
    "grid25": "choose a dataset with labels (mnist, fashion_mnist, cifar10, a folder with class subfolders)",
}


def test_every_dataset_declares_a_kind_the_plan_measures():
    assert sorted(NO_LABELS) == DATASETS.names()
    kinds = {name: kind_of(name) for name in DATASETS.names()}
    assert set(kinds.values()) <= {"images", "digits", "mixture", "stacked"}
    assert [name for name, kind in kinds.items() if kind == "mixture"] == ["grid25", "ring8"]
    assert evaluation_plan("stacked_mnist").metrics == ("modes", "mode_kl")


@pytest.mark.parametrize("name", sorted(NO_LABELS))
def test_a_conditional_model_of_a_dataset_without_labels_is_told_where_to_get_them(name):
    shape = (4, 2) if kind_of(name) == "mixture" else (4, 8, 8, 1)
    with pytest.raises(ConfigError) as err:
        Dataset(name, np.zeros(shape, np.float32)).conditional_classes()
    assert str(err.value) == f"model.conditional: needs class labels, and dataset {name} has none: {NO_LABELS[name]}"


def test_with_labels_a_conditional_model_takes_their_classes():
    assert Dataset("mnist", np.zeros((3, 8, 8, 1), np.uint8), y=np.array([0, 4, 2])).conditional_classes() == 5


def test_only_dense_models_declare_that_xla_pays_on_a_cpu():
    assert [name for name in MODELS.names() if MODELS.facts(name).xla_on_cpu] == ["mlp"]


def test_an_unknown_name_has_no_facts():
    with pytest.raises(ConfigError, match="dataset.name: unknown dataset 'mnsit'; known: cifar10, "):
        DATASETS.facts("mnsit")


def test_the_api_builds_a_conditional_model_for_the_datasets_classes(mnist_npz):
    cfg = api.compose(
        [
            "model=mlp",
            *TINY["mlp"],
            "dataset=mnist",
            f"dataset.path={mnist_npz}",
            "model.conditional=true",
            "train.num_samples=10",
        ]
    )
    gan = api.build_gan(cfg)
    assert gan.num_classes == 10 and gan.sample_labels.shape == (10,)
    generator, _ = api.build_models(cfg)
    assert [tuple(i.shape) for i in generator.inputs] == [(None, 4), (None,)]  # noise and a label
    with pytest.raises(ConfigError, match="needs class labels, and dataset ring8 has none: choose a dataset"):
        api.build_models(api.compose(["model=mlp", *TINY["mlp"], "dataset=ring8", "model.conditional=true"]))

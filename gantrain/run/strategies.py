"""tf.distribute strategies by name. Models, optimizers and RNGs are created in ``scope()``.

``train.batch_size`` is always the global batch; it is split evenly over the replicas.

Usage: ``strategy = STRATEGIES.build(cfg.strategy)``.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from gantrain.errors import ConfigError, GantrainError
from gantrain.registry import Registry

log = logging.getLogger(__name__)
STRATEGIES = Registry("strategy")


@STRATEGIES.register("default")
def default() -> tf.distribute.Strategy:
    """Whatever strategy is current: one device, the first GPU if there is one."""
    return tf.distribute.get_strategy()


@STRATEGIES.register("one_device")
def one_device(device: str | None = None) -> tf.distribute.Strategy:
    """One named device, e.g. ``/gpu:1``; null: the first GPU, else the CPU."""
    if device is None:
        device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
    _check_devices([device])
    return tf.distribute.OneDeviceStrategy(device)


@STRATEGIES.register("mirrored")
def mirrored(devices: list[str] | None = None) -> tf.distribute.Strategy:
    """Synchronous data parallelism over local devices; null: every GPU (the CPU if none)."""
    if devices is None and not tf.config.list_logical_devices("GPU"):
        log.warning("strategy=mirrored: no GPU on this machine, so it runs on the CPU (one replica)")
        devices = ["/cpu:0"]
    cross_device_ops = None
    if devices is not None:
        _check_devices(devices)
        if all((tf.DeviceSpec.from_string(d).device_type or "").upper() == "CPU" for d in devices):
            # Collective all-reduces between CPU replicas can run in different orders and abort
            # ("Shape mismatch in the collective instance"); a plain reduction is safe there.
            cross_device_ops = tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops)


@STRATEGIES.register("multi_worker")
def multi_worker(cluster: str = "tf_config") -> tf.distribute.Strategy:
    """Synchronous data parallelism over machines: the cluster from $TF_CONFIG, or ``slurm``."""
    if cluster == "tf_config":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("strategy.cluster", "multi_worker needs $TF_CONFIG (or cluster=slurm inside a SLURM job)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as err:
            raise ConfigError("strategy.cluster", f"$TF_CONFIG is not JSON ({err})") from None
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    elif cluster == "slurm":
        if "SLURM_JOB_ID" not in os.environ:
            raise ConfigError("strategy.cluster", "cluster=slurm needs to run inside a SLURM job (srun)")
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
    else:
        raise ConfigError("strategy.cluster", f"unknown cluster '{cluster}'; known: tf_config, slurm")
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


@STRATEGIES.register("tpu")
def tpu(tpu: str = "") -> tf.distribute.Strategy:
    """A Cloud TPU by name or address (``""``: the TPU of this VM)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as err:
        raise GantrainError(f"strategy.tpu: cannot reach TPU '{tpu}' ({str(err).splitlines()[0]})") from None
    return tf.distribute.TPUStrategy(resolver)


def _check_devices(devices: list[str]) -> None:
    def key(name: str) -> tuple[str, int]:
        spec = tf.DeviceSpec.from_string(name)
        return (spec.device_type or "").upper(), spec.device_index or 0

    known = {key(d.name): d.name for d in tf.config.list_logical_devices()}
    for device in devices:
        if key(device) not in known:
            raise ConfigError("strategy", f"no device {device} here; known: {', '.join(sorted(known.values()))}")


def devices(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices ``strategy`` computes on (the default strategy: the first GPU, else the CPU)."""
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy does not list them
        gpus = tf.config.list_logical_devices("GPU")
        return [gpus[0].name if gpus else "/device:CPU:0"]

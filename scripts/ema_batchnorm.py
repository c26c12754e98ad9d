"""The moving average of G and batch norm: the averaged generator's metrics with batch-norm
statistics of its own (what gantrain does) beside the same weights with the raw generator's
moving statistics (what a plain weight copy gives), and the raw generator, side by side.

Reads a run trained with ``train.ema``: each checkpoint holds the raw G (its own moving statistics)
and the averaged G (statistics recomputed for the averaged weights from fixed noise). Every row is
scored on the same evaluation noise and with the run's evaluation metrics, as ``gantrain-eval``
does.

Usage: ``python scripts/ema_batchnorm.py outputs/mnist_ema [--checkpoint latest] [--num-samples 2500]``
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from gantrain.data import DATASETS  # noqa: E402
from gantrain.evaluation.draw import draw  # noqa: E402
from gantrain.evaluation.measure import sample_metrics  # noqa: E402
from gantrain.evaluation.plan import default_num_samples, evaluation_plan  # noqa: E402
from gantrain.evaluation.saved_run import checkpoint_path  # noqa: E402
from gantrain.models import build_models  # noqa: E402
from gantrain.run.directory import RunDir  # noqa: E402
from gantrain.training.ema import batch_norms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run trained with train.ema")
    parser.add_argument("--checkpoint", default="latest", help="latest or a step the run kept")
    parser.add_argument("--num-samples", type=int, help="default: what gantrain-eval draws for the dataset")
    args = parser.parse_args()
    run = RunDir(args.run_dir)
    cfg = OmegaConf.load(run.config)
    if cfg.train.get("ema") is None:
        parser.error(f"{run.root} was trained without train.ema")
    dataset = DATASETS.build(cfg.dataset)
    raw, _ = build_models(cfg.model, dataset.shape, cfg.train.precision)
    averaged, _ = build_models(cfg.model, dataset.shape, cfg.train.precision)
    path = checkpoint_path(run, args.checkpoint)
    tf.train.Checkpoint(generator=raw, ema_generator=averaged).restore(path).expect_partial()
    if not batch_norms(averaged):
        parser.error(f"{cfg.model.name} as configured has no batch norm in G: both ways are the same")
    plan = evaluation_plan(cfg.dataset.name, "auto")
    num_samples = args.num_samples or default_num_samples(cfg.dataset.name)

    def metrics(generator) -> dict:
        samples = draw(generator, num_samples, int(cfg.train.seed))
        return sample_metrics(cfg.dataset, dataset, samples, plan)[0]

    rows = {"averaged G, its own batch-norm statistics (gantrain)": metrics(averaged)}
    for own, copied in zip(batch_norms(averaged), batch_norms(raw), strict=True):
        own.moving_mean.assign(copied.moving_mean)
        own.moving_variance.assign(copied.moving_variance)
    rows["averaged G, the raw G's moving statistics (a weight copy)"] = metrics(averaged)
    rows["raw G"] = metrics(raw)

    step = int(path.rsplit("-", 1)[1])
    print(f"{run.root}, step {step}, train.ema={cfg.train.ema}, {num_samples} samples, {plan.extractor} features")
    names = list(next(iter(rows.values())))
    print(f"{'generator':<60}" + "".join(f"{name:>12}" for name in names))
    for label, row in rows.items():
        print(f"{label:<60}" + "".join(f"{row[name]:>12.4g}" for name in names))
    print(json.dumps({"step": step, "rows": rows}))


if __name__ == "__main__":
    main()

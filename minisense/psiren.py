"""p-SIREN runs (Algorithm 1, Section 4.1): settings per dataset, a run folder, and the binary
backprop line SENSE is compared with.

The algorithm itself, its four steps and the one training loop, is
``minisense.textbook.psiren``; this module loads the data, builds the network in the tier the
user picked (``engine``: the textbook ``Network`` or its fast twin), runs the algorithm and
writes the checkpoint and metrics.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from minisense import checkpoint, files
from minisense.data import (
    DATASETS,
    architecture_for,
    check_class_weights,
    classes_of,
    frame_meta,
    load_dataset,
    majority_baseline,
)
from minisense.errors import MinisenseError
from minisense.network import Network, build_network, check_engine
from minisense.textbook.layers import SGD
from minisense.textbook.network import fix_thresholds
from minisense.textbook.psiren import (
    GAIN_GRAD_SCALES,
    PRUNE_EVERY,
    PRUNING,
    STEPS,
    PsirenConfig,
    _no_progress,
    dense_step,
    sgd_step,
    train_step,
)
from minisense.textbook.psiren import psiren as algorithm1

__all__ = ["GAIN_GRAD_SCALES", "PRUNE_EVERY", "PRUNING", "STEPS", "PsirenConfig", "config_for",
           "dense_step", "psiren", "same_config", "train", "binary_backprop",
           "continue_binary"]

# Learning rates by dataset where the defaults do not suit. On the car, lr 0.05 learns nothing
# in step 1 (validation stays at the majority class). lr_binary 0.002 is the rate the car's
# committed runs were made with, and a sweep resumes a run only under its own config (the results
# book compares it with 0.01).
DATASET_RATES = {"carracing": {"lr": 0.01, "lr_binary": 0.002}}


# Options added after runs were already saved, with the behaviour those runs had; a saved
# config without one of them means this value (``same_config`` reads old runs by it).
ADDED_OPTIONS = {"prune_every": "epoch", "gain_grad_scale": "none", "class_weights": None}


def same_config(saved: dict, config: PsirenConfig) -> bool:
    """Whether a run saved with config ``saved`` (a dict from metrics.json) is one of ``config``."""
    saved = {**ADDED_OPTIONS, **saved}
    if saved["class_weights"] is not None:                   # JSON gave back a list
        saved["class_weights"] = tuple(saved["class_weights"])
    return saved == asdict(config)


def config_for(dataset: str, **options) -> PsirenConfig:
    """The default p-SIREN configuration for ``dataset``, with ``options`` (those not None) on
    top: ``config_for("carracing", sparsity=90, lr=None)`` uses the car's learning rates."""
    given = {key: value for key, value in options.items() if value is not None}
    return PsirenConfig(**{**DATASET_RATES.get(dataset, {}), **given})


def psiren(dataset, config: PsirenConfig | None = None, *, architecture: str | None = None,
           engine: str = "fast", progress=_no_progress, log=lambda line: None,
           step1=None) -> tuple[Network, list[dict]]:
    """Run Algorithm 1 (``minisense.textbook.psiren.psiren``) on ``dataset`` (a
    ``minisense.data.Dataset``) with a fresh network of the ``engine``'s tier; nothing is written.
    Exported as ``minisense.train_psiren``.

    ``config`` defaults to the dataset's (:func:`config_for`); ``architecture`` to the dataset's
    (``car`` for CarRacing; ``mnist`` for digits, MNIST, Fashion-MNIST and a dataset of your own
    of 28x28 images). Returns the binary
    network and its history (a record per epoch and per finished step). ``progress(iterable,
    label=...)`` wraps the batches (e.g. ``click.progressbar``); ``log`` receives one line per
    epoch and step. ``step1``, a function with ``dense_step``'s arguments, stands in for step 1:
    the sparsity sweeps pass one that shares step 1 between runs that differ only after it
    (``experiments.shared_step1``).
    """
    config = config_for(dataset.name) if config is None else config
    config.validate()
    rng = np.random.default_rng(config.seed)        # initial weights, then the batches' order
    if architecture is None:
        architecture = architecture_for(dataset.name) if dataset.name in DATASETS else "mnist"
    net = build_network(architecture, rng, engine)
    if net.num_classes != dataset.num_classes:
        raise MinisenseError(f"dataset {dataset.name} has {dataset.num_classes} classes but the "
                             f"{net.architecture} network has {net.num_classes} outputs")
    return net, algorithm1(net, dataset, config, rng, progress, log, step1)


def train(dataset_name: str, config: PsirenConfig, out, data_dir=None, progress=_no_progress,
          log=lambda line: None, command: list[str] | None = None, step1=None,
          force: bool = False, engine: str = "fast") -> dict:
    """Algorithm 1 end to end: load the data, run p-SIREN, save the checkpoint and metrics.

    Writes ``out/model.npz`` + ``out/model.json`` (``minisense.checkpoint``) and
    ``out/metrics.json`` (the history); returns the summary that metrics.json holds.
    ``step1`` stands in for step 1, as in :func:`psiren`; ``engine`` is the tier that runs it
    (the same folder either way). A run already in ``out`` is replaced only with ``force``; the
    folder is locked while training.
    """
    config.validate()                      # before a possibly long download
    check_class_weights(config.class_weights, classes_of(dataset_name), dataset_name)
    check_engine(engine)
    npz_path, json_path = checkpoint.checkpoint_paths(out)
    files.check_run_folder(npz_path.parent, "trained run")       # even with force
    held = [p for p in (npz_path, json_path, npz_path.parent / "metrics.json") if p.exists()]
    if held and not force:
        raise MinisenseError(f"{npz_path.parent} already holds a trained run ({held[0].name}); "
                             "pass --force to replace it, or choose another --out")
    with files.folder_lock(npz_path.parent):
        return _train(dataset_name, config, out, data_dir, progress, log, command, step1, engine)


def _train(dataset_name, config, out, data_dir, progress, log, command, step1, engine) -> dict:
    started = time.perf_counter()
    data = load_dataset(dataset_name, data_dir)
    log(f"dataset {data.name} from {data.source}: {len(data.train.labels)} train, "
        f"{len(data.validation.labels)} validation, {len(data.test.labels)} test images; "
        f"{engine} engine")
    net, history = psiren(data, config, architecture=architecture_for(dataset_name),
                          engine=engine, progress=progress, log=log, step1=step1)
    steps = {r["step"]: {"validation_accuracy": r["validation_accuracy"],
                         "test_accuracy": r["test_accuracy"]} for r in history if r.get("done")}
    summary = {
        "dataset": data.name, "requested_sparsity": config.sparsity, "pruning": config.pruning,
        "seed": config.seed, "config": asdict(config), "engine": engine,
        "accuracy": {"validation": steps["binary"]["validation_accuracy"],
                     "test": steps["binary"]["test_accuracy"]},
        "majority_baseline": {"validation": majority_baseline(data.validation),
                              "test": majority_baseline(data.test)},
        "steps": steps, "command": command, "wall_seconds": time.perf_counter() - started,
        "dense_read_from": history[0].get("reused_from"), **frame_meta(data),
    }
    npz_path = checkpoint.save(net, out, summary, force=True)     # (train checked --force)
    summary.update(checkpoint=str(npz_path), actual_sparsity=checkpoint.sparsity_percent(net),
                   family=net.family())
    files.atomic_write_json(checkpoint.checkpoint_paths(out)[0].parent / "metrics.json",
                            {**summary, "history": history})
    return summary


def binary_backprop(net: Network, dataset, budget_seconds: float, lr: float = 0.01,
                    batch_size: int = 100, seed: int = 0, evaluate_every: int = 50,
                    max_batches: int = 0, on_record=lambda record: None) -> list[dict]:
    """Algorithm 1's step 4 alone, from a given binary network: the paper's comparison line for
    SENSE from a random init (Figs. 6-8, "backpropagation on the initial sparse, binary network").

    Straight-through fine-tuning with the mask fixed, latent weights starting at the real weights
    g_l * sign(w), for ``budget_seconds`` (or ``max_batches``), by the training loop of
    Algorithm 1 (``sgd_step``). Every ``evaluate_every`` batches, a record of batches, seconds and
    exact validation and test accuracy.
    """
    _latent_from_real(net)
    optimizer = SGD(list(net.weighted.values()), lr, momentum=0.9)
    rng = np.random.default_rng(seed)
    train, records, batches, seconds = dataset.train, [], 0, 0.0

    def record():
        r = {"batches": batches, "seconds": seconds,
             "validation_accuracy": net.accuracy(dataset.validation.images,
                                                 dataset.validation.labels),
             "test_accuracy": net.accuracy(dataset.test.images, dataset.test.labels)}
        records.append(r)
        on_record(r)

    record()
    with net.batches():         # the fast network's threads held for the whole run
        while seconds < budget_seconds and not (max_batches and batches >= max_batches):
            started = time.perf_counter()
            order = rng.permutation(len(train.images))
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                sgd_step(net, optimizer, train.images[batch], train.labels[batch])
                batches += 1
                if batches % evaluate_every == 0 or batches == max_batches:
                    seconds += time.perf_counter() - started
                    record()
                    started = time.perf_counter()
                    if seconds >= budget_seconds or batches == max_batches:
                        return records
            seconds += time.perf_counter() - started
    return records


def continue_binary(net: Network, dataset, config: PsirenConfig, rng: np.random.Generator,
                    progress=_no_progress, log=lambda line: None) -> list[dict]:
    """Algorithm 1's step 4 again, from a binary network already trained: the latent weights
    start at the real weights g_l * sign(w), the mask fixed, and ``config.epochs["binary"]``
    epochs follow as in step 4 (rate ``lr_binary`` cosine-decayed, gains learned when
    ``learn_gains``, thresholds rounded after every epoch). DAgger's ``psiren-step4`` trainer
    fine-tunes each round's network this way on the grown aggregate, instead of running all of
    Algorithm 1 from scratch. Returns step 4's history; ``net`` is changed in place."""
    config.validate()
    _latent_from_real(net)
    for layer in net.weighted.values():
        layer.learn_gain = config.learn_gains
    return train_step(net, dataset, config, rng, "binary", config.lr_binary, progress, log,
                      after_epoch=lambda: fix_thresholds(net))


def _latent_from_real(net: Network) -> None:
    """Latent weights of a binary network for straight-through fine-tuning: its real weights
    g_l * sign(w), so a sign flips once a gradient step crosses zero at the gain's scale."""
    for layer in net.weighted.values():
        layer.weight = (layer.gain * layer.effective_weight()).astype(np.float32)

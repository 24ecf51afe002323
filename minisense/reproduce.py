"""Every figure of the paper, regenerated: ``run("fig3")`` is ``minisense reproduce fig3``.

``FIGURES`` is the registry: for each figure its kind of experiment, the paper's dataset, its
caption (the PNG's title), what the paper reports, the settings of a real run and the smaller
ones of ``quick`` (the same code on tiny budgets: scikit-learn's digits instead of MNIST and
Fashion-MNIST, a few neighbours, steps and epochs). The kinds:

=========== ======================================================================== ==========
kind        experiment                                                               figures
=========== ======================================================================== ==========
sparsity    p-SIREN (Algorithm 1) at every sparsity level x 3 seeds, test accuracy   2a 2b 12
histograms  test accuracy of sampled first neighbours per layer (Section 4.2)        3 9
maps        first neighbours' weight vectors by t-SNE / LLE / Isomap, accuracy as z  4 10 11
climb       SENSE (Algorithm 2) from the 90% p-SIREN network, 6 neighbourhoods      5 5short
search      SENSE from a random network (Section 4.4), and backprop from the same   6 7 8a 8b
=========== ======================================================================== ==========

A figure writes ``<out>/<figure>/<figure>.png`` and ``<figure>.json``: every plotted number, the
settings, the exact command and seed, and a one-line summary. Settings the paper does not state,
and the real-run budgets chosen for a 2-core machine, are listed with their reasons in README.md.
"""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field

import numpy as np

from minisense import __version__, data, experiments, families, files, sense, sweep
from minisense.errors import MinisenseError

MNIST_LEVELS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 85, 87, 89, 91, 93, 95)   # Fig. 2a
CAR_LEVELS = MNIST_LEVELS + (96, 97, 98, 99)                                    # Fig. 2b
QUICK_EPOCHS = {"dense": 1, "prune": 1, "sparse": 0, "binary": 1}
# Few epochs per run, so that a figure's 45 runs fit in a few hours on 2 cores (the results book
# gives their times).
SWEEP_EPOCHS = {"dense": 3, "prune": 2, "sparse": 1, "binary": 2}
CAR = "carracing"
# fig5short's start: p-SIREN with one pruning epoch from the random initialisation, a small
# learning rate and no fine-tuning, about as weak as the paper's Fig. 5 network must have been
# (it climbed 3 points).
SHORT_PSIREN = {"epochs": {"dense": 0, "prune": 1, "sparse": 0, "binary": 0}, "lr": 0.005}
# Fig. 8b: screened SENSE with fitness on the whole training split, layer1.0 at odds 1/20 of
# layer2.0 (its neighbours cost far more) and confirmation in 4 stages, which makes a layer1.0
# step cheaper (the results book, screened SENSE); 25,000 steps fit in an hour on one core.
FIG8B_SENSE = {"train_images": 0, "screen_images": 2560, "layer_weights": {"layer1.0": 0.05},
               "confirm": 5, "confirm_stages": 4}
FIG8B_STEPS = 25_000
# ens-car's chains: layer2.0, fc1 and fc2 screened on 2,560 frames, 5 confirmed, at even odds, as
# its committed results were made (the car's search defaults differ).
ENS_CAR_SENSE = {"screen_by_layer": {"layer1.0": 640}, "layer_weights": {}, "confirm": 5}


@dataclass(frozen=True)
class Figure:
    name: str
    kind: str
    dataset: str            # the paper's dataset
    caption: str            # the paper's caption, shortened where it is garbled
    paper: str              # what the paper reports
    options: dict = field(default_factory=dict)    # a real run
    quick: dict = field(default_factory=dict)      # overrides for --quick


def _sparsity(name, dataset, caption, paper, levels=MNIST_LEVELS):
    return Figure(name, "sparsity", dataset, caption, paper,
                  {"levels": list(levels), "seeds": 3, "epochs": SWEEP_EPOCHS},
                  {"levels": [0, 90], "seeds": 2, "epochs": QUICK_EPOCHS})


def _histograms(name, dataset, caption, paper):
    return Figure(name, "histograms", dataset, caption, paper,
                  {"layers": "all", "neighbours": 3000, "images": 0, "chunk": 250},
                  {"neighbours": 40, "chunk": 20})


def _maps(name, dataset, caption, paper, layers, embeddings, views):
    return Figure(name, "maps", dataset, caption, paper,
                  {"layers": layers, "neighbours": 1000, "images": 0, "chunk": 250,
                   "embeddings": embeddings, "views": views},
                  {"neighbours": 40, "chunk": 20})


def _search(name, dataset, caption, paper, sparsity, schedule, steps_per_layer, max_steps,
            layers=(), **sense_options):
    """A search figure; ``sense_options`` are further ``SenseConfig`` fields (unscreened on
    10,000 training images unless they say otherwise)."""
    return Figure(name, "search", dataset, caption, paper,
                  {"sparsity": sparsity, "schedule": schedule, "steps_per_layer": steps_per_layer,
                   "repeats": 3, "layers": list(layers), "neighbours": 100, "fitness": "margin",
                   "max_steps": max_steps, "train_images": 10_000, "screen_images": 0,
                   "backprop_epochs": 3, "backprop_evaluate_every": 100, **sense_options},
                  {"steps_per_layer": 2, "repeats": 1, "neighbours": 20,
                   "max_steps": min(max_steps, 12), "train_images": 0, "backprop_epochs": 1,
                   "backprop_evaluate_every": 4})


def _family(name, dataset, caption, start, chains, max_steps, drive_episodes=0, **sense_options):
    """An ensemble-of-a-family figure (the paper's future work): ``chains`` screened SENSE
    chains of ``max_steps`` steps from ``start`` ("random": 80% sparse, or "psiren": the 90%
    p-SIREN network), the ensemble against its members, and damage curves."""
    return Figure(name, "family", dataset, caption, "future work: \"utilizing the network "
                  "families in ensembles would lead to robust performance\" (no numbers)",
                  {"start": start, "sparsity": 80, "chains": chains, "max_steps": max_steps,
                   "damage": families.DAMAGE, "damage_seeds": 3,
                   "drive_episodes": drive_episodes, **sense_options},
                  {"chains": 3, "max_steps": 12, "neighbours": 20, "train_images": 0,
                   "damage": {"swaps": [0, 10, 100], "delete": [0, 0.1, 0.3]},
                   "damage_seeds": 2, "drive_episodes": 0})


FIGURES = {f.name: f for f in [
    _sparsity("fig2a", "mnist", "Fig. 2a: high-performance binary networks of variable "
              "sparsities, a static task, MNIST classification",
              "high test accuracy at all 15 sparsity levels, n = 3 networks each (no numbers "
              "in the text)"),
    _sparsity("fig2b", CAR, "Fig. 2b: high-performance binary networks of variable sparsities, "
              "a dynamic task, car-racing imitation learning",
              "19 sparsity levels up to 99%, n = 3 (no numbers in the text)", CAR_LEVELS),
    _sparsity("fig12", "fashion-mnist", "Fig. 12: high-performance binary networks of variable "
              "sparsities on static task, Fashion MNIST", "no numbers in the text"),
    _histograms("fig3", "mnist", "Fig. 3: MNIST: first family test accuracies compared to "
                "original network accuracy",
                "deeper layers (2.0, fc) have a larger share of better first neighbours than "
                "layer 1.0"),
    _histograms("fig9", CAR, "Fig. 9: Car racing: first family test accuracies compared to "
                "original network accuracy", "as Fig. 3, on the car task"),
    _maps("fig4", "mnist", "Fig. 4: first neighbourhood families of a 90% sparse binary MNIST "
          "network, t-SNE, with test accuracy; blue dot: the original network",
          "local clusters of first neighbours (4d, fc), each with a large range of accuracy",
          ["layer1.0", "fc"], ["tsne"], ["side", "top"]),
    _maps("fig10", CAR, "Fig. 10: first neighbourhood families of a 90% sparse binary car-racing "
          "network, t-SNE, with test accuracy; blue dot: the original network",
          "fc perturbations; clusters with a large range of accuracy", "last", ["tsne"],
          ["side", "top"]),
    _maps("fig11", "mnist", "Fig. 11: first neighbourhood families of a 90% sparse binary MNIST "
          "network by LLE and Isomap, with test accuracy",
          "(a, b) layer 1.0 by LLE and Isomap, (c, d) fc by LLE and Isomap",
          ["layer1.0", "fc"], ["lle", "isomap"], ["oblique"]),
    Figure("fig5", "climb", "mnist", "Fig. 5: a 90% MNIST network climbing in accuracy over 6 "
           "neighbourhoods; black: best neighbour of each, red: the path",
           "climbs 3% in accuracy over 6 neighbourhoods",
           {"moves": 6, "neighbours": 200, "max_steps": 60, "fitness": "accuracy",
            "schedule": "random", "steps_per_layer": 1, "train_images": 10_000,
            "screen_images": 0},
           {"neighbours": 20, "max_steps": 30, "train_images": 0}),
    Figure("fig5short", "climb", "mnist", "Fig. 5 from a weaker start: a short-budget 90% MNIST "
           "network climbing over 6 neighbourhoods; black: best neighbour of each, red: the path",
           "climbs 3% in accuracy over 6 neighbourhoods",
           {"moves": 6, "neighbours": 200, "max_steps": 60, "fitness": "accuracy",
            "schedule": "random", "steps_per_layer": 1, "train_images": 10_000,
            "screen_images": 0, "start": SHORT_PSIREN},
           # digits' few batches would prune a whole layer away globally: prune per layer
           {"neighbours": 20, "max_steps": 30, "train_images": 0,
            "start": {**SHORT_PSIREN, "pruning": "layer"}}),
    _search("fig6", "mnist", "Fig. 6: SENSE from a random 90% sparse binary network, "
            "alternating layers 1.0 / 2.0 / fc, 10 steps each, 3 times",
            "validation 12.34 -> 33.27%, test 10.94 -> 25.68%; backprop test 10.94 -> 9.81%",
            90, "alternate", 10, 90),
    _search("fig7", "mnist", "Fig. 7: SENSE from a random 90% sparse binary network, "
            "fc layer only", "validation 12.34 -> 35.87%, test 10.94 -> 27.73%; backprop test "
            "10.94 -> 9.79%", 90, "fc", 10, 90),
    _search("fig8a", "mnist", "Fig. 8a: SENSE from a random 80% sparse binary MNIST network, a "
            "random layer for 3 neighbourhoods at a time",
            "validation 13.45 -> 69.5%, test 12.6 -> 63.4%", 80, "random", 3, 600),
    _search("fig8b", CAR, "Fig. 8b: SENSE from a random 80% sparse binary car-racing network, "
            "layer 1 or layer 2 at random for 3 neighbourhoods at a time",
            "validation 19.8 -> 75.17%, test 19.0 -> 74.0%", 80, "random", 3, FIG8B_STEPS,
            layers=("layer1.0", "layer2.0"), **FIG8B_SENSE),
    _family("ens-mnist80", "mnist", "Ensembles of a family: 8 SENSE chains from one random 80% "
            "sparse binary MNIST network", "random", 8, 6000),
    _family("ens-mnist90", "mnist", "Ensembles of a family: 8 SENSE chains from the 90% "
            "p-SIREN MNIST network", "psiren", 8, 1500),
    Figure("transfer", "transfer", "fashion-mnist", "Transfer: SENSE on Fashion-MNIST from the "
           "90% MNIST p-SIREN network against the same family at random places",
           "future work: \"assessing transfer learning\" (no numbers)",
           {"source": "mnist", "max_steps": 3000},
           {"max_steps": 12, "neighbours": 20, "train_images": 0}),
    _family("ens-car", CAR, "Ensembles of a family: 4 SENSE chains from one random 80% sparse "
            "binary car-racing network", "random", 4, 20_000, drive_episodes=10,
            **ENS_CAR_SENSE),
]}
KINDS = {**experiments.KINDS, **families.KINDS}


def default_out(quick: bool) -> pathlib.Path:
    """Real runs go to runs/figures/, quick ones to runs/quick/: never into the committed
    reference_outputs/ unless that is asked for by name."""
    return pathlib.Path("runs/quick" if quick else "runs/figures")


def run(figure: str, quick: bool = False, out=None, data_dir=None, checkpoint_path=None,
        seed: int = 0, jobs: int = 1, backend: str = "joblib", scheduler: str | None = None,
        dataset: str | None = None, progress=sweep.no_progress, log=lambda line: None,
        force: bool = False) -> dict:
    """Run one figure's experiment, write its PNG and JSON into ``<out>/<figure>/``; returns the
    JSON's content (``summary`` is the one-line result).

    ``dataset`` replaces the paper's dataset (e.g. digits, to try a car figure's code without the
    car recording); ``--quick`` already uses digits for the MNIST and Fashion-MNIST figures.
    A folder that already holds the figure's results is left alone unless ``force``.
    """
    if figure not in FIGURES:
        raise MinisenseError(f"unknown figure {figure!r}; choose one of {', '.join(FIGURES)}")
    sweep.check(jobs, backend, scheduler)
    fig = FIGURES[figure]
    if checkpoint_path is not None and not takes_checkpoint(fig):
        raise MinisenseError(f"{figure} starts from no trained network (it is a {fig.kind} "
                             "figure): --checkpoint would have no effect; drop it")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= sense.MAX_SEED:
        raise MinisenseError(f"seed {seed!r} is outside 0..{sense.MAX_SEED}; give --seed in "
                             "that range")
    usual = "digits" if quick and fig.dataset != CAR else fig.dataset
    dataset = dataset or usual
    _require(fig, dataset, data_dir)
    options = {**fig.options, **(fig.quick if quick else {})}
    out = pathlib.Path(out) if out is not None else default_out(quick)
    folder = out / figure
    if (folder / f"{figure}.json").exists() and not force:
        raise MinisenseError(f"{folder} already holds {figure}'s results; pass --force to "
                             "replace them, or choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise files.write_error(folder, e) from None
    started = time.perf_counter()
    context = dict(fig=fig, dataset=dataset, options=options, folder=folder, out=out,
                   quick=quick, data_dir=data_dir, checkpoint_path=checkpoint_path, seed=seed,
                   parallel=dict(jobs=jobs, backend=backend, scheduler=scheduler), force=force,
                   progress=progress, log=log,
                   title=fig.caption + (f"  [{dataset}{', quick' if quick else ''}]"
                                        if quick or dataset != fig.dataset else ""))
    results, summary = KINDS[fig.kind](**context)
    command = ["minisense", "reproduce", figure] + (["--quick"] if quick else []) + \
        ["--seed", str(seed), "--out", str(out)] + \
        (["--dataset", dataset] if dataset != usual else []) + \
        (["--data-dir", str(data_dir)] if data_dir else []) + \
        (["--checkpoint", str(checkpoint_path)] if checkpoint_path else []) + \
        (["--jobs", str(jobs)] if jobs != 1 else []) + \
        (["--backend", backend, "--scheduler", scheduler] if backend == "dask" else []) + \
        (["--force"] if force else [])
    record = {"figure": figure, "caption": fig.caption, "paper_reports": fig.paper,
              "summary": f"{figure}: {summary}", "quick": quick, "dataset": dataset,
              "seed": seed, "command": " ".join(command), "settings": options,
              "folder": str(folder), "png": f"{figure}.png", "results": _plain(results),
              "wall_seconds": time.perf_counter() - started, "minisense_version": __version__}
    files.atomic_write_json(folder / f"{figure}.json", record)
    return record


def takes_checkpoint(fig: Figure) -> bool:
    """Whether the figure starts from the 90% p-SIREN network that --checkpoint replaces."""
    return fig.kind in ("histograms", "maps", "climb", "transfer") or (
        fig.kind == "family" and fig.options.get("start") == "psiren")


def _require(fig: Figure, dataset: str, data_dir) -> None:
    """The car figures need a recorded car-racing dataset: a clear one-line error without it."""
    if dataset != CAR:
        return
    hint = "record one with 'minisense car record'"
    try:
        data.split_of(dataset, data_dir, "test", 1)
    except MinisenseError as e:
        message = str(e).rstrip(".")
        raise MinisenseError(f"{fig.name} needs the recorded car-racing dataset: {message}"
                             + ("" if "car record" in message else f"; {hint}")) from None


def _plain(obj):
    """JSON-ready: numpy arrays and scalars as lists and Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj

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
climb       SENSE (Algorithm 2) from the 90% p-SIREN network, 6 neighbourhoods      5
search      SENSE from a random network (Section 4.4), and backprop from the same   6 7 8a 8b
=========== ======================================================================== ==========

A figure writes ``<out>/<figure>/<figure>.png`` and ``<figure>.json``: every plotted number, the
settings, the exact command and seed, and a one-line summary. Settings the paper does not state,
and the real-run budgets chosen for a 2-core machine, are listed with their reasons in README.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import shutil
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from minisense import __version__, checkpoint, neighbourhood, plots, psiren, sense, sweep
from minisense.errors import MinisenseError

MNIST_LEVELS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 85, 87, 89, 91, 93, 95)   # Fig. 2a
CAR_LEVELS = MNIST_LEVELS + (96, 97, 98, 99)                                    # Fig. 2b
QUICK_EPOCHS = {"dense": 1, "prune": 1, "sparse": 0, "binary": 1}
SWEEP_EPOCHS = {"dense": 3, "prune": 2, "sparse": 1, "binary": 2}   # 45 runs in ~2 h on 2 cores
CAR = "carracing"
NO_TIME_LIMIT = 1e9        # seconds: the figures' searches stop by step count, reproducibly


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
            layers=()):
    return Figure(name, "search", dataset, caption, paper,
                  {"sparsity": sparsity, "schedule": schedule, "steps_per_layer": steps_per_layer,
                   "repeats": 3, "layers": list(layers), "neighbours": 100, "fitness": "margin",
                   "max_steps": max_steps, "train_images": 10_000, "backprop_epochs": 3,
                   "backprop_evaluate_every": 100},
                  {"steps_per_layer": 2, "repeats": 1, "neighbours": 20,
                   "max_steps": min(max_steps, 12), "train_images": 0, "backprop_epochs": 1,
                   "backprop_evaluate_every": 4})


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
            "schedule": "random", "steps_per_layer": 1, "train_images": 10_000},
           {"neighbours": 20, "max_steps": 30, "train_images": 0}),
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
            "validation 19.8 -> 75.17%, test 19.0 -> 74.0%", 80, "random", 3, 600,
            layers=("layer1.0", "layer2.0")),
]}
VIEWS = {"side": (0, -90), "top": (90, -90), "oblique": (25, -60)}   # (elevation, azimuth)
EMBEDDING_LABELS = {"tsne": "t-SNE", "lle": "LLE", "isomap": "Isomap"}


def _no_progress(iterable, label=""):
    return contextlib.nullcontext(iterable)


def default_out(quick: bool) -> pathlib.Path:
    """Real runs go to reference_outputs/, quick ones to runs/quick/ (never over real results)."""
    return pathlib.Path("runs/quick" if quick else "reference_outputs")


def run(figure: str, quick: bool = False, out=None, data_dir=None, checkpoint_path=None,
        seed: int = 0, jobs: int = 1, backend: str = "joblib", scheduler: str | None = None,
        dataset: str | None = None, progress=_no_progress, log=lambda line: None) -> dict:
    """Run one figure's experiment, write its PNG and JSON into ``<out>/<figure>/``; returns the
    JSON's content (``summary`` is the one-line result).

    ``dataset`` replaces the paper's dataset (e.g. digits, to try a car figure's code without the
    car recording); ``--quick`` already uses digits for the MNIST and Fashion-MNIST figures.
    """
    if figure not in FIGURES:
        raise MinisenseError(f"unknown figure {figure!r}; choose one of {', '.join(FIGURES)}")
    sweep.check(jobs, backend, scheduler)
    fig = FIGURES[figure]
    usual = "digits" if quick and fig.dataset != CAR else fig.dataset
    dataset = dataset or usual
    _require(fig, dataset, data_dir)
    options = {**fig.options, **(fig.quick if quick else {})}
    out = pathlib.Path(out) if out is not None else default_out(quick)
    folder = out / figure
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    context = dict(fig=fig, dataset=dataset, options=options, folder=folder, out=out,
                   quick=quick, data_dir=data_dir, checkpoint_path=checkpoint_path, seed=seed,
                   parallel=dict(jobs=jobs, backend=backend, scheduler=scheduler),
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
        (["--backend", backend, "--scheduler", scheduler] if backend == "dask" else [])
    record = {"figure": figure, "caption": fig.caption, "paper_reports": fig.paper,
              "summary": f"{figure}: {summary}", "quick": quick, "dataset": dataset,
              "seed": seed, "command": " ".join(command), "settings": options,
              "folder": str(folder), "png": f"{figure}.png", "results": _plain(results),
              "wall_seconds": time.perf_counter() - started, "minisense_version": __version__}
    checkpoint.atomic_write_json(folder / f"{figure}.json", record)
    return record


def _require(fig: Figure, dataset: str, data_dir) -> None:
    """The car figures need a recorded car-racing dataset: a clear one-line error without it."""
    from minisense import data

    if dataset != CAR:
        return
    hint = "record one with 'minisense car record'"
    if CAR not in data.DATASETS:
        raise MinisenseError(f"{fig.name} needs the recorded car-racing dataset '{CAR}', which "
                             f"this minisense cannot load yet; {hint} (the car-racing commands) "
                             "and pass its folder with --data-dir")
    try:
        neighbourhood.split_of(dataset, data_dir, "test", 1)
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


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


# -- Figs. 2 and 12: the sparsity sweep ------------------------------------------------------------

def psiren_at(dataset: str, sparsity: float, seed: int, epochs: dict, data_dir, out: str) -> dict:
    """One p-SIREN run (a sweep task) into ``out``; a finished run with the same settings there
    is read back instead of trained again, so a killed sweep resumes where it stopped."""
    config = psiren.PsirenConfig(sparsity=sparsity, epochs=dict(epochs), seed=seed)
    metrics = pathlib.Path(out) / "metrics.json"
    reused = metrics.is_file() and json.loads(metrics.read_text()).get("config") == asdict(config)
    summary = json.loads(metrics.read_text()) if reused else psiren.train(dataset, config, out,
                                                                          data_dir)
    return {"sparsity": sparsity, "seed": seed, "test_accuracy": summary["accuracy"]["test"],
            "validation_accuracy": summary["accuracy"]["validation"],
            "actual_sparsity": summary["actual_sparsity"],
            "wall_seconds": summary["wall_seconds"], "reused": reused}


def _sparsity_sweep(fig, dataset, options, folder, out, seed, data_dir, parallel, progress, log,
                    title, **_):
    levels, seeds = options["levels"], [seed + i for i in range(options["seeds"])]
    # Runs live in <out>/psiren/, named by everything that defines them: a figure that needs the
    # same run (fig2a and fig12 in --quick both train on digits) reads it back.
    epochs = "-".join(str(options["epochs"][step]) for step in psiren.STEPS)
    tasks = [dict(dataset=dataset, sparsity=p, seed=s, epochs=options["epochs"],
                  data_dir=None if data_dir is None else str(data_dir),
                  out=str(out / "psiren" / f"{dataset}-p{p:g}-s{s}-e{epochs}"))
             for p in levels for s in seeds]
    log(f"{fig.name}: {len(tasks)} p-SIREN runs ({len(levels)} sparsity levels x {len(seeds)} "
        f"seeds) on {dataset}, epochs {options['epochs']}")
    runs = sweep.run(psiren_at, tasks, **parallel, progress=progress, label="p-SIREN runs")
    accuracy = np.array([r["test_accuracy"] for r in runs]).reshape(len(levels), len(seeds))
    plots.sparsity_curve(folder / f"{fig.name}.png", title, levels, accuracy.tolist(), seeds)
    at = 90 if 90 in levels else levels[len(levels) // 2]
    row = accuracy[levels.index(at)]
    mean = accuracy.mean(axis=1)
    summary = (f"test accuracy at {at}% sparsity {_pct(row.mean())} (mean of {len(seeds)} seeds, "
               f"range {_pct(row.min())}-{_pct(row.max())}); mean from {_pct(mean[0])} at "
               f"{levels[0]}% to {_pct(mean[-1])} at {levels[-1]}%")
    return {"sparsity": levels, "seeds": seeds, "test_accuracy": accuracy,
            "mean": mean, "min": accuracy.min(axis=1), "max": accuracy.max(axis=1),
            "std": accuracy.std(axis=1), "runs": runs}, summary


# -- the 90% network of Figs. 3-5 and 9-11 -------------------------------------------------------

def network90(dataset, out, quick, data_dir, checkpoint_path, seed, progress, log):
    """(network, checkpoint path, its metadata): ``checkpoint_path``, else
    ``<out>/psiren/<dataset>-p90`` (``-quick``), trained there by p-SIREN when missing."""
    from minisense.data import architecture_for

    path = pathlib.Path(checkpoint_path) if checkpoint_path else \
        out / "psiren" / f"{dataset}-p90{'-quick' if quick else ''}"
    if checkpoint_path is None and not checkpoint.checkpoint_paths(path)[0].is_file():
        config = psiren.PsirenConfig(sparsity=90, seed=seed,
                                     **({"epochs": {"dense": 2, "prune": 1, "sparse": 1,
                                                    "binary": 1}} if quick else {}))
        log(f"no 90% {dataset} network at {path}: training one with p-SIREN (Algorithm 1)")
        psiren.train(dataset, config, path, data_dir, progress=progress, log=log)
    net, meta = checkpoint.load(path, architecture=architecture_for(dataset))
    if meta.get("dataset") not in (None, dataset):
        raise MinisenseError(f"checkpoint {path} was trained on {meta.get('dataset')}, not "
                             f"{dataset}; pass a {dataset} checkpoint with --checkpoint")
    return net, path, meta


def _net_info(path, meta) -> dict:
    return {"checkpoint": str(path), "sparsity": meta.get("actual_sparsity"),
            "seed": meta.get("seed"), "family": meta.get("family")}


# -- Figs. 3 and 9: first-neighbour histograms ---------------------------------------------------

def _histograms_figure(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed,
                       parallel, progress, log, title, **_):
    net, path, meta = network90(dataset, out, quick, data_dir, checkpoint_path, seed, progress,
                                log)
    layers = list(net.weighted) if options["layers"] == "all" else options["layers"]
    survey = neighbourhood.survey(net, dataset, layers, options["neighbours"], seed, data_dir,
                                  "test", options["images"], options["chunk"], **parallel,
                                  progress=progress)
    for d in survey.values():
        acc, original = d["accuracy"], d["original_accuracy"]
        d.update(better_fraction=float((acc > original).mean()),
                 equal_fraction=float((acc == original).mean()),
                 worse_fraction=float((acc < original).mean()))
        d["counts"], d["edges"] = np.histogram(acc, bins=min(40, max(5, len(acc) // 10)))
    plots.neighbour_histograms(folder / f"{fig.name}.png", title, survey)
    original = next(iter(survey.values()))["original_accuracy"]
    summary = f"original test {_pct(original)}; neighbours better: " + ", ".join(
        f"{name} {100 * d['better_fraction']:.1f}% of {len(d['accuracy'])}"
        for name, d in survey.items())
    return {"network": _net_info(path, meta), "layers": survey}, summary


# -- Figs. 4, 10 and 11: neighbourhood maps ------------------------------------------------------

def _maps_figure(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed,
                 parallel, progress, log, title, **_):
    net, path, meta = network90(dataset, out, quick, data_dir, checkpoint_path, seed, progress,
                                log)
    layers = [list(net.weighted)[-1]] if options["layers"] == "last" else options["layers"]
    survey = neighbourhood.survey(net, dataset, layers, options["neighbours"], seed, data_dir,
                                  "test", options["images"], options["chunk"], **parallel,
                                  progress=progress)
    weights, panels = net.ternary_weights(), []
    for name, d in survey.items():
        rows = [[]] + [[(s, t)] for s, t in zip(d["src"].tolist(), d["dst"].tolist())]
        vectors = neighbourhood.weight_vectors(weights[name].reshape(-1), rows)
        d["z"] = np.concatenate([[d["original_accuracy"]], d["accuracy"]])
        d["embeddings"] = {}
        for method in options["embeddings"]:
            log(f"{fig.name}: {EMBEDDING_LABELS[method]} of {len(rows)} networks (layer {name})")
            xy = neighbourhood.embed(vectors, method, seed)
            d["embeddings"][method] = {"x": xy[:, 0], "y": xy[:, 1]}
            for view in options["views"]:
                elev, azim = VIEWS[view]
                panels.append({"title": f"{EMBEDDING_LABELS[method]}, {view} view: first "
                               f"neighbours from {name} perturbations",
                               "x": xy[:, 0], "y": xy[:, 1], "z": d["z"], "original": 0,
                               "elev": elev, "azim": azim, "xlabel": EMBEDDING_LABELS[method]})
    plots.neighbourhood_maps(folder / f"{fig.name}.png", title, panels)
    summary = "; ".join(
        f"{name}: {len(d['accuracy'])} first neighbours, test {_pct(d['accuracy'].min())}"
        f"-{_pct(d['accuracy'].max())} (original {_pct(d['original_accuracy'])})"
        for name, d in survey.items()) + f", by {', '.join(options['embeddings'])}"
    return {"network": _net_info(path, meta), "point_0_is_the_original": True,
            "layers": survey}, summary


# -- Fig. 5: SENSE climbing from the 90% network ----------------------------------------------

def _climb_figure(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed,
                  progress, log, title, **_):
    net, path, meta = network90(dataset, out, quick, data_dir, checkpoint_path, seed, progress,
                                log)
    config = sense.SenseConfig(schedule=options["schedule"], neighbours=options["neighbours"],
                               fitness=options["fitness"],
                               steps_per_layer=options["steps_per_layer"],
                               train_images=options["train_images"], seed=seed,
                               max_steps=options["max_steps"], budget_seconds=NO_TIME_LIMIT)
    search = sense.start(config, folder / "search", dataset, from_checkpoint=path,
                         data_dir=data_dir)
    base = np.concatenate([w.reshape(-1) for w in search.fit.weights.values()])
    climbed = neighbourhood.climb(search, options["moves"], options["max_steps"], progress)
    moves = [s for s in climbed["steps"] if s["accepted"]]
    rows, hood, best, path_points, taken = [[]], [-1], [False], [0], []
    for h, step in enumerate(moves):
        for k, (s, t) in enumerate(zip(step["src"].tolist(), step["dst"].tolist())):
            if k == step["best"]:
                path_points.append(len(rows))
            rows.append(taken + [(s, t)])
            hood.append(h)
            best.append(k == step["best"])
        taken = taken + [(int(step["src"][step["best"]]), int(step["dst"][step["best"]]))]
    xy = neighbourhood.embed(neighbourhood.weight_vectors(base, rows), "tsne", seed)
    test = [climbed["start"]["test_accuracy"]] + [s["test_accuracy"] for s in moves]
    plots.climb_map(folder / f"{fig.name}.png", title, xy[:, 0], xy[:, 1], hood, best,
                    path_points, test)
    summary = (f"test {_pct(test[0])} -> {_pct(test[-1])} ({100 * (test[-1] - test[0]):+.2f} "
               f"points) over {len(moves)} neighbourhoods ({len(climbed['steps'])} steps of "
               f"{options['neighbours']} neighbours, {len(climbed['steps']) - len(moves)} "
               "without a better one)")
    return {"network": _net_info(path, meta), "start": climbed["start"], "steps": climbed["steps"],
            "test_accuracy_along_path": test,
            "points": {"x": xy[:, 0], "y": xy[:, 1], "neighbourhood": hood, "best": best,
                       "path": path_points}}, summary


# -- Figs. 6-8: SENSE from a random network, and backprop from the same one --------------------

def backprop_from(network: dict, dataset: str, data_dir, max_batches: int, evaluate_every: int,
                  seed: int) -> list[dict]:
    """Straight-through backprop from the given binary network (a sweep task, one BLAS thread)."""
    return psiren.binary_backprop(neighbourhood.network_from(network),
                                  neighbourhood.load_cached(dataset, data_dir), math.inf, seed=seed,
                                  evaluate_every=evaluate_every, max_batches=max_batches)


def _search_figure(fig, dataset, options, folder, seed, data_dir, parallel, progress, log, title,
                   **_):
    o = options
    config = sense.SenseConfig(schedule=o["schedule"], neighbours=o["neighbours"],
                               fitness=o["fitness"], steps_per_layer=o["steps_per_layer"],
                               repeats=o["repeats"], layers=list(o["layers"]),
                               budget_seconds=NO_TIME_LIMIT, max_steps=o["max_steps"],
                               train_images=o["train_images"], seed=seed)
    search_dir = folder / "sense"
    if (search_dir / sense.STATE_FILE).exists():
        shutil.rmtree(search_dir)           # a figure is re-run from its start, not resumed
    search = sense.start(config, search_dir, dataset, sparsity=o["sparsity"], data_dir=data_dir)
    initial = neighbourhood.network_spec(search.network())
    log(f"{fig.name}: SENSE ({o['schedule']}) from a random {o['sparsity']}% network, "
        f"{o['max_steps']} steps of {o['neighbours']} neighbours; records in {search_dir}")
    with progress(range(o["max_steps"]), label="SENSE steps") as bar:
        ticks = iter(bar)
        result = search.run(on_step=lambda record: next(ticks, None))
    steps = [json.loads(line) for line in (search_dir / sense.LOG_FILE).read_text().splitlines()]
    batches_per_epoch = -(-len(search.data.train.labels) // 100)
    task = dict(network=initial, dataset=dataset, data_dir=None if data_dir is None else
                str(data_dir), max_batches=o["backprop_epochs"] * batches_per_epoch,
                evaluate_every=o["backprop_evaluate_every"], seed=seed)
    backprop = sweep.run(backprop_from, [task], **{**parallel, "jobs": 1}, progress=progress,
                         label="backprop")[0]
    plots.search_curves(folder / f"{fig.name}.png", title, steps, backprop, batches_per_epoch)
    first, last = steps[0], steps[-1]
    summary = (f"SENSE validation {_pct(first['validation_accuracy'])} -> "
               f"{_pct(last['validation_accuracy'])}, test {_pct(first['test_accuracy'])} -> "
               f"{_pct(last['test_accuracy'])} in {last['step']} steps "
               f"({result['seconds']:.0f} s); backprop from the same network: test "
               f"{_pct(backprop[0]['test_accuracy'])} -> {_pct(backprop[-1]['test_accuracy'])} "
               f"after {o['backprop_epochs']} epochs")
    return {"steps": steps, "search": result, "backprop": backprop,
            "backprop_batches_per_epoch": batches_per_epoch}, summary


KINDS = {"sparsity": _sparsity_sweep, "histograms": _histograms_figure, "maps": _maps_figure,
         "climb": _climb_figure, "search": _search_figure}

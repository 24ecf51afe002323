"""The experiments behind the paper's figures, one function per kind (``minisense.reproduce``
holds the registry of figures and writes the JSON).

Each ``<kind>(fig, dataset, options, folder, ...)`` runs its experiment with the library's own
pieces -- p-SIREN (``psiren.train``), the neighbourhood survey, maps and climb
(``neighbourhood``), SENSE (``runs.start`` / ``Search.run``), backprop from a given network
(``psiren.binary_backprop``) -- draws the figure (``plots``) and returns (results, summary): every
plotted number, and one human-readable line.
"""

from __future__ import annotations

import io
import json
import math
import pathlib
import shutil
from dataclasses import asdict, fields

import numpy as np

from minisense import checkpoint, data, files, neighbourhood, plots, psiren, runs, sense, sweep
from minisense.data import architecture_for
from minisense.errors import MinisenseError

NO_TIME_LIMIT = 1e9        # seconds: the figures' searches stop by step count, reproducibly
MOST_STEPS = 2000          # step records a figure plots and keeps in its JSON

VIEWS = {"side": (0, -90), "top": (90, -90), "oblique": (25, -60)}   # (elevation, azimuth)
EMBEDDING_LABELS = {"tsne": "t-SNE", "lle": "LLE", "isomap": "Isomap"}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


# -- Figs. 2 and 12: the sparsity sweep ------------------------------------------------------------
# Step 1 of Algorithm 1 does not depend on p: a sweep over sparsity levels trains the same dense
# network once per seed and starts every level from it. Its state after step 1 is the latent
# weights and the generator (the next epochs' shuffles), so a run started from the store is bit
# for bit the run that trained step 1 itself.

def _dense_key(dataset, config: psiren.PsirenConfig, architecture: str) -> dict:
    """Everything step 1 depends on."""
    return {"dataset": dataset.name, "train_images": len(dataset.train.labels),
            "architecture": architecture, "seed": config.seed, "epochs": config.epochs["dense"],
            "batch_size": config.batch_size, "lr": config.lr, "momentum": config.momentum,
            "weight_decay": config.weight_decay,
            # (named only when set: an unweighted step 1 has the key it always had)
            **({} if config.class_weights is None else
               {"class_weights": list(config.class_weights)})}


def _restore_dense(store: pathlib.Path, key: dict, net, rng: np.random.Generator) -> list | None:
    """Load step 1 from ``store`` into ``net`` and ``rng`` if it was saved with ``key``; returns
    its history records, or None (nothing saved there, or saved with other settings)."""
    meta_path, weights_path = store / "dense.json", store / "dense.npz"
    if not (meta_path.is_file() and weights_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("key") != key:
        return None
    with np.load(weights_path) as weights:
        for name, layer in net.weighted.items():
            layer.weight = weights[name].copy()
    rng.bit_generator.state = meta["generator"]
    return [{**record, "reused_from": str(store)} for record in meta["history"]]


def _save_dense(store: pathlib.Path, key: dict, net, rng: np.random.Generator,
                history: list[dict]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **{name: layer.weight for name, layer in net.weighted.items()})
    # The weights before the JSON that vouches for them: a kill in between leaves no match.
    files.atomic_write_bytes(store / "dense.npz", buffer.getvalue())
    files.atomic_write_json(store / "dense.json", {"key": key, "generator": rng.bit_generator.state,
                                                   "history": history})


def shared_step1(store):
    """A stand-in for Algorithm 1's step 1 (``psiren.psiren(step1=...)``) that reads step 1 from
    the folder ``store`` when it was saved there with the same settings, else trains it
    (``psiren.dense_step``) and saves it there. The result is the same either way."""
    store = pathlib.Path(store)

    def step1(net, dataset, config, rng, progress=sweep.no_progress, log=lambda line: None):
        key = _dense_key(dataset, config, net.architecture)
        history = _restore_dense(store, key, net, rng)
        if history is not None:
            log(f"step dense: read from {store}, validation "
                f"{100 * history[-1]['validation_accuracy']:.2f}%")
            return history
        history = psiren.dense_step(net, dataset, config, rng, progress, log)
        _save_dense(store, key, net, rng, history)
        return history

    return step1


def psiren_at(dataset: str, sparsity: float, seed: int, epochs: dict, data_dir, out: str,
              dense_store: str | None = None) -> dict:
    """One p-SIREN run (a sweep task) into ``out``; a finished run with the same settings there
    is read back instead of trained again, so a killed sweep resumes where it stopped. Runs of
    one seed share step 1 through the folder ``dense_store`` (:func:`shared_step1`)."""
    config = psiren.config_for(dataset, sparsity=sparsity, epochs=dict(epochs), seed=seed)
    metrics = pathlib.Path(out) / "metrics.json"
    reused = metrics.is_file() and psiren.same_config(json.loads(metrics.read_text()).get("config",
                                                                                      {}), config)
    summary = json.loads(metrics.read_text()) if reused else psiren.train(
        dataset, config, out, data_dir, force=True,
        step1=None if dense_store is None else shared_step1(dense_store))
    return {"sparsity": sparsity, "seed": seed, "test_accuracy": summary["accuracy"]["test"],
            "validation_accuracy": summary["accuracy"]["validation"],
            "actual_sparsity": summary["actual_sparsity"],
            "wall_seconds": summary["wall_seconds"], "reused": reused}


def sparsity_sweep(fig, dataset, options, folder, out, seed, data_dir, parallel, progress, log,
                   title, **_):
    """Figs. 2 and 12 (Section 4.1): p-SIREN at every sparsity level with several seeds, each
    run a sweep task; test accuracy of every binary network."""
    levels, seeds = options["levels"], [seed + i for i in range(options["seeds"])]
    # Runs live in <out>/psiren/, named by everything that defines them: a figure that needs the
    # same run (fig2a and fig12 in --quick both train on digits) reads it back.
    epochs = "-".join(str(options["epochs"][step]) for step in psiren.STEPS)
    tasks = [dict(dataset=dataset, sparsity=p, seed=s, epochs=options["epochs"],
                  data_dir=None if data_dir is None else str(data_dir),
                  out=str(out / "psiren" / f"{dataset}-p{p:g}-s{s}-e{epochs}"),
                  dense_store=str(out / "psiren" / "dense" /
                                  f"{dataset}-s{s}-e{options['epochs']['dense']}"))
             for p in levels for s in seeds]
    log(f"{fig.name}: {len(tasks)} p-SIREN runs ({len(levels)} sparsity levels x {len(seeds)} "
        f"seeds) on {dataset}, epochs {options['epochs']}")
    runs = sweep.run(psiren_at, tasks, **parallel, progress=progress, label="p-SIREN runs")
    accuracy = np.array([r["test_accuracy"] for r in runs]).reshape(len(levels), len(seeds))
    plots.sparsity_curve(folder / f"{fig.name}.png", title, levels, accuracy.tolist(), seeds)
    # The paper's levels skip 90% (89, 91): report the levels nearest to 90, both if tied.
    gap = min(abs(p - 90) for p in levels)
    mean = accuracy.mean(axis=1)
    at = "; ".join(f"at {p:g}% sparsity {_pct(mean[i])} (range {_pct(accuracy[i].min())}-"
                   f"{_pct(accuracy[i].max())})"
                   for i, p in enumerate(levels) if abs(p - 90) == gap)
    summary = (f"test accuracy, mean of {len(seeds)} seeds, {at}; mean from {_pct(mean[0])} at "
               f"{levels[0]}% to {_pct(mean[-1])} at {levels[-1]}%")
    return {"sparsity": levels, "seeds": seeds, "test_accuracy": accuracy,
            "mean": mean, "min": accuracy.min(axis=1), "max": accuracy.max(axis=1),
            "std": accuracy.std(axis=1), "runs": runs}, summary


# -- the 90% network of Figs. 3-5 and 9-11 -------------------------------------------------------

def network90(dataset, out, quick, data_dir, checkpoint_path, seed, progress, log,
              short: dict | None = None):
    """(network, checkpoint path, its metadata): ``checkpoint_path``, else
    ``<out>/psiren/<dataset>-p90`` (``-quick``), trained there by p-SIREN when missing. With
    ``short`` (p-SIREN settings, e.g. {"epochs": ..., "lr": ...}) the network is a short-budget
    run instead, ``<dataset>-p90-short``: a weaker start, as the paper's Fig. 5 must have had."""
    name = f"{dataset}-p90{'-short' if short else ''}{'-quick' if quick else ''}"
    path = pathlib.Path(checkpoint_path) if checkpoint_path else out / "psiren" / name
    if checkpoint_path is None and not checkpoint.checkpoint_paths(path)[0].is_file():
        settings = short or ({"epochs": {"dense": 2, "prune": 1, "sparse": 1, "binary": 1}}
                             if quick else {})
        config = psiren.config_for(dataset, sparsity=90, seed=seed, **settings)
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

def accuracy_histogram(accuracy: np.ndarray, images: int, bins: int = 40):
    """(counts, edges) of accuracies that are multiples of 1/images: at most ``bins`` bins, each
    a whole number of images wide and centred on the grid, so no bin is empty by aliasing."""
    correct = np.rint(np.asarray(accuracy) * images).astype(np.int64)
    width = max(1, -(-(int(correct.max()) - int(correct.min()) + 1) // bins))
    edges = np.arange(correct.min() - 0.5, correct.max() + width, width)
    counts, _ = np.histogram(correct, edges)
    return counts, edges / images


def histograms(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed,
               parallel, progress, log, title, **_):
    """Figs. 3 and 9 (Section 4.2): the test accuracy of sampled first neighbours, per layer,
    against the original network's; the share of better neighbours."""
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
        d["counts"], d["edges"] = accuracy_histogram(acc, d["images"])
    plots.neighbour_histograms(folder / f"{fig.name}.png", title, survey)
    original = next(iter(survey.values()))["original_accuracy"]
    summary = f"original test {_pct(original)}; neighbours better: " + ", ".join(
        f"{name} {100 * d['better_fraction']:.1f}% of {len(d['accuracy'])}"
        for name, d in survey.items())
    return {"network": _net_info(path, meta), "layers": survey}, summary


# -- Figs. 4, 10 and 11: neighbourhood maps ------------------------------------------------------

def maps(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed, parallel,
         progress, log, title, **_):
    """Figs. 4, 10 and 11 (Section 4.2): first neighbours as weight vectors, embedded in 2-D
    (t-SNE, LLE, Isomap), test accuracy as the third axis; point 0 is the original network."""
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
            log(f"{fig.name}: {EMBEDDING_LABELS[method]} of {len(rows)} networks ({name})")
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


def sense_config(options: dict, seed: int, **fixed) -> sense.SenseConfig:
    """The figure's SENSE settings: every option that names a ``SenseConfig`` field, the rest
    at their defaults; no time limit, so the search stops by step count, reproducibly."""
    names = {f.name for f in fields(sense.SenseConfig)}
    given = {k: v for k, v in options.items() if k in names}
    return sense.SenseConfig(**{**given, "budget_seconds": NO_TIME_LIMIT, "seed": seed, **fixed})


def thin(steps: list[dict], best_step: int, most: int = MOST_STEPS) -> tuple[list[dict], int]:
    """At most about ``most`` step records for a figure and its JSON: every n-th step, the last
    and the best one; returns them and n (1: all kept)."""
    every = max(1, -(-len(steps) // most))
    keep = [r for i, r in enumerate(steps)
            if i % every == 0 or i == len(steps) - 1 or r["step"] == best_step]
    return keep, every


# -- Fig. 5: SENSE climbing from the 90% network ----------------------------------------------

def climb(fig, dataset, options, folder, out, quick, data_dir, checkpoint_path, seed, progress,
          log, title, **_):
    """Fig. 5 (Section 4.3): SENSE from the 90% p-SIREN network until 6 moves; every network of
    every neighbourhood it moved through on one t-SNE map, with the path of best neighbours."""
    net, path, meta = network90(dataset, out, quick, data_dir, checkpoint_path, seed, progress,
                                log, short=options.get("start"))
    config = sense_config(options, seed, layers=[])
    search = runs.start(config, folder / "search", dataset, from_checkpoint=path,
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
    along = {split: [climbed["start"][f"{split}_accuracy"]] +
             [s[f"{split}_accuracy"] for s in moves] for split in ("train", "validation", "test")}
    plots.climb_map(folder / f"{fig.name}.png", title, xy[:, 0], xy[:, 1], hood, best,
                    path_points, along)
    test = along["test"]
    summary = (f"test {_pct(test[0])} -> {_pct(test[-1])} ({100 * (test[-1] - test[0]):+.2f} "
               f"points; training images, the selection: {_pct(along['train'][0])} -> "
               f"{_pct(along['train'][-1])}) over {len(moves)} neighbourhoods "
               f"({len(climbed['steps'])} steps of {options['neighbours']} neighbours, "
               f"{len(climbed['steps']) - len(moves)} without a better one)")
    return {"network": _net_info(path, meta), "start": climbed["start"], "steps": climbed["steps"],
            "accuracy_along_path": along,
            "points": {"x": xy[:, 0], "y": xy[:, 1], "neighbourhood": hood, "best": best,
                       "path": path_points}}, summary


# -- Figs. 6-8: SENSE from a random network, and backprop from the same one --------------------

def backprop_from(network: dict, dataset: str, data_dir, max_batches: int, evaluate_every: int,
                  seed: int) -> list[dict]:
    """Straight-through backprop from the given binary network (a sweep task, one BLAS thread)."""
    return psiren.binary_backprop(sweep.network_from(network),
                                  data.load_cached(dataset, data_dir), math.inf, seed=seed,
                                  evaluate_every=evaluate_every, max_batches=max_batches)


def search(fig, dataset, options, folder, seed, data_dir, parallel, progress, log, title,
           force=False, **_):
    """Figs. 6-8 (Section 4.4): SENSE from a random p% network with the figure's schedule, and
    straight-through backprop from the same network; validation and test curves of both."""
    o = options
    config = sense_config(o, seed, layers=list(o["layers"]))
    search_dir = folder / "sense"
    # A killed figure resumes its search (runs.resume reaches the same network); a search of
    # other settings in the folder is replaced only with --force.
    setting = {"figure": fig.name, "dataset": dataset, "sparsity": o["sparsity"],
               "config": asdict(config)}
    marker = search_dir / "figure.json"
    resumable = (search_dir / runs.STATE_FILE).exists() and marker.exists() and \
        json.loads(marker.read_text()) == json.loads(json.dumps(setting))
    if resumable:
        search = runs.resume(search_dir, data_dir)
        initial = sweep.network_spec(runs.initial_network(
            seed, dataset, sparsity=o["sparsity"], data_dir=data_dir)[0])
    else:
        net, data = runs.initial_network(seed, dataset, sparsity=o["sparsity"],
                                          data_dir=data_dir)
        if search_dir.exists() and any(search_dir.iterdir()):
            if not force:
                raise MinisenseError(f"{search_dir} holds a search of other settings; pass "
                                     "--force to replace it, or choose another --out")
            shutil.rmtree(search_dir)
        search = runs.SearchRun(net, data, config, search_dir)
        initial = sweep.network_spec(search.network())
        files.atomic_write_json(marker, setting)
    done = search.state["step"]
    log(f"{fig.name}: SENSE ({o['schedule']}) from a random {o['sparsity']}% network, "
        f"{o['max_steps']} steps of {o['neighbours']} neighbours; records in {search_dir}"
        + (f" (resumed at step {done})" if resumable else ""))
    with progress(range(o["max_steps"] - done), label="SENSE steps") as bar:
        ticks = iter(bar)
        result = search.run(on_step=lambda record: next(ticks, None))
    steps = [json.loads(line) for line in (search_dir / runs.LOG_FILE).read_text().splitlines()]
    batches_per_epoch = -(-len(search.data.train.labels) // 100)
    task = dict(network=initial, dataset=dataset, data_dir=None if data_dir is None else
                str(data_dir), max_batches=o["backprop_epochs"] * batches_per_epoch,
                evaluate_every=o["backprop_evaluate_every"], seed=seed)
    backprop = sweep.run(backprop_from, [task], **{**parallel, "jobs": 1}, progress=progress,
                         label="backprop")[0]
    first, last, best = steps[0], steps[-1], result["best"]
    steps, every = thin(steps, best["step"])
    plots.search_curves(folder / f"{fig.name}.png", title, steps, backprop, batches_per_epoch,
                        every)
    summary = (f"SENSE validation {_pct(first['validation_accuracy'])} -> "
               f"{_pct(last['validation_accuracy'])}, test {_pct(first['test_accuracy'])} -> "
               f"{_pct(last['test_accuracy'])} in {last['step']} steps "
               f"({result['seconds']:.0f} s)")
    if best["step"] != last["step"]:
        summary += (f", best by validation (step {best['step']}): validation "
                    f"{_pct(best['validation_accuracy'])}, test {_pct(best['test_accuracy'])}")
    summary += (f"; backprop from the same network: test {_pct(backprop[0]['test_accuracy'])} "
                f"-> {_pct(backprop[-1]['test_accuracy'])} after {o['backprop_epochs']} epochs")
    return {"steps": steps, "steps_every": every, "search": result, "backprop": backprop,
            "backprop_batches_per_epoch": batches_per_epoch}, summary


KINDS = {"sparsity": sparsity_sweep, "histograms": histograms, "maps": maps, "climb": climb,
         "search": search}

"""``minisense reproduce``: a --quick run of every figure writes its PNG and a JSON holding the
plotted numbers, which are checked against independent computations; the Dask backend gives the
joblib results; bad input is one line.

Offline and short: digits only, every figure on tiny budgets, one shared output folder (the 90%
network and the p-SIREN runs are trained once and read back by the figures that need them).
"""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import PNG_MAGIC

from minisense import checkpoint, data, experiments, reproduce, sweep
from minisense.network import exact_logits
from minisense.swaps import apply_swap

TWO_EPOCHS = {"dense": 1, "prune": 1, "sparse": 0, "binary": 0}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("reproduce")


def digits_accuracy(net, split="test"):
    part = getattr(data.load_dataset("digits"), split)
    return float((exact_logits(net, part.images).argmax(axis=1) == part.labels).mean())


# -- Figs. 2 and 12 ------------------------------------------------------------------------------

@pytest.mark.slow
def test_sparsity_figures_plot_the_test_accuracy_of_every_run_they_trained(out, quick):
    record = quick(out, "fig2a")
    r = record["results"]
    assert r["sparsity"] == [0, 90] and r["seeds"] == [0, 1]
    acc = np.array(r["test_accuracy"])
    assert acc.shape == (2, 2)
    np.testing.assert_allclose(r["mean"], acc.mean(axis=1))
    for one in r["runs"]:
        net, meta = checkpoint.load(out / "psiren" / f"digits-p{one['sparsity']}-s{one['seed']}"
                                                     "-e1-1-0-1")
        assert meta["seed"] == one["seed"]
        assert abs(checkpoint.sparsity_percent(net) - one["sparsity"]) < 0.01
        assert digits_accuracy(net) == one["test_accuracy"]
    # Fig. 12 in --quick trains the same runs (digits), so it reads them back.
    again = quick(out, "fig12")["results"]
    assert again["test_accuracy"] == r["test_accuracy"]
    assert all(x["reused"] for x in again["runs"])


# -- Figs. 3 and 9: first-neighbour histograms ---------------------------------------------------

@pytest.mark.slow
def test_histogram_figure_holds_each_neighbours_accuracy_as_a_full_forward_pass_gives_it(out,
                                                                                         quick):
    record = quick(out, "fig3")
    net, _ = checkpoint.load(out / "psiren" / "digits-p90-quick")
    original = digits_accuracy(net)
    weights = net.ternary_weights()
    layers = record["results"]["layers"]
    assert list(layers) == ["layer1.0", "layer2.0", "fc"]
    for name, d in layers.items():
        acc = np.array(d["accuracy"])
        assert len(acc) == 40 and len(set(zip(d["src"], d["dst"]))) == 40   # distinct swaps
        assert d["original_accuracy"] == original
        assert d["better_fraction"] == np.mean(acc > original)
        assert sum(d["counts"]) == 40
        for k in (0, 17, 39):               # the oracle: swap, run the exact forward pass
            swapped = {n: w.copy() for n, w in weights.items()}
            apply_swap(swapped[name], d["src"][k], d["dst"][k])
            net.set_ternary(swapped, net.thresholds, net.last_gain)
            assert digits_accuracy(net) == acc[k]
        net.set_ternary(weights, net.thresholds, net.last_gain)
    assert f"original test {100 * original:.2f}%" in record["summary"]


def test_car_figures_without_a_recording_say_so_in_one_line(tmp_path, run, assert_one_line_error):
    empty = {"MINISENSE_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    for figure in ("fig2b", "fig8b", "fig9", "fig10"):
        line = assert_one_line_error(run("reproduce", figure, "--quick", "--out", tmp_path,
                                         "--data-dir", tmp_path, env=empty))
        assert figure in line and "car" in line and "minisense car record" in line


@pytest.mark.slow
def test_car_figures_run_their_generic_code_on_digits(out):
    """fig9: every layer of the network; fig10: the last layer; same code as the car will use."""
    r9 = reproduce.run("fig9", quick=True, out=out, dataset="digits")
    assert list(r9["results"]["layers"]) == ["layer1.0", "layer2.0", "fc"]
    assert "--dataset digits" in r9["command"]
    r10 = reproduce.run("fig10", quick=True, out=out, dataset="digits")
    assert list(r10["results"]["layers"]) == ["fc"]
    r8 = reproduce.run("fig8b", quick=True, out=out, dataset="digits")
    assert {s["layer"] for s in r8["results"]["steps"][1:]} <= {"layer1.0", "layer2.0"}
    reproduce.run("fig2a", quick=True, out=out, force=True)   # its runs read back if made
    r2 = reproduce.run("fig2b", quick=True, out=out, dataset="digits")
    assert all(x["reused"] for x in r2["results"]["runs"])       # fig2a's runs


# -- Figs. 4, 10, 11: maps -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("figure, methods", [("fig4", ["tsne"]), ("fig11", ["lle", "isomap"])])
def test_map_figures_hold_coordinates_and_accuracy_of_the_original_and_each_neighbour(
        out, figure, methods, quick):
    r = quick(out, figure)["results"]
    assert r["point_0_is_the_original"] and list(r["layers"]) == ["layer1.0", "fc"]
    for d in r["layers"].values():
        assert d["z"] == [d["original_accuracy"]] + d["accuracy"]
        assert list(d["embeddings"]) == methods
        for xy in d["embeddings"].values():
            assert len(xy["x"]) == len(xy["y"]) == 41 and np.isfinite(xy["x"]).all()


# -- Fig. 5: the climb ---------------------------------------------------------------------------

@pytest.mark.slow
def test_climb_figure_path_follows_accepted_moves_whose_test_accuracy_is_recomputed_exactly(out,
                                                                                            quick):
    r = quick(out, "fig5")["results"]
    moves = [s for s in r["steps"] if s["accepted"]]
    along = r["accuracy_along_path"]
    assert len(moves) == 6 and [len(v) for v in along.values()] == [7, 7, 7]
    assert along["train"] == sorted(along["train"])      # the selection never goes down
    points = r["points"]
    assert points["path"][0] == 0 and points["neighbourhood"][0] == -1
    assert [points["best"][i] for i in points["path"][1:]] == [True] * 6
    assert sum(points["best"]) == 6 and len(points["x"]) == 1 + 20 * 6
    # Replay the path on the checkpoint: each move's test accuracy is the network's.
    net, _ = checkpoint.load(out / "psiren" / "digits-p90-quick")
    weights = net.ternary_weights()
    flat = np.concatenate([w.reshape(-1) for w in weights.values()])
    assert digits_accuracy(net) == along["test"][0]
    for step, expected in zip(moves, along["test"][1:]):
        apply_swap(flat, step["src"][step["best"]], step["dst"][step["best"]])
        start = 0
        for name, w in weights.items():
            weights[name] = flat[start:start + w.size].reshape(w.shape)
            start += w.size
        net.set_ternary(weights, net.thresholds, net.last_gain)
        assert digits_accuracy(net) == expected


@pytest.mark.slow
def test_short_climb_figure_starts_from_its_own_short_budget_network(out, quick):
    r = quick(out, "fig5short")["results"]
    path = pathlib.Path(r["network"]["checkpoint"])
    assert path.name == "digits-p90-short-quick"
    config = json.loads((path / "metrics.json").read_text())["config"]
    assert {k: config[k] for k in ("epochs", "lr", "pruning")} == \
        reproduce.FIGURES["fig5short"].quick["start"]
    net, _ = checkpoint.load(path)
    assert digits_accuracy(net) == r["accuracy_along_path"]["test"][0]
    assert sum(s["accepted"] for s in r["steps"]) <= 6


# -- Figs. 6-8: SENSE from a random network ------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("figure, layers", [("fig6", None), ("fig7", {"fc"}),
                                            ("fig8a", None)])
def test_search_figures_hold_sense_and_backprop_curves_from_the_same_network(out, figure,
                                                                           layers, quick):
    r = quick(out, figure)["results"]
    steps, backprop = r["steps"], r["backprop"]
    assert steps[0]["step"] == 0 and len(steps) == r["search"]["steps"] + 1
    assert backprop[0]["batches"] == 0
    # Both curves start from the same network: the same test accuracy before any change.
    assert backprop[0]["test_accuracy"] == steps[0]["test_accuracy"]
    assert backprop[-1]["batches"] == r["backprop_batches_per_epoch"]
    touched = {s["layer"] for s in steps[1:]}
    if layers:
        assert touched == layers
    if figure == "fig6":                    # alternate: 2 steps per layer, in order, once
        assert [s["layer"] for s in steps[1:]] == ["layer1.0"] * 2 + ["layer2.0"] * 2 + ["fc"] * 2


@pytest.mark.slow
def test_a_killed_search_figure_resumes_and_ends_where_an_uninterrupted_one_does(tmp_path):
    import contextlib

    @contextlib.contextmanager
    def killed_after(iterable, label=""):
        def ticks():
            for i, item in enumerate(iterable):
                if label == "SENSE steps" and i == 3:
                    raise KeyboardInterrupt
                yield item
        yield ticks()

    whole = reproduce.run("fig8a", quick=True, out=tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        reproduce.run("fig8a", quick=True, out=tmp_path / "killed", progress=killed_after)
    lines = []
    again = reproduce.run("fig8a", quick=True, out=tmp_path / "killed", log=lines.append)
    assert any("resumed at step" in line for line in lines)

    def untimed(records):
        return [{k: v for k, v in r.items() if k not in ("seconds", "evals_per_second")}
                for r in records]

    for curve in ("steps", "backprop"):      # backprop: from the same start network
        assert untimed(again["results"][curve]) == untimed(whole["results"][curve])
    assert len(whole["results"]["steps"]) > 4


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["fig99"], ["unknown figure 'fig99'", "fig2a"]),
    (["fig3", "--backend", "dask"], ["--scheduler"]),
    (["fig3", "--scheduler", "tcp://localhost:1"], ["--backend dask"]),
    (["fig3", "--jobs", "0"], ["--jobs"]),
])
def test_bad_reproduce_input_is_one_line_error(tmp_path, args, words, run, assert_one_line_error):
    line = assert_one_line_error(run("reproduce", *args, "--out", tmp_path))
    for word in words:
        assert word in line


# -- Dask ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_dask_backend_gives_the_joblib_results_for_the_same_seeds(out, tmp_path):
    """p-SIREN runs (float training) and first-neighbour chunks, on one process, on two joblib
    worker processes and on a local Dask cluster whose two threads share this process: the same
    numbers, losses and weights, bit for bit, with a CPU-bound process running beside them.

    The Dask tasks run after p-SIREN work in this thread (fig3 trains and evaluates here). With
    threadpoolctl 3.8 that once left this thread in sole control of OpenBLAS's process-wide
    limit: the tasks' one-thread limits were dropped without a word, their products ran on all
    cores, and the losses differed in the 8th digit (the ternary weights only now and then)."""
    distributed = pytest.importorskip("distributed")
    from threadpoolctl import threadpool_info

    def blas():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    cluster = None
    try:
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                           dashboard_address=None)
        results = {}
        for label, options in [("joblib-1", dict(jobs=1)), ("joblib-2", dict(jobs=2)),
                               ("dask", dict(backend="dask",
                                             scheduler=cluster.scheduler_address))]:
            if label == "dask":
                # BLAS work in this thread right before, whatever the order of the runs above
                checkpoint.load(results["joblib-1"][-1][0])[0].accuracy(
                    *data.split_of("digits", None, "test", 100))
                before = blas()
            tasks = [dict(dataset="digits", sparsity=90, seed=s, epochs=TWO_EPOCHS,
                          data_dir=None, out=str(tmp_path / label / f"s{s}")) for s in (0, 1)]
            runs = sweep.run(experiments.psiren_at, tasks, **options)
            assert not any(r["reused"] for r in runs)
            weights = [checkpoint.load(t["out"])[0].ternary_weights() for t in tasks]
            losses = [[h["loss"] for h in json.loads(
                (pathlib.Path(t["out"]) / "metrics.json").read_text())["history"] if "loss" in h]
                for t in tasks]
            hist = reproduce.run("fig3", quick=True, out=out, force=True, **options)
            results[label] = ([r["test_accuracy"] for r in runs], losses, weights,
                              hist["results"]["layers"], [t["out"] for t in tasks])
        assert blas() == before          # the tasks' limits are given back when the last ends
    finally:
        busy.kill()
        busy.wait()
        if cluster is not None:
            cluster.close()
    reference = results["joblib-1"]
    assert all(len(run) == 2 for run in reference[1])
    for label in ("joblib-2", "dask"):
        assert results[label][0] == reference[0], label
        assert results[label][1] == reference[1], label
        for a, b in zip(results[label][2], reference[2]):
            assert all(np.array_equal(a[n], b[n]) for n in a), label
        assert json.dumps(results[label][3]) == json.dumps(reference[3]), label


# -- reference_outputs/: the committed real runs and the README table that quotes them -----------

REFERENCE = pathlib.Path(__file__).resolve().parent.parent / "reference_outputs"


def _table_rows() -> dict:
    """The figures table of reference_outputs/README.md: figure name -> its row's text."""
    rows = {}
    for line in (REFERENCE / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in reproduce.FIGURES:
            rows[cells[0]] = line
    return rows


@pytest.mark.parametrize("figure", sorted(reproduce.FIGURES))
def test_reference_table_quotes_the_committed_real_run_of_every_figure(figure):
    """A committed figure is a real run with its PNG, and its README row carries every
    percentage of the run's summary line; a figure not committed yet says so in its row."""
    row = _table_rows()[figure]
    path = REFERENCE / figure / f"{figure}.json"
    if not path.is_file():
        assert re.search(r"running|queued|not run", row), f"{figure}: row without a run: {row}"
        return
    record = json.loads(path.read_text())
    assert record["quick"] is False and record["figure"] == figure
    assert (REFERENCE / figure / record["png"]).read_bytes()[:8] == PNG_MAGIC
    numbers = re.findall(r"(?<![\d%])(-?\d[\d.]*)%", record["summary"])
    assert numbers
    missing = [n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", row)]
    assert not missing, f"{figure}: the README row lacks {missing} of: {record['summary']}"

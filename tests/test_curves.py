"""Tests for minisense.curves and ``minisense plot RUN RUN ... --out F.png``: runs side by side
against seconds, the numbers drawn written beside the PNG and checked against the run folders'
own records (hand-written here, so every expected value is known), one-line errors otherwise."""

import json
import pathlib

import numpy as np
import pytest
from helpers import PNG_MAGIC

from minisense import curves

REFERENCE = pathlib.Path(__file__).resolve().parent.parent / "reference_outputs"

STEP = {"step": 0, "layer": None, "accepted": False, "train_accuracy": 0.1,
        "validation_accuracy": 0.1, "test_accuracy": 0.1, "seconds": 0.0}
# (seconds, validation accuracy) of a search's records: the best so far is 0.1, 0.5, 0.5, 0.7
SEARCH_RECORDS = [(0.0, 0.1), (1.5, 0.5), (3.0, 0.3), (20.0, 0.7)]
EPOCHS = {"dense": 2, "prune": 1, "sparse": 1, "binary": 1}


def search_folder(path, records=SEARCH_RECORDS, seed=0, shift=0):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"seed": seed, "shift_pixels": shift,
                                                  "redraw_steps": 1000}))
    (path / "steps.jsonl").write_text("".join(
        json.dumps({**STEP, "step": i, "layer": None if i == 0 else "fc", "accepted": i > 0,
                    "seconds": t, "validation_accuracy": v, "test_accuracy": v - 0.01}) + "\n"
        for i, (t, v) in enumerate(records)))
    return path


def psiren_folder(path):
    """A p-SIREN run of 5 epochs: 10 s each, every step's end 1 s after its last epoch."""
    path.mkdir()
    history = []
    for step, n in EPOCHS.items():
        history += [{"step": step, "epoch": e + 1, "loss": 0.5, "validation_accuracy": 0.6 + e / 10,
                     "seconds": 10.0} for e in range(n)]
        history.append({"step": step, "epochs": n, "done": True, "validation_accuracy": 0.9,
                        "test_accuracy": 0.89, "seconds": 10.0 * n + 1})
    (path / "metrics.json").write_text(json.dumps({
        "dataset": "digits", "requested_sparsity": 80, "seed": 3,
        "config": {"sparsity": 80, "epochs": EPOCHS}, "history": history,
        "accuracy": {"validation": 0.9, "test": 0.89}}))
    return path


def test_a_search_is_drawn_as_its_best_validation_so_far_at_its_recorded_seconds(tmp_path):
    c = curves.search_curve(search_folder(tmp_path / "s"))
    assert c["seconds"] == [0.0, 1.5, 3.0, 20.0]
    assert c["validation_accuracy"] == [0.1, 0.5, 0.5, 0.7]
    assert curves.first_reach(c, 0.5) == 1.5 and curves.first_reach(c, 0.6) == 20.0
    assert curves.first_reach(c, 0.71) is None


def test_a_level_given_in_percent_is_reached_by_an_accuracy_equal_to_it():
    # 98.4 / 100 is 0.9840000000000001 in floating point, above an accuracy of 9,840 / 10,000
    c = {"kind": "search", "seconds": [0.0, 5.0, 9.0],
         "validation_accuracy": [0.5, 9840 / 10000, 0.99]}
    assert 98.4 / 100 > 9840 / 10000
    assert curves.first_reach(c, 98.4 / 100) == 5.0
    assert curves.first_reach(c, 0.9841) == 9.0


def test_p_siren_seconds_add_up_over_its_steps_and_it_reaches_only_at_its_end(tmp_path):
    c = curves.psiren_curve(psiren_folder(tmp_path / "p"))
    # dense: 10, 20 (step ends at 21); prune 31 (ends 32); sparse 42 (43); binary 53 (54)
    assert c["seconds"] == [10.0, 20.0, 31.0, 42.0, 53.0]
    assert c["best"] == {"seconds": 54.0, "validation_accuracy": 0.9, "test_accuracy": 0.89}
    assert curves.first_reach(c, 0.6) == 54.0          # the dense network at 10 s is not ternary
    assert curves.first_reach(c, 0.95) is None


def test_plot_of_several_runs_writes_the_png_and_its_numbers(tmp_path, run, assert_ok):
    a = search_folder(tmp_path / "a")
    b = search_folder(tmp_path / "b", [(0.0, 0.2), (2.0, 0.8)], seed=1, shift=2)
    p = psiren_folder(tmp_path / "p")
    out = tmp_path / "cmp.png"
    result = assert_ok(run("plot", a, b, p, "--out", out, "--reach", "50", "--reach", "75"))
    assert out.read_bytes()[:8] == PNG_MAGIC
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["reach"] == [50, 75]
    first = {name.split("/")[-1]: r["first_reaches"] for name, r in numbers["runs"].items()}
    assert first == {"a": {"50": 1.5, "75": None}, "b": {"50": 2.0, "75": 2.0},
                     "p": {"50": 54.0, "75": 54.0}}
    # runs of different settings are told apart (the shift is part of the setting)
    settings = {r["setting"] for r in numbers["runs"].values()}
    assert len(settings) == 3 and any("shifted up to 2 pixels" in s for s in settings)
    assert "first 50% at 2 s" in result.output and "75% never reached" in result.output


def test_the_same_runs_give_the_same_numbers(tmp_path, run, assert_ok):
    folders = [search_folder(tmp_path / "a"), psiren_folder(tmp_path / "p")]
    texts = []
    for name in ("one.png", "two.png"):
        assert_ok(run("plot", *folders, "--out", tmp_path / name, "--reach", "50"))
        texts.append((tmp_path / name).with_suffix(".json").read_text())
    assert texts[0] == texts[1]


def test_existing_outputs_are_kept_without_force(tmp_path, run, assert_ok, assert_one_line_error):
    folders = [search_folder(tmp_path / "a"), search_folder(tmp_path / "b", seed=1)]
    out = tmp_path / "cmp.png"
    out.with_suffix(".json").write_text("mine")
    assert_one_line_error(run("plot", *folders, "--out", out))
    assert out.with_suffix(".json").read_text() == "mine" and not out.exists()
    assert_ok(run("plot", *folders, "--out", out, "--force"))
    assert json.loads(out.with_suffix(".json").read_text())["runs"]


@pytest.mark.parametrize("case", ["no out", "reach one run", "not png", "chains", "reach 0",
                                  "missing"])
def test_bad_comparisons_are_one_line_errors(tmp_path, case, run, assert_one_line_error):
    a, b = search_folder(tmp_path / "a"), search_folder(tmp_path / "b", seed=1)
    args = {"no out": [a, b],
            "reach one run": [a, "--reach", "50", "--out", tmp_path / "x.png"],
            "not png": [a, b, "--out", tmp_path / "x.jpg"],
            "chains": [a, b, tmp_path / "fam", "--out", tmp_path / "x.png"],
            "reach 0": [a, b, "--reach", "0", "--out", tmp_path / "x.png"],
            "missing": [a, tmp_path / "nowhere", "--out", tmp_path / "x.png"]}[case]
    if case == "chains":
        (tmp_path / "fam").mkdir()
        search_folder(tmp_path / "fam" / "chain-0")
        (tmp_path / "fam" / "family.json").write_text(json.dumps({"members": ["chain-0"]}))
    assert_one_line_error(run("plot", *args))
    assert not list(tmp_path.glob("x.*"))


def test_curves_of_committed_runs_are_monotone_in_time(tmp_path):
    """The best-so-far line never falls, and seconds never run backwards, on a real search."""
    c = curves.search_curve(REFERENCE / "sense" / "mnist-random80-screened-30min")
    assert np.all(np.diff(c["validation_accuracy"]) >= 0)
    assert np.all(np.diff(c["seconds"]) >= 0)

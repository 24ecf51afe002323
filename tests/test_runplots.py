"""Tests for minisense.runplots and ``minisense plot RUN``: one PNG per run folder, written only
where it may be, and one-line errors for what is not a run.

The tiny runs are made on digits by the CLI itself (in process, a few seconds); the values the
pictures draw are tested in test_runlogs.py, and here against the files of those runs.
"""

import json
import pathlib
import shutil
import struct

import pytest
from helpers import PNG_MAGIC

from minisense import runlogs, runplots
from minisense.errors import MinisenseError

REFERENCE = pathlib.Path(__file__).resolve().parent.parent / "reference_outputs"
TRAIN = ["--dataset", "digits", "--sparsity", "80", "--seed", "0", "--epochs-dense", "1",
         "--epochs-prune", "1", "--epochs-sparse", "1", "--epochs-binary", "1"]
SEARCH = ["--init", "random", "--sparsity", "80", "--dataset", "digits", "--seed", "0",
          "--neighbours", "10", "--train-images", "200"]
STEP = {"step": 0, "layer": None, "accepted": False, "train_accuracy": 0.1,
        "validation_accuracy": 0.1, "test_accuracy": 0.1, "seconds": 0.0}


def png_size(path) -> tuple[int, int]:
    """Width and height of a PNG file, from its IHDR chunk (and a check that it is one)."""
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    assert data.endswith(b"IEND\xaeB`\x82")                   # whole, not cut short
    return struct.unpack(">II", data[16:24])


def search_folder(path) -> pathlib.Path:
    """A hand-written search folder of two steps: enough to be a run."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"seed": 0}))
    (path / "steps.jsonl").write_text(json.dumps(STEP) + "\n" +
                                      json.dumps({**STEP, "step": 1, "layer": "fc"}) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, run, assert_ok):
    """One tiny run of each kind: train, search, search --chains, search --backprop."""
    root = tmp_path_factory.mktemp("runs")
    for args in (["train", *TRAIN, "--out", root / "train"],
                 ["search", *SEARCH, "--max-steps", "30", "--out", root / "search"],
                 ["search", *SEARCH, "--max-steps", "10", "--chains", "2", "--out",
                  root / "chains"],
                 ["search", *SEARCH[:8], "--backprop", "--max-steps", "60", "--out",
                  root / "backprop"]):
        assert_ok(run(*args))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["train", "search", "chains", "backprop"])
def test_plot_writes_one_png_of_a_readable_size_into_the_run_folder(runs, kind, run, assert_ok):
    result = run("plot", runs / kind)
    assert_ok(result)
    assert result.output == f"picture: {runs / kind / 'plot.png'}\n"
    width, height = png_size(runs / kind / "plot.png")
    assert 900 <= width <= 2000 and 400 <= height <= 1400, (width, height)


@pytest.mark.slow
def test_the_series_drawn_are_the_records_the_runs_wrote(runs):
    metrics = json.loads((runs / "train" / "metrics.json").read_text())
    epochs = [r for r in metrics["history"] if not r.get("done")]
    p = runlogs.psiren_series(runs / "train")
    assert p["loss"].tolist() == [r["loss"] for r in epochs]
    assert p["validation_accuracy"].tolist() == [r["validation_accuracy"] for r in epochs]
    assert p["steps"]["binary"]["test_accuracy"] == metrics["accuracy"]["test"]
    assert p["steps"]["binary"]["sparsity"] == pytest.approx(metrics["actual_sparsity"])

    steps = [json.loads(line) for line in (runs / "search" / "steps.jsonl").read_text()
             .splitlines()]
    summary = json.loads((runs / "search" / "summary.json").read_text())
    s = runlogs.search_series(runs / "search")
    assert s["step"].tolist() == list(range(31))
    for key in ("seconds", "train_accuracy", "validation_accuracy", "test_accuracy"):
        assert s[key].tolist() == [r[key] for r in steps]
    assert sum(c[-1] for c in s["accepted_by_layer"].values()) == summary["accepted"]
    assert s["best"]["step"] == summary["best"]["step"]

    c = runlogs.chains_series(runs / "chains")
    family = json.loads((runs / "chains" / "family.json").read_text())
    assert list(c["members"]) == [m["chain"] for m in family["members"]]
    assert [m["config"]["seed"] for m in c["members"].values()] == [0, 1]
    backprop = [json.loads(line) for line in (runs / "backprop" / "backprop.jsonl")
                .read_text().splitlines()]
    assert runlogs.backprop_series(runs / "backprop")["records"] == backprop


@pytest.mark.slow
def test_a_picture_is_replaced_only_with_force_and_out_may_name_another_file(runs, tmp_path, run,
                                                                             assert_ok,
                                                                             assert_one_line_error):
    folder = pathlib.Path(shutil.copytree(runs / "search", tmp_path / "s"))
    (folder / "plot.png").write_bytes(b"mine")
    line = assert_one_line_error(run("plot", folder))
    assert "already exists" in line and "--force" in line
    assert (folder / "plot.png").read_bytes() == b"mine"
    assert_ok(run("plot", folder, "--force"))
    png_size(folder / "plot.png")
    out = tmp_path / "pictures" / "search.png"
    assert runplots.plot_run(folder, out) == out
    png_size(out)


@pytest.mark.slow
def test_a_search_that_has_recorded_only_its_start_plots(tmp_path):
    folder = search_folder(tmp_path / "s")
    (folder / "steps.jsonl").write_text(json.dumps(STEP) + "\n")
    png_size(runplots.plot_run(folder))


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["sense/mnist-random80-screened-30min", "ens-mnist80/chains"])
def test_committed_runs_with_thinned_logs_plot(folder, tmp_path):
    out = runplots.plot_run(REFERENCE / folder, tmp_path / "plot.png")
    png_size(out)


def test_an_existing_picture_is_kept_without_force(tmp_path):
    folder = search_folder(tmp_path / "s")
    (folder / "plot.png").write_bytes(b"mine")
    with pytest.raises(MinisenseError, match="already exists; pass --force"):
        runplots.plot_run(folder)
    assert (folder / "plot.png").read_bytes() == b"mine"


def test_a_folder_that_is_not_a_run_is_a_one_line_error_naming_it(tmp_path, run,
                                                                  assert_one_line_error):
    (tmp_path / "empty").mkdir()
    line = assert_one_line_error(run("plot", tmp_path / "empty"))
    assert f"{tmp_path / 'empty'} is not a run folder" in line and "--out folder" in line
    assert not (tmp_path / "empty" / "plot.png").exists()


def test_a_corrupt_steps_log_is_a_one_line_error_and_nothing_is_written(tmp_path, run,
                                                                        assert_one_line_error):
    folder = search_folder(tmp_path / "s")
    with open(folder / "steps.jsonl", "a") as log:
        log.write("\x00\x01 garbage\n" + json.dumps({**STEP, "step": 2}) + "\n")
    line = assert_one_line_error(run("plot", folder))
    assert f"{folder / 'steps.jsonl'} line 3 is not a record" in line
    assert not (folder / "plot.png").exists()


def test_an_empty_steps_log_is_a_one_line_error(tmp_path, run, assert_one_line_error):
    folder = search_folder(tmp_path / "s")
    (folder / "steps.jsonl").write_text("")
    assert "holds no records" in assert_one_line_error(run("plot", folder))


def test_out_must_be_a_png_file(tmp_path, run, assert_one_line_error):
    folder = search_folder(tmp_path / "s")
    line = assert_one_line_error(run("plot", folder, "--out", tmp_path / "plot.pdf"))
    assert "does not end in .png" in line


def test_a_search_caption_names_its_drawn_fitness_images():
    sub = runplots._search_setting({"config": {"subsample": 0.5, "redraw_steps": 1000}})
    assert "fitness on a random 50% of all training images (redrawn every 1,000 steps)" in sub
    both = runplots._search_setting({"config": {"subsample": 0.25, "train_images": 300,
                                       "shift_pixels": 2, "redraw_steps": 7}})
    assert "on a random 25% of 300 training images shifted up to 2 pixels (redrawn every 7 " \
           "steps)" in both
    plain = runplots._search_setting({"config": {}})
    assert "on all training images," in plain and "redrawn" not in plain

"""Tests for the command line (cli.main): train -> eval round trip on digits, and one-line errors.

Offline: digits only (scikit-learn), tiny epochs, so the whole file runs in well under a minute.
"""

import json
import os
import pathlib
import re
import shutil

import numpy as np
import pytest
from helpers import TINY

from minisense import __version__, checkpoint, ensemble
from minisense.data import load_dataset
from minisense.errors import MinisenseError
from minisense_cli.main import default_out


def weights(run_dir: pathlib.Path) -> dict:
    with np.load(run_dir / "model.npz", allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def test_version_prints_package_version(run, assert_ok):
    result = run("--version")
    assert_ok(result)
    assert __version__ in result.output


def test_train_writes_checkpoint_and_metrics(trained_run):
    out, output = trained_run
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.npz", "model.json", "metrics.json"):
        assert (out / name).is_file()
        # written atomically, yet with the mode of an ordinary file, not mkstemp's private 0600
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert "scikit-learn digits" in output and "1077 train" in output
    assert f"checkpoint: {out / 'model.npz'}" in output
    meta = json.loads((out / "model.json").read_text())
    assert meta["dataset"] == "digits" and meta["requested_sparsity"] == 80
    assert meta["pruning"] == "global" and meta["seed"] == 0
    assert meta["config"]["epochs"] == {"dense": 1, "prune": 1, "sparse": 0, "binary": 0}
    assert set(meta["steps"]) == {"dense", "prune", "sparse", "binary"}
    assert meta["accuracy"]["test"] == meta["steps"]["binary"]["test_accuracy"]
    assert isinstance(meta["command"], list) and meta["wall_seconds"] > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == meta["accuracy"]
    assert [r["step"] for r in metrics["history"] if r.get("done")] == list(meta["steps"])


def test_checkpoint_is_int8_ternary_with_exact_global_zero_count(trained):
    arrays = weights(trained)
    assert set(arrays) == {"layer1.0", "layer2.0", "fc"}
    for w in arrays.values():
        assert w.dtype == np.int8 and np.isin(w, (-1, 0, 1)).all()
    total = sum(w.size for w in arrays.values())
    zeros = sum(int((w == 0).sum()) for w in arrays.values())
    assert zeros == round(total * 0.8)


def test_eval_prints_test_accuracy_recorded_at_training(trained, tmp_path, run, assert_ok):
    out = trained
    test_accuracy = json.loads((out / "model.json").read_text())["accuracy"]["test"]
    result = run("eval", out / "model.npz", "--json", tmp_path / "eval.json")
    assert_ok(result)
    assert re.search(rf"test accuracy {100 * test_accuracy:.2f}%", result.output), result.output
    assert "sparsity 80.00%" in result.output and "layer2.0" in result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["test_accuracy"] == test_accuracy and report["dataset"] == "digits"
    assert report["sparsity"] == pytest.approx(80.0, abs=0.01)


@pytest.mark.slow
def test_train_same_seed_twice_gives_identical_weights(trained, tmp_path, run, assert_ok):
    assert_ok(run("train", *TINY, "--out", tmp_path / "again"))
    first, second = weights(trained), weights(tmp_path / "again")
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].tobytes() == second[name].tobytes(), name


@pytest.mark.slow
def test_train_prune_every_epoch_reaches_the_same_sparsity_and_records_it(trained, tmp_path, run,
                                                                          assert_ok):
    assert_ok(run("train", *TINY, "--prune-every", "epoch", "--out", tmp_path / "b"))
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    first = json.loads((trained / "metrics.json").read_text())
    assert metrics["config"]["prune_every"] == "epoch"
    assert first["config"]["prune_every"] == "batch"          # the default
    assert metrics["actual_sparsity"] == first["actual_sparsity"]


def test_default_out_names_dataset_sparsity_and_seed():
    assert default_out("digits", 90.0, 0) == pathlib.Path("runs/digits-p90-s0")
    assert default_out("mnist", 92.5, 3) == pathlib.Path("runs/mnist-p92.5-s3")


@pytest.mark.slow
def test_a_run_folder_with_a_dot_in_its_name_holds_the_run(tmp_path, run, assert_ok):
    # A folder like default_out's "mnist-p92.5-s3" was once taken for a file stem: the checkpoint
    # landed beside it and metrics.json in its parent, shared with every other such run.
    out = tmp_path / "digits-p92.5-lr0.01"
    assert_ok(run("train", *TINY, "--out", out))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    assert {"model.npz", "model.json", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert_ok(run("eval", out))


@pytest.mark.parametrize("args, says", [
    (["--sparsity", "100"], "0<=x<100"),
    (["--sparsity", "-1"], "0<=x<100"),
    (["--dataset", "cifar"], "'cifar' is not one of"),
    (["--pruning", "random"], "'random' is not one of"),
    (["--prune-every", "step"], "'step' is not one of"),
    (["--epochs-prune", "0"], "epochs for step 'prune'"),  # the library's error, not click's
    (["--class-weights", "1,x,1"], "not comma-separated numbers"),
    (["--class-weights", "1,0,1"], "finite and > 0"),
    (["--class-weights", "1,inf,1"], "finite and > 0"),
    (["--class-weights", "1,2,1"], "3 class weights for the 10 classes of digits"),
])
def test_train_bad_input_is_one_line_error(args, says, tmp_path, run, assert_one_line_error):
    line = assert_one_line_error(run("train", *args, "--out", tmp_path / "never"))
    assert says in line
    assert not (tmp_path / "never").exists()


def test_eval_missing_path_is_one_line_error(tmp_path, run, assert_one_line_error):
    assert "does not exist" in assert_one_line_error(run("eval", tmp_path / "nothing"))


def test_eval_corrupt_npz_is_one_line_error(trained_copy, run, assert_one_line_error):
    (trained_copy / "model.npz").write_bytes(b"this is not a zip file \x00\xff" * 10)
    assert "unreadable" in assert_one_line_error(run("eval", trained_copy / "model.npz"))


def test_eval_car_checkpoint_on_digits_is_one_line_error(trained_copy, run, assert_one_line_error):
    meta = json.loads((trained_copy / "model.json").read_text())
    meta["architecture"] = "car"
    (trained_copy / "model.json").write_text(json.dumps(meta))
    line = assert_one_line_error(run("eval", trained_copy, "--dataset", "digits"))
    assert "car" in line


@pytest.mark.parametrize("text", ['{"name": "some other model"}', "[1, 2, 3]", "not json {"])
def test_eval_foreign_json_is_one_line_error(trained_copy, text, run, assert_one_line_error):
    (trained_copy / "model.json").write_text(text)
    line = assert_one_line_error(run("eval", trained_copy))
    assert "model.json" in line


def test_unknown_command_is_one_line_error(run, assert_one_line_error):
    assert "No such command" in assert_one_line_error(run("bogus"))


# -- minisense search -----------------------------------------------------------------------------

SEARCH = ["--neighbours", "10", "--max-steps", "12", "--train-images", "200", "--seed", "0"]


@pytest.mark.slow
def test_search_from_random_init_writes_records_and_checkpoints(tmp_path, run, assert_ok):
    out = tmp_path / "s"
    result = run("search", "--init", "random", "--sparsity", "80", "--dataset", "digits",
                 *SEARCH, "--out", out)
    assert_ok(result)
    assert "best (step" in result.output
    lines = (out / "steps.jsonl").read_text().splitlines()
    assert len(lines) == 13
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 12
    assert (out / "best" / "model.npz").exists() and (out / "current" / "model.npz").exists()


@pytest.mark.slow
def test_search_from_a_checkpoint_keeps_its_family(trained, tmp_path, run, assert_ok):
    out = tmp_path / "s"
    result = run("search", "--checkpoint", trained, "--schedule", "alternate",
                 "--steps-per-layer", "2", "--repeats", "1", *SEARCH, "--out", out)
    assert_ok(result)
    before = json.loads((trained / "model.json").read_text())["family"]
    after = json.loads((out / "current" / "model.json").read_text())["family"]
    assert before == after


@pytest.mark.slow
def test_search_backprop_line_starts_from_the_search_start(tmp_path, run, assert_ok):
    common = ["--init", "random", "--sparsity", "80", "--dataset", "digits", "--seed", "3"]
    assert_ok(run("search", *common, "--max-steps", "4", "--out", tmp_path / "s"))
    result = run("search", *common, "--backprop", "--max-steps", "60", "--out", tmp_path / "b")
    assert_ok(result)
    assert "backprop: 60 batches" in result.output
    records = [json.loads(line) for line in
               (tmp_path / "b" / "backprop.jsonl").read_text().splitlines()]
    assert [r["batches"] for r in records] == [0, 50, 60]
    first = json.loads((tmp_path / "s" / "steps.jsonl").read_text().splitlines()[0])
    assert records[0]["test_accuracy"] == first["test_accuracy"]     # the very same network
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["last"] == records[-1]


@pytest.mark.slow
def test_search_backprop_line_keeps_its_best_and_last_networks(tmp_path, run, assert_ok):
    # 200 batches from this start: validation peaks at batch 150, so best and last differ.
    assert_ok(run("search", "--init", "random", "--sparsity", "80", "--dataset", "digits",
                  "--seed", "3", "--backprop", "--max-steps", "200", "--out", tmp_path / "b"))
    records = [json.loads(line) for line in
               (tmp_path / "b" / "backprop.jsonl").read_text().splitlines()]
    best = max(records, key=lambda r: r["validation_accuracy"])
    assert best != records[-1]
    # Loaded back, each network scores exactly what its record says.
    data = load_dataset("digits")
    for part, record in (("best", best), ("last", records[-1])):
        net, meta = checkpoint.load(tmp_path / "b" / part)
        assert meta["backprop"] == record
        assert net.accuracy(data.validation.images,
                            data.validation.labels) == record["validation_accuracy"]
        assert net.accuracy(data.test.images, data.test.labels) == record["test_accuracy"]
    # Named by its folder (car drive, ensemble), the line is its best network, as a search is.
    assert ensemble.member_paths([tmp_path / "b"]) == [tmp_path / "b" / "best"]
    shutil.rmtree(tmp_path / "b" / "best")
    with pytest.raises(MinisenseError, match="no network"):
        ensemble.member_paths([tmp_path / "b"])


@pytest.mark.parametrize("args", [
    ["--init", "random", "--sparsity", "80", "--neighbours", "0"],
    pytest.param(["--init", "random", "--sparsity", "80", "--layer", "layer3.0"],
                 marks=pytest.mark.slow),            # these two build the network: 1-2 s
    ["--init", "random", "--sparsity", "80", "--screen", "layer1.0"],
    ["--init", "random", "--sparsity", "80", "--screen", "layer1.0=-4"],
    pytest.param(["--init", "random", "--sparsity", "80", "--screen", "layer7.0=64"],
                 marks=pytest.mark.slow),
    ["--init", "random", "--sparsity", "80", "--layer-weight", "fc=nan"],
    ["--init", "random", "--sparsity", "80", "--layer-weight", "fc=inf"],
    ["--init", "random", "--sparsity", "100"],
    ["--init", "random"],
    ["--init", "random", "--sparsity", "80", "--shift-pixels", "0", "--redraw-steps", "10"],
    ["--init", "random", "--sparsity", "80", "--redraw-steps", "10"],     # idle: no shift
    ["--init", "random", "--sparsity", "80", "--subsample", "1", "--redraw-steps", "10"],
    ["--dataset", "carracing", "--init", "random", "--sparsity", "80", "--redraw-steps", "10"],
    ["--init", "random", "--sparsity", "80", "--shift-pixels", "9"],
    ["--init", "random", "--sparsity", "80", "--mirror"],                 # digits: no mirror class
    ["--init", "random", "--sparsity", "80", "--shift-pixels", "1", "--redraw-steps", "0"],
    ["--init", "random", "--sparsity", "80", "--class-weights", "1,1.5,1,1,1,1,1,1,1,1"],
    ["--init", "random", "--sparsity", "80", "--class-weights", "1,101,1,1,1,1,1,1,1,1"],
    pytest.param(["--init", "random", "--sparsity", "80", "--class-weights", "1,2,1"],
                 marks=pytest.mark.slow),
    ["--init", "random", "--sparsity", "80", "--backprop", "--class-weights", "1,2,1"],
    [],
])
def test_search_bad_input_is_a_one_line_error(tmp_path, args, run, assert_one_line_error):
    assert_one_line_error(run("search", "--dataset", "digits", *args, "--out", tmp_path / "s"))


def test_search_of_a_checkpoint_on_another_dataset_is_refused(trained, tmp_path, run,
                                                              assert_one_line_error):
    line = assert_one_line_error(run("search", "--checkpoint", trained, "--dataset", "mnist",
                                     "--out", tmp_path / "s"))
    assert "trained on digits" in line


# -- minisense bench ------------------------------------------------------------------------------

@pytest.mark.slow
def test_bench_train_prints_per_layer_times_and_the_matrix_product_baseline(tmp_path, run,
                                                                            assert_ok):
    result = run("bench", "train", "--dataset", "digits", "--batches", "2", "--repeats", "3",
                 "--json", tmp_path / "b.json")
    assert_ok(result)
    assert "layer2.0" in result.output and "matrix products alone" in result.output
    r = json.loads((tmp_path / "b.json").read_text())
    assert r["epoch_seconds"] > 0 and set(r["layers"]) >= {"layer1.0", "layer2.0", "fc"}
    assert len(r["ratios_by_repeat"]) == 3                  # each repeat: steps, then products
    assert r["ratio_to_gemm_floor"] == sorted(r["ratios_by_repeat"])[1]
    assert f"ratio {r['ratio_to_gemm_floor']:.2f}x" in result.output


@pytest.mark.slow
def test_bench_search_compares_delta_evaluation_with_the_full_forward(trained, tmp_path, run,
                                                                      assert_ok):
    result = run("bench", "search", "--dataset", "digits", "--images", "64",
                 "--seconds-per-layer", "0.2", "--checkpoint", trained,
                 "--json", tmp_path / "s.json")
    assert_ok(result)
    r = json.loads((tmp_path / "s.json").read_text())
    assert len(r["networks"]) == 2
    for net in r["networks"].values():
        for layer in ("layer1.0", "layer2.0", "fc"):
            assert net["layers"][layer]["agrees_with_oracle"]
            assert net["layers"][layer]["evals_per_second"] > 0


@pytest.mark.slow
def test_bench_search_times_screened_steps_against_whole_set_steps(tmp_path, run, assert_ok):
    result = run("bench", "search", "--dataset", "digits", "--images", "200",
                 "--seconds-per-layer", "0.2", "--screen-images", "64", "--screen",
                 "layer1.0=0", "--neighbours", "20", "--json", tmp_path / "s.json")
    assert_ok(result)
    assert "neighbours decided per second" in result.output
    layers = next(iter(json.loads((tmp_path / "s.json").read_text())["networks"].values()))[
        "layers"]
    assert "effective_speedup" not in layers["layer1.0"]             # S = 0: not screened
    for layer in ("layer2.0", "fc"):
        assert layers[layer]["screened_agrees_with_whole_set"]
        assert layers[layer]["screen_images"] == 64 and layers[layer]["effective_speedup"] > 0


@pytest.mark.slow
def test_bench_screening_counts_steps_where_the_slice_keeps_the_best_neighbour(tmp_path, run,
                                                                               assert_ok):
    result = run("bench", "screening", "--sparsity", "80", "--dataset", "digits", "--layer",
                 "layer2.0", "--steps", "4", "--neighbours", "20", "--json", tmp_path / "r.json")
    assert_ok(result)
    r = json.loads((tmp_path / "r.json").read_text())
    rows = {(row["screen_images"], row["confirm"]): row for row in r["rows"]}
    assert set(rows) == {(640, m) for m in (1, 3, 5, 10)}          # 1,077 images: S < n only
    found = [rows[640, m]["best_found"] for m in (1, 3, 5, 10)]
    assert found == sorted(found) and found[-1] <= 4               # more confirmed, more found
    assert all(row["improvement_found"] <= r["whole_set"]["improving_steps"] for row in r["rows"])


@pytest.mark.slow
def test_bench_screening_of_an_unknown_layer_is_a_one_line_error(run, assert_one_line_error):
    assert_one_line_error(run("bench", "screening", "--sparsity", "80", "--dataset", "digits",
                              "--layer", "fc7"))


@pytest.mark.parametrize("command", [
    ["train", "--dataset", "digits"],
    ["search", "--init", "random", "--dataset", "digits", "--max-steps", "1"],
    ["bench", "search", "--dataset", "digits"],
    ["bench", "screening", "--dataset", "digits"],
    ["car", "dagger", "--data-dir", ".", "--out", "x"],
])
def test_a_sparsity_below_one_percent_is_taken_for_a_fraction(command, run,
                                                              assert_one_line_error):
    # 0.8 meant as 80%: taken as written it searches a nearly dense network, an hour's run
    # that looks right and answers another question
    line = assert_one_line_error(run(*command, "--sparsity", "0.8"))
    assert "0.8% zeros" in line and "give 80" in line


def test_a_search_says_its_sparsity_first(tmp_path, run, assert_ok):
    result = run("search", "--init", "random", "--sparsity", 70, "--dataset", "digits",
                 "--max-steps", 1, "--out", tmp_path / "s")
    assert_ok(result)
    assert result.output.startswith("start: 70.00% zeros, validation ")

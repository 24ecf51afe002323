"""Tests for minisense.runlogs: the series a run's picture draws are the values its files hold.

Every run folder here is written by hand in tmp_path (a few records), so the expected series are
known exactly; the pictures of real runs are tested in test_runplots.py.
"""

import json

import numpy as np
import pytest

from minisense import runlogs
from minisense.errors import MinisenseError


def search_record(step, layer, accepted, validation, seconds=None):
    return {"step": step, "layer": layer, "neighbours": 0 if step == 0 else 10,
            "accepted": accepted, "fitness": 0.1 * step, "train_accuracy": validation + 0.01,
            "validation_accuracy": validation, "test_accuracy": validation - 0.01,
            "seconds": float(step) / 2 if seconds is None else seconds}


def write_search(folder, records, log="steps.jsonl", summary=None, config=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or {"seed": 3, "neighbours": 10}))
    (folder / log).write_text("".join(json.dumps(r) + "\n" for r in records))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


# step 0 is the start; then fc, fc, layer2.0, fc, layer2.0 with moves at steps 1, 3, 4
FULL = [search_record(0, None, False, 0.10), search_record(1, "fc", True, 0.20),
        search_record(2, "fc", False, 0.20), search_record(3, "layer2.0", True, 0.30),
        search_record(4, "fc", True, 0.25), search_record(5, "layer2.0", False, 0.25)]


def test_search_series_holds_the_records_values_and_exact_counts_from_a_full_log(tmp_path):
    s = runlogs.search_series(write_search(tmp_path / "s", FULL), window_steps=2)
    assert s["log"].name == "steps.jsonl" and s["every"] == 1
    assert s["step"].tolist() == [0, 1, 2, 3, 4, 5]
    for key in ("seconds", "train_accuracy", "validation_accuracy", "test_accuracy"):
        assert s[key].tolist() == [r[key] for r in FULL]
    assert s["layer"] == [None, "fc", "fc", "layer2.0", "fc", "layer2.0"]
    assert s["accepted"].tolist() == [False, True, False, True, True, False]
    assert s["weight"].tolist() == [0, 1, 1, 1, 1, 1]
    assert list(s["accepted_by_layer"]) == ["fc", "layer2.0"]
    assert s["accepted_by_layer"]["fc"].tolist() == [0, 1, 1, 1, 2, 2]
    assert s["accepted_by_layer"]["layer2.0"].tolist() == [0, 0, 0, 1, 1, 1]
    # moves per step over the last 2 steps: (1), (1, 2), (2, 3), (3, 4), (4, 5)
    assert np.isnan(s["rate"][0])
    assert s["rate"][1:].tolist() == [1.0, 0.5, 0.5, 1.0, 0.5]
    # no summary.json: the first best accepted record by validation (step 3, not step 4)
    assert s["best"] == {"step": 3, "validation_accuracy": 0.30, "test_accuracy": 0.29,
                         "seconds": 1.5}
    assert s["backprop"] is None and s["summary"] == {} and s["config"]["seed"] == 3


def test_the_best_network_is_the_summarys_and_its_seconds_are_read_between_records(tmp_path):
    best = {"step": 3, "validation_accuracy": 0.31, "test_accuracy": 0.28}
    s = runlogs.search_series(write_search(tmp_path / "s", FULL[::2],
                                           summary={"best": best, "accepted": 3}))
    assert s["best"] == {**best, "seconds": 1.5}      # step 3 lies between records 2 and 4


def test_a_thinned_log_counts_each_record_for_the_steps_since_the_one_before(tmp_path):
    # every 50th step kept, and the best (step 120) between two of them
    records = [search_record(0, None, False, 0.1), search_record(50, "fc", True, 0.2),
               search_record(100, "fc", False, 0.2), search_record(120, "layer2.0", True, 0.4),
               search_record(150, "fc", True, 0.3)]
    s = runlogs.search_series(write_search(tmp_path / "s", records, "steps-every50.jsonl"))
    assert s["log"].name == "steps-every50.jsonl" and s["every"] == 50
    assert s["weight"].tolist() == [0, 50, 50, 20, 30]
    assert s["accepted_by_layer"]["fc"].tolist() == [0, 50, 50, 50, 80]
    assert s["accepted_by_layer"]["layer2.0"].tolist() == [0, 0, 0, 20, 20]
    assert s["window"] == 500                     # at least 10 records' worth
    assert s["rate"][-1] == pytest.approx(100 / 150)


def test_the_full_log_is_read_before_the_finest_thinned_one(tmp_path):
    folder = write_search(tmp_path / "s", FULL, "steps-every200.jsonl")
    (folder / "steps-every50.jsonl").write_text((folder / "steps-every200.jsonl").read_text())
    (folder / "steps-everyday.jsonl").write_text("not a log\n")
    assert runlogs.step_log(folder).name == "steps-every50.jsonl"
    (folder / "steps.jsonl").write_text((folder / "steps-every200.jsonl").read_text())
    assert runlogs.step_log(folder).name == "steps.jsonl"


def test_a_last_line_being_written_is_left_out(tmp_path):
    folder = write_search(tmp_path / "s", FULL)
    with open(folder / "steps.jsonl", "a") as log:
        log.write('{"step": 6, "layer": "fc", "acc')          # a running search's last line
    assert runlogs.search_series(folder)["step"].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("bad, says", [
    ('{"step": 2, "layer": "fc"', "line 3 is not a record"),          # cut short, not last
    ('{"step": 2, "validation_accuracy": "high"}', "line 3 is not a record"),
    ("[1, 2, 3]", "line 3 is not a record"),
    (json.dumps(search_record(1, "fc", True, 0.5)), "step 1 after 1"),   # steps out of order
])
def test_a_corrupt_line_is_a_one_line_error_naming_the_file_and_the_line(tmp_path, bad, says):
    folder = tmp_path / "s"
    write_search(folder, FULL[:2])
    lines = (folder / "steps.jsonl").read_text().splitlines()
    (folder / "steps.jsonl").write_text("\n".join(lines[:2] + [bad] + lines[2:]) + "\n" +
                                        json.dumps(FULL[3]) + "\n")
    with pytest.raises(MinisenseError, match=says) as error:
        runlogs.search_series(folder)
    assert str(folder / "steps.jsonl") in str(error.value) and "\n" not in str(error.value)


def test_an_empty_log_is_an_error(tmp_path):
    folder = write_search(tmp_path / "s", [])
    with pytest.raises(MinisenseError, match="holds no records"):
        runlogs.search_series(folder)


def test_run_kind_tells_each_kind_of_run_folder_apart(tmp_path):
    write_search(tmp_path / "search", FULL)
    (tmp_path / "psiren").mkdir()
    (tmp_path / "psiren" / "metrics.json").write_text("{}")
    write_search(tmp_path / "family" / "chain-0", FULL)
    (tmp_path / "backprop").mkdir()
    (tmp_path / "backprop" / "backprop.jsonl").write_text("")
    kinds = {name: runlogs.run_kind(tmp_path / name)
             for name in ("search", "psiren", "family", "backprop")}
    assert kinds == {"search": "search", "psiren": "psiren", "family": "chains",
                     "backprop": "backprop"}


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("x"), "is a file, not a run folder"),
    (lambda p: p.mkdir(), "is not a run folder"),
    (lambda p: (p.mkdir(), (p / "config.json").write_text("{}")), "holds no steps.jsonl"),
])
def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path, make, says):
    make(tmp_path / "x")
    with pytest.raises(MinisenseError, match=says):
        runlogs.run_kind(tmp_path / "x")


def test_a_folder_holding_a_run_names_it(tmp_path):
    write_search(tmp_path / "figure" / "sense", FULL)
    with pytest.raises(MinisenseError, match=r"its sense/ is one"):
        runlogs.run_kind(tmp_path / "figure")


def history(epochs: dict, zeros: dict) -> list[dict]:
    """A p-SIREN history: an epoch record per epoch (loss 1/k), a record per finished step."""
    records, k = [], 0
    for step, n in epochs.items():
        for epoch in range(n):
            k += 1
            records.append({"step": step, "epoch": epoch + 1, "loss": 1 / k,
                            "validation_accuracy": k / 100, "seconds": 1.0})
        records.append({"step": step, "epochs": n, "done": True, "validation_accuracy": k / 100,
                        "test_accuracy": k / 100 - 0.005, "zeros": zeros[step], "seconds": 1.0})
    return records


def write_psiren(folder, prune_every=None, epochs=None):
    epochs = epochs or {"dense": 2, "prune": 3, "sparse": 1, "binary": 2}
    config = {"sparsity": 90.0, "epochs": epochs, "pruning": "global"}
    if prune_every is not None:
        config["prune_every"] = prune_every
    folder.mkdir()
    metrics = {"dataset": "digits", "requested_sparsity": 90.0, "seed": 0, "config": config,
               "family": {"fc": {"-1": 10, "0": 72, "+1": 18}},       # 100 weights
               "history": history(epochs, {"dense": 0, "prune": 72, "sparse": 72,
                                           "binary": 72})}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder, metrics


def test_psiren_series_holds_each_epochs_loss_and_validation_and_each_steps_span(tmp_path):
    folder, metrics = write_psiren(tmp_path / "p", "batch")
    s = runlogs.psiren_series(folder)
    epochs = [r for r in metrics["history"] if not r.get("done")]
    assert s["epoch"].tolist() == list(range(1, 9))
    assert s["loss"].tolist() == [r["loss"] for r in epochs]
    assert s["validation_accuracy"].tolist() == [r["validation_accuracy"] for r in epochs]
    assert s["step"] == ["dense"] * 2 + ["prune"] * 3 + ["sparse"] + ["binary"] * 2
    assert [(d["start"], d["end"]) for d in s["steps"].values()] == [(0, 2), (2, 5), (5, 6),
                                                                       (6, 8)]
    done = {r["step"]: r for r in metrics["history"] if r.get("done")}
    assert [d["test_accuracy"] for d in s["steps"].values()] == \
        [done[step]["test_accuracy"] for step in s["steps"]]
    assert [d["sparsity"] for d in s["steps"].values()] == [0, 72, 72, 72]
    # every batch: a straight line from 0 to the recorded 72% over step 2
    assert s["sparsity"]["epoch"].tolist() == [0, 2, 5, 8]
    assert s["sparsity"]["percent"].tolist() == [0, 0, 72, 72]
    assert "history" not in s["meta"] and s["meta"]["dataset"] == "digits"


@pytest.mark.parametrize("prune_every", ["epoch", None])   # None: a run saved before the option
def test_psiren_series_draws_a_stair_when_the_mask_moves_once_per_epoch(tmp_path, prune_every):
    s = runlogs.psiren_series(write_psiren(tmp_path / "p", prune_every)[0])
    assert s["sparsity"]["epoch"].tolist() == [0, 2, 2, 3, 3, 4, 4, 5, 8]
    assert s["sparsity"]["percent"].tolist() == pytest.approx([0, 0, 24, 24, 48, 48, 72, 72,
                                                               72])


def test_metrics_without_a_history_is_a_one_line_error(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "metrics.json").write_text(json.dumps({"config": {"epochs": {}}}))
    with pytest.raises(MinisenseError, match="holds no history"):
        runlogs.psiren_series(tmp_path / "p")


def test_chains_series_reads_the_members_in_chain_order(tmp_path):
    for i in (10, 2, 0):
        write_search(tmp_path / "c" / f"chain-{i}", FULL, config={"seed": i})
    c = runlogs.chains_series(tmp_path / "c")
    assert list(c["members"]) == ["chain-0", "chain-2", "chain-10"]
    assert [m["config"]["seed"] for m in c["members"].values()] == [0, 2, 10]
    assert c["family"] == {}


def test_a_backprop_line_in_a_search_folder_is_read_with_it(tmp_path):
    folder = write_search(tmp_path / "s", FULL)
    line = [{"batches": b, "seconds": b / 10, "validation_accuracy": 0.5, "test_accuracy": 0.4}
            for b in (0, 50, 100)]
    (folder / "backprop.jsonl").write_text("".join(json.dumps(r) + "\n" for r in line))
    assert runlogs.search_series(folder)["backprop"] == line

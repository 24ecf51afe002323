"""Fault injection: bad inputs, hostile files, failed writes, kills and concurrent writers.

Every case must end in the right behaviour or ONE line ``Error: ...`` (exit code 1 or 2), never a
traceback, never a silently wrong result, never lost data. Offline: digits only, tiny budgets.
The classes: corrupt, truncated or unreadable inputs; hostile checkpoints; bad option values
(nan, inf, negative, zero, huge); write failures (a file in the way, a simulated full disk);
kill -9 during ``train`` and ``search``; Ctrl-C and SIGTERM during ``search``; two writers on
one run folder; a half-written log line.
"""

import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import TINY

from minisense import car, checkpoint, data, ensemble, files, psiren, reproduce, runs
from minisense.fast import delta
from minisense.network import in_engine
from minisense.runs import random_network
from minisense.swaps import sample_swaps

SEARCH = ["search", "--init", "random", "--sparsity", "80", "--dataset", "digits",
          "--neighbours", "10", "--train-images", "300"]
BACKPROP = ["search", "--init", "random", "--sparsity", "80", "--dataset", "digits", "--backprop"]


def ends_in_one_line_error(result) -> str:
    """Work reported so far, then one line ``Error: ...``: a failure found after the start."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "Traceback" not in result.output, result.output
    assert sum(line.startswith("Error: ") for line in lines) == 1
    return lines[-1]


# -- hostile checkpoints ---------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, says", [
    ("thresholds", {"layer1.0": -5, "layer2.0": 3}, "threshold of layer1.0 is -5"),
    ("thresholds", {"layer1.0": 2.5, "layer2.0": 3}, "threshold of layer1.0 is 2.5"),
    ("thresholds", {"layer1.0": "7", "layer2.0": 3}, "threshold of layer1.0 is '7'"),
    ("thresholds", {"layer1.0": True, "layer2.0": 3}, "threshold of layer1.0 is True"),
    ("thresholds", {"layer1.0": 4}, "thresholds must name the hidden layers"),
    ("last_gain", 0, "last_gain is 0"),
    ("last_gain", -1.5, "last_gain is -1.5"),
    ("last_gain", "nan", "last_gain is 'nan'"),
    ("last_gain", float("nan"), "last_gain is nan"),
])
def test_a_checkpoint_with_out_of_range_scales_is_refused(trained_copy, field, value, says, run,
                                                          assert_one_line_error):
    meta = json.loads((trained_copy / "model.json").read_text())
    meta[field] = value
    (trained_copy / "model.json").write_text(json.dumps(meta))
    assert says in assert_one_line_error(run("eval", trained_copy))


def test_a_pickled_or_reshaped_weight_file_is_refused(trained_copy, run, assert_one_line_error):
    meta = json.loads((trained_copy / "model.json").read_text())
    meta.pop("weights_sha256")                 # as an older checkpoint: only the content checks
    (trained_copy / "model.json").write_text(json.dumps(meta))
    with np.load(trained_copy / "model.npz") as f:
        weights = {k: f[k] for k in f.files}
    np.savez(trained_copy / "model.npz", **{**weights, "fc": np.array([object()], dtype=object)})
    assert "unreadable" in assert_one_line_error(run("eval", trained_copy))
    np.savez(trained_copy / "model.npz", **{**weights, "fc": weights["fc"][:, :-1]})
    assert "has shape" in assert_one_line_error(run("eval", trained_copy))


@pytest.mark.slow
def test_a_checkpoint_pair_from_two_saves_is_refused(trained_copy, tmp_path, run, assert_ok,
                                                     assert_one_line_error):
    """A save killed between its two renames leaves a new model.npz beside the old model.json."""
    other = tmp_path / "other"
    assert_ok(run("train", *TINY, "--sparsity", "90", "--out", other))
    shutil.copy(other / "model.npz", trained_copy / "model.npz")
    assert "does not match its model.json" in assert_one_line_error(run("eval", trained_copy))


def test_an_unreadable_data_file_is_a_one_line_error(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem in data.FILES:
        (folder / (stem + ".gz")).write_bytes(b"x")

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(data, "_md5", denied)
    with pytest.raises(data.MinisenseError, match="cannot read .*Permission denied"):
        data.load_dataset("mnist", tmp_path, download=False)


# -- bad option values -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["train", *TINY, "--lr", "nan"],
    ["train", *TINY, "--lr-binary", "inf"],
    ["train", *TINY, "--lr", "-0.1"],
    ["train", *TINY, "--sparsity", "nan"],
    [*SEARCH, "--budget-minutes", "nan"],
    [*SEARCH, "--budget-minutes", "0"],
    [*SEARCH, "--anneal", "nan"],
    [*SEARCH, "--anneal", "-1"],
    [*SEARCH, "--anneal-half-life", "inf"],
    [*SEARCH, "--margin-scale", "0"],
    [*SEARCH, "--margin-scale", "nan"],
    [*SEARCH, "--subsample", "0"],
    [*SEARCH, "--subsample", "1.5"],
    [*SEARCH, "--subsample", "nan"],
    [*SEARCH, "--neighbours", "1000000000"],
    [*SEARCH, "--neighbours", "0"],
    [*SEARCH, "--layer-weight", "fc=-1"],
    [*SEARCH, "--screen", "fc=1e3"],
    pytest.param([*SEARCH, "--schedule", "fc", "--layer", "layer1.0"],
                 marks=pytest.mark.slow),            # builds the network first: 1-2 s
    ["search", "--init", "random", "--sparsity", "nan", "--dataset", "digits"],
    ["bench", "search", "--dataset", "digits", "--sparsity", "nan"],
    ["bench", "search", "--dataset", "digits", "--sparsity", "-1"],
    ["bench", "search", "--dataset", "digits", "--seconds-per-layer", "inf"],
])
def test_bad_option_values_are_one_line_errors(args, tmp_path, run, assert_one_line_error):
    assert_one_line_error(run(*args, "--out", tmp_path / "o") if args[0] in ("train", "search")
                          else run(*args))


@pytest.mark.slow
def test_a_diverging_learning_rate_stops_with_a_one_line_error(tmp_path, run):
    result = run("train", *TINY, "--lr", "1e30", "--out", tmp_path / "o")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()              # progress, then the error
    assert lines[-1].startswith("Error: p-SIREN diverged") and "--lr" in lines[-1]
    assert "Traceback" not in result.output and "Warning" not in result.output


# -- run folders: never overwritten, never two writers --------------------------------------------

@pytest.mark.slow
def test_train_into_a_finished_run_is_refused_unless_forced(trained_copy, run, assert_ok,
                                                            assert_one_line_error):
    before = (trained_copy / "model.npz").read_bytes()
    assert "--force" in assert_one_line_error(run("train", *TINY, "--sparsity", "90", "--out",
                                                  trained_copy))
    assert (trained_copy / "model.npz").read_bytes() == before
    assert_ok(run("train", *TINY, "--sparsity", "90", "--out", trained_copy, "--force"))
    assert json.loads((trained_copy / "model.json").read_text())["requested_sparsity"] == 90


@pytest.mark.slow
def test_a_second_writer_of_a_run_folder_is_refused_naming_the_holder(tmp_path, run, assert_ok,
                                                                      assert_one_line_error):
    out = tmp_path / "s"
    with files.folder_lock(out):
        line = assert_one_line_error(run(*SEARCH, "--max-steps", "3", "--out", out))
        assert f"in use by process {os.getpid()}" in line
        line = assert_one_line_error(run("train", *TINY, "--out", out))
        assert f"in use by process {os.getpid()}" in line
    assert_ok(run(*SEARCH, "--max-steps", "3", "--out", out))        # free again


@pytest.mark.slow
def test_two_searches_started_at_once_on_one_folder_leave_one_clean_record(tmp_path):
    out = tmp_path / "s"
    args = [sys.executable, "-m", "minisense_cli.main", *SEARCH, "--max-steps", "40",
            "--out", str(out)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    refused = outputs[[p.returncode for p in procs].index(1)].strip().splitlines()
    # Which refusal comes depends on timing: the second process finds the folder locked while
    # the first one runs, or (on a loaded machine) already holding the finished search.
    assert refused[-1].startswith("Error: "), refused
    assert "in use by process" in refused[-1] or "already holds a search" in refused[-1], refused
    assert "Traceback" not in "".join(refused)
    steps = [json.loads(x)["step"] for x in (out / runs.LOG_FILE).read_text().splitlines()]
    assert steps == list(range(41))


# -- write failures --------------------------------------------------------------------------------

def test_an_out_folder_under_a_file_is_a_one_line_error(trained, tmp_path, run,
                                                        assert_one_line_error):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert "cannot write" in assert_one_line_error(run("train", *TINY, "--out", blocker / "run"))
    assert "cannot write" in assert_one_line_error(run(*SEARCH, "--max-steps", "2", "--out",
                                                       blocker / "s"))
    assert "a file stands where" in ends_in_one_line_error(run("eval", trained, "--json",
                                                                blocker / "r.json"))
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_a_full_disk_ends_a_search_with_one_line_and_its_last_save_resumable(
        tmp_path, monkeypatch, run, assert_ok, assert_one_line_error):
    """ENOSPC is simulated (mounting a small tmpfs needs privileges a test may not have)."""
    out = tmp_path / "s"
    assert_ok(run(*SEARCH, "--max-steps", "10", "--out", out))
    real = files.atomic_write_bytes

    def full(path, payload, sync=True):
        raise files.write_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(files, "atomic_write_bytes", full)
    line = assert_one_line_error(run("search", "--resume", out, "--max-steps", "30"))
    assert "No space left on device" in line
    monkeypatch.setattr(files, "atomic_write_bytes", real)


    def state_full(path, payload, sync=True):          # the disk fills during the climb
        if pathlib.Path(path).name == runs.STATE_FILE:
            full(path, payload)
        real(path, payload, sync)

    monkeypatch.setattr(files, "atomic_write_bytes", state_full)
    assert "No space left" in ends_in_one_line_error(run("search", "--resume", out,
                                                         "--max-steps", "25"))
    monkeypatch.setattr(files, "atomic_write_bytes", real)
    assert_ok(run("search", "--resume", out, "--max-steps", "30"))
    steps = [json.loads(x)["step"] for x in (out / runs.LOG_FILE).read_text().splitlines()]
    assert steps == list(range(31))


# -- resuming: damaged records, extended budgets ---------------------------------------------------

@pytest.fixture
def finished_search(tmp_path, run, assert_ok):
    """finished_search(steps=30) -> the folder of a finished search of ``steps`` steps."""
    def search(steps=30) -> pathlib.Path:
        out = tmp_path / f"s{steps}"
        assert_ok(run(*SEARCH, "--max-steps", steps, "--out", out))
        return out
    return search


@pytest.mark.slow
def test_resume_drops_a_half_written_last_log_line_and_reaches_the_same_network(
        tmp_path, run, assert_ok, finished_search):
    whole = finished_search(30)
    part = tmp_path / "part"
    assert_ok(run(*SEARCH, "--max-steps", "12", "--out", part))
    with open(part / runs.LOG_FILE, "a") as log:
        log.write('{"step": 13, "layer": "fc", "neigh')             # the disk filled up here
    assert_ok(run("search", "--resume", part, "--max-steps", "30"))
    assert (whole / runs.STATE_FILE).exists()
    a, b = (checkpoint.load(p / "current")[0].ternary_weights() for p in (whole, part))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    steps = [json.loads(x)["step"] for x in (part / runs.LOG_FILE).read_text().splitlines()]
    assert steps == list(range(31))


@pytest.mark.slow
def test_resume_with_a_missing_log_or_a_truncated_state_is_a_one_line_error(
        tmp_path, run, assert_one_line_error, finished_search):
    out = finished_search(5)
    (out / runs.LOG_FILE).rename(out / "kept.jsonl")
    assert "steps.jsonl is missing" in assert_one_line_error(run("search", "--resume", out))
    (out / "kept.jsonl").rename(out / runs.LOG_FILE)
    state = (out / runs.STATE_FILE).read_bytes()
    (out / runs.STATE_FILE).write_bytes(state[:len(state) // 2])
    assert "cannot resume" in assert_one_line_error(run("search", "--resume", out))


@pytest.mark.slow
def test_resume_after_a_kill_between_the_two_files_of_a_checkpoint(
        tmp_path, run, assert_ok, assert_one_line_error, finished_search):
    whole = finished_search(30)
    out = tmp_path / "part"
    assert_ok(run(*SEARCH, "--max-steps", "15", "--out", out))
    shutil.copy(whole / "current" / "model.npz", out / "current" / "model.npz")   # npz renamed,
    assert "does not match" in assert_one_line_error(run("eval", out / "current"))   # json was not
    assert_ok(run("search", "--resume", out, "--max-steps", "30"))
    assert_ok(run("eval", out / "current"))                          # the pair is whole again
    a, b = (checkpoint.load(p / "current")[0].ternary_weights() for p in (whole, out))
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_extends_the_step_budget_and_refuses_to_change_settings(
        tmp_path, run, assert_ok, assert_one_line_error, finished_search):
    out = finished_search(10)
    line = assert_one_line_error(run("search", "--resume", out, "--neighbours", "50"))
    assert "--neighbours" in line
    result = assert_ok(run("search", "--resume", out, "--max-steps", "20"))
    assert "20 steps" in result.output
    assert json.loads((out / "config.json").read_text())["max_steps"] == 20


# -- kill -9 ---------------------------------------------------------------------------------------

def kill_after(args, seconds: float) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "minisense_cli.main", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [4.0, 7.0])
def test_kill_9_during_search_then_resume_reaches_the_uninterrupted_network(
        tmp_path, delay, run, assert_ok, finished_search):
    whole = finished_search(60)
    out = tmp_path / "killed"
    kill_after([*SEARCH, "--max-steps", "60", "--out", out], delay)
    if not (out / runs.STATE_FILE).exists():              # killed before its first save
        assert_ok(run(*SEARCH, "--max-steps", "60", "--out", out))
    else:
        assert_ok(run("search", "--resume", out))
    a, b = (checkpoint.load(p / "current")[0].ternary_weights() for p in (whole, out))
    assert all(np.array_equal(a[k], b[k]) for k in a)


# -- Ctrl-C and kill (SIGINT, SIGTERM) ------------------------------------------------------------

def _stop_line(result) -> str:
    """The one line a stopped search ends with (no traceback, no click "Aborted!")."""
    assert "Traceback" not in result.output and "Aborted" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: stopped by SIGINT at step "), result.output
    return lines[-1]


def test_ctrl_c_during_search_names_the_folder_to_resume_and_resume_reaches_the_same_network(
        tmp_path, run, assert_ok, finished_search, monkeypatch):
    whole = finished_search(30)
    out = tmp_path / "stopped"
    recorded = runs.SearchRun.recorded

    def ctrl_c_at_step_12(self, record):
        recorded(self, record)
        if record["step"] == 12:
            raise KeyboardInterrupt
    monkeypatch.setattr(runs.SearchRun, "recorded", ctrl_c_at_step_12)
    result = run(*SEARCH, "--max-steps", "30", "--out", out)
    assert result.exit_code == 130
    line = _stop_line(result)
    assert "at step 12;" in line and f"--resume {out}'" in line
    monkeypatch.undo()
    assert_ok(run("search", "--resume", out))
    a, b = (checkpoint.load(p / "current")[0].ternary_weights() for p in (whole, out))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_ctrl_c_before_a_search_first_saves_says_to_start_again(tmp_path, run, monkeypatch):
    def ctrl_c(self, on_step=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(runs.SearchRun, "run", ctrl_c)
    result = run(*SEARCH, "--max-steps", "30", "--out", tmp_path / "never")
    assert result.exit_code == 130
    assert _stop_line(result).endswith("before its first save; start it again")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_search_ends_in_one_line_and_the_run_resumes(tmp_path, sig, run,
                                                                      assert_ok):
    out = tmp_path / "signalled"
    # A job started in the background (``cmd &``, as CI may run the suite) inherits SIGINT
    # ignored, and Python then keeps it ignored: Ctrl-C comes from a terminal, so the search
    # gets the terminal's default, as a user's foreground run has it.
    proc = subprocess.Popen([sys.executable, "-m", "minisense_cli.main", *SEARCH, "--max-steps",
                             "1000000", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / runs.STATE_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)                       # wait until it searches (imports, first save)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: stopped by {sig.name} at step "), stderr
    assert f"--resume {out}'" in last
    step = int(last.split(" at step ")[1].split(";")[0])
    saved = json.loads((out / "current" / "model.json").read_text())["step"]
    assert 0 < saved <= step
    result = assert_ok(run("search", "--resume", out, "--max-steps", step + 5))
    assert f"{step + 5} steps" in result.output


def test_a_signal_inside_a_save_whose_cleanup_fails_still_stops_in_one_line(tmp_path):
    # A SIGTERM landing in numpy's savez made zipfile's cleanup raise ValueError over the
    # KeyboardInterrupt: the stop must still be the one-line error with the signal's exit code.
    from types import SimpleNamespace

    import click

    from minisense_cli.main import _stop_on_signals
    search = SimpleNamespace(out=tmp_path, state={"step": 7})
    with pytest.raises(click.ClickException) as caught:
        with _stop_on_signals(search, SimpleNamespace(end=lambda: None)):
            try:
                raise KeyboardInterrupt(signal.SIGTERM)
            except KeyboardInterrupt:
                raise ValueError("Can't close the ZIP file while there is an open writing "
                                 "handle on it") from None
    assert caught.value.exit_code == 128 + signal.SIGTERM
    assert caught.value.message.startswith("stopped by SIGTERM at step 7")
    with pytest.raises(ValueError, match="not a stop"):         # any other error passes through
        with _stop_on_signals(search, SimpleNamespace(end=lambda: None)):
            raise ValueError("not a stop")


@pytest.mark.slow
def test_kill_9_during_train_leaves_no_half_checkpoint(tmp_path, trained, run, assert_ok):
    out = tmp_path / "killed"
    kill_after(["train", *TINY, "--out", out], 5.0)
    if (out / "model.npz").exists() or (out / "model.json").exists():
        assert_ok(run("eval", out))                   # whatever is there is a whole checkpoint
    assert_ok(run("train", *TINY, "--out", out, "--force"))
    with np.load(out / "model.npz") as a, np.load(trained / "model.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


# -- threads ---------------------------------------------------------------------------------------

def test_delta_evaluation_uses_no_more_threads_than_numba_is_allowed():
    import numba

    digits = data.load_dataset("digits")
    net = random_network("mnist", 80, 0, digits.train.images[:100])
    evaluator = delta.DeltaEvaluator(net, digits.train.images[:640], digits.train.labels[:640], 9)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        evaluator.score("fc", *sample_swaps(evaluator.weights["fc"], 8, np.random.default_rng(0)))
        if numba.get_num_threads() > 1:
            assert delta._POOL._max_workers == numba.get_num_threads()
    finally:
        numba.set_num_threads(before)


# -- reproduce: never deletes what it did not make -------------------------------------------------

@pytest.mark.slow
def test_reproduce_never_deletes_or_overwrites_results_it_did_not_make(tmp_path, run, assert_ok,
                                                                       assert_one_line_error):

    assert reproduce.default_out(False) == pathlib.Path("runs/figures")   # not reference_outputs
    out = tmp_path / "committed"
    (out / "fig8b" / "sense").mkdir(parents=True)
    (out / "fig8b" / "sense" / "steps.jsonl").write_text("a user's search\n")
    args = ["reproduce", "fig8b", "--quick", "--dataset", "digits", "--out", out]
    assert "holds a search of other settings" in assert_one_line_error(run(*args))
    assert (out / "fig8b" / "sense" / "steps.jsonl").read_text() == "a user's search\n"
    (out / "fig8b" / "fig8b.json").write_text("{}")
    assert "already holds fig8b's results" in assert_one_line_error(run(*args))
    assert (out / "fig8b" / "fig8b.json").read_text() == "{}"
    assert_ok(run(*args, "--force"))
    assert json.loads((out / "fig8b" / "fig8b.json").read_text())["figure"] == "fig8b"


# == issue 25 =====================================================================================
# Kind 1: a tampered resume file (state.npz, config.json, current/) is a one-line error, never a
# crash inside a kernel, never taken as it is.

@pytest.fixture(scope="module")
def searched(tmp_path_factory, run, assert_ok):
    """A finished tiny search (5 steps), shared: tests damage a copy of it."""
    out = tmp_path_factory.mktemp("searched") / "s"
    assert_ok(run(*SEARCH, "--max-steps", "5", "--out", out))
    return out


@pytest.fixture
def search_copy(searched, tmp_path):
    return pathlib.Path(shutil.copytree(searched, tmp_path / "s"))


def read_state_file(folder):
    with np.load(folder / runs.STATE_FILE) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(arrays.pop("state").tobytes().decode())


def write_state_file(folder, arrays, state):
    raw = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    np.savez(folder / runs.STATE_FILE, **arrays, state=raw)


def edit_json(path, **changes):
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("field, value, says", [
    ("step", -1, "step is -1"),
    ("step", "5", "step is '5'"),
    ("step", 2.5, "step is 2.5"),
    ("step", 10 ** 12, "above its bound"),
    ("step", None, "step is None"),
    ("step", True, "step is True"),
    ("step", KeyError, "lacks or has unknown fields step"),
    ("accepted", 99, "accepted is 99, above its bound 5"),
    ("best_step", 6, "best_step is 6, above its bound 5"),
    ("evaluations", 7, "not step x K"),
    ("seconds", float("nan"), "seconds is nan"),
    ("seconds", -3.0, "seconds is -3.0"),
    ("best_validation", 2, "best_validation is 2, above its bound 1"),
    ("extra", 1, "unknown fields extra"),
    ("dataset", "mnist", "not the run's"),
])
def test_resume_refuses_a_tampered_state_record(search_copy, field, value, says, run,
                                                assert_one_line_error):
    arrays, state = read_state_file(search_copy)
    if value is KeyError:
        state.pop(field)
    else:
        state[field] = value
    write_state_file(search_copy, arrays, state)
    assert says in assert_one_line_error(run("search", "--resume", search_copy))


@pytest.mark.parametrize("change, says", [
    (lambda a: a.update({"current/fc": a["current/fc"][:, :-3]}), "layer fc has shape"),
    (lambda a: a.update({"best/layer2.0": a["best/layer2.0"].reshape(-1)}), "has shape"),
    (lambda a: a.update({"current/fc": a["current/fc"].astype(np.float32)}), "not int8"),
    (lambda a: a.update({"current/fc": a["current/fc"].astype(np.int64)}), "not int8"),
    (lambda a: a["current/fc"].__setitem__((0, 0), 5), "not int8 in {-1, 0, +1}"),
    (lambda a: a.pop("best/fc"), "has layers"),
    (lambda a: a.update({"current/fc9": a["current/fc"]}), "has layers"),
    (lambda a: a.update({"junk": np.zeros(3)}), "needs a uint8 'state'"),
    (lambda a: a["current/fc"].__setitem__((0, np.flatnonzero(a["current/fc"][0] == 0)[0]), 1),
     "not of the run's family"),
])
def test_resume_refuses_tampered_weight_arrays_before_any_kernel_runs(search_copy, change, says,
                                                                      run, assert_one_line_error):
    arrays, state = read_state_file(search_copy)
    change(arrays)
    write_state_file(search_copy, arrays, state)
    assert says in assert_one_line_error(run("search", "--resume", search_copy))


@pytest.mark.parametrize("field, value, says", [
    ("neighbours", "10", "setting neighbours is '10'"),
    ("neighbours", 10 ** 12, "setting neighbours is 1000000000000"),
    ("neighbours", 2.5, "setting neighbours is 2.5"),
    ("neighbours", 0, "neighbours K must be >= 1"),
    ("steps_per_layer", -1, "setting steps_per_layer is -1"),
    ("max_steps", 10 ** 30, "setting max_steps"),
    ("seed", -1, "setting seed is -1"),
    ("schedule", 5, "setting schedule is 5"),
    ("schedule", "sideways", "unknown schedule"),
    ("layers", "fc", "setting layers is 'fc'"),
    ("layer_weights", [1], "setting layer_weights"),
    ("budget_seconds", "600", "setting budget_seconds"),
    ("confirm_stages", 10 ** 6, "setting confirm_stages"),
    ("neighbours", KeyError, "lacks or has unknown settings neighbours"),
    ("colour", "red", "unknown settings colour"),
])
def test_resume_refuses_a_tampered_config(search_copy, field, value, says, run,
                                          assert_one_line_error):
    edit_json(search_copy / "config.json", **{field: value})
    assert says in assert_one_line_error(run("search", "--resume", search_copy))


def test_resume_refuses_a_config_that_is_not_a_record(search_copy, run, assert_one_line_error):
    (search_copy / "config.json").write_text("[1, 2]")
    assert "not the run's settings" in assert_one_line_error(run("search", "--resume", search_copy))
    (search_copy / "config.json").write_text("[" * 100_000)
    assert "unreadable" in assert_one_line_error(run("search", "--resume", search_copy))


@pytest.mark.parametrize("changes, says", [
    ({"dataset": "carracing"}, "not a dataset of the mnist network"),
    ({"dataset": "mnist"}, "not the run's"),
    ({"dataset": KeyError}, "not the run's"),
    ({"thresholds": {"layer1.0": 2 ** 62, "layer2.0": 3}}, "above its bound"),
    ({"architecture": "car"}, "not a dataset of the car network"),
    ({"family": {"fc": {"-1": 1, "0": 2, "+1": 3}}}, "not of the run's family"),
])
def test_resume_refuses_a_current_checkpoint_not_of_the_run(search_copy, changes, says, run,
                                                            assert_one_line_error):
    edit_json(search_copy / "current" / "model.json", **changes)
    assert says in assert_one_line_error(run("search", "--resume", search_copy))


def test_resume_drops_log_lines_whose_step_is_not_a_number(search_copy, run, assert_ok):
    with open(search_copy / runs.LOG_FILE, "a") as log:
        log.write('{"step": "x"}\n[1]\n7\n')
    assert_ok(run("search", "--resume", search_copy, "--max-steps", "6"))
    steps = [json.loads(x)["step"] for x in (search_copy / runs.LOG_FILE).read_text().splitlines()]
    assert steps == list(range(7))


def test_resume_of_a_folder_without_a_search_is_a_one_line_error(tmp_path, trained, run,
                                                                 assert_one_line_error):
    assert "holds no state.npz" in assert_one_line_error(run("search", "--resume", trained))
    assert "holds no state.npz" in assert_one_line_error(run("search", "--resume",
                                                             tmp_path / "none"))


# Kind 5: integers that are whole but absurd: every integer that reaches the integer arithmetic
# is bounded, and the error names the bound.

@pytest.mark.parametrize("thresholds, says", [
    ({"layer1.0": 2 ** 62, "layer2.0": 3}, "threshold of layer1.0 is 4611686018427387904, above "
                                           "its bound 2684354"),
    ({"layer1.0": 3, "layer2.0": 10 ** 30}, "above its bound 85598"),
    ({"layer1.0": 3, "layer2.0": 85599}, "above its bound 85598"),
    ({"layer1.0": 2684355, "layer2.0": 3}, "above its bound 2684354"),
])
def test_a_checkpoint_threshold_beyond_the_integer_bound_is_refused(trained_copy, thresholds, says,
                                                                    run, assert_one_line_error):
    edit_json(trained_copy / "model.json", thresholds=thresholds)
    assert says in assert_one_line_error(run("eval", trained_copy))


@pytest.mark.slow
def test_a_checkpoint_threshold_at_its_bound_computes_exactly_in_both_tiers(trained_copy, run,
                                                                            assert_ok):
    limits = checkpoint.threshold_limits("mnist")
    edit_json(trained_copy / "model.json", thresholds=limits)
    assert_ok(run("eval", trained_copy))
    net, _ = checkpoint.load(trained_copy)
    images = data.load_dataset("digits").test.images[:64]
    textbook = in_engine(net, "textbook")
    assert np.array_equal(net.exact_logits(images), textbook.exact_logits(images))


@pytest.mark.parametrize("gain, says", [(1e300, "outside [1e-12, 1e12]"),
                                        (1e-300, "outside [1e-12, 1e12]")])
def test_a_checkpoint_last_gain_beyond_its_bound_is_refused(trained_copy, gain, says, run,
                                                            assert_one_line_error):
    edit_json(trained_copy / "model.json", last_gain=gain)
    assert says in assert_one_line_error(run("eval", trained_copy))


@pytest.mark.parametrize("args", [
    [*SEARCH, "--steps-per-layer", "0"],
    [*SEARCH, "--steps-per-layer", str(10 ** 12)],
    [*SEARCH, "--repeats", str(2 ** 63)],
    [*SEARCH, "--max-steps", str(10 ** 30)],
    [*SEARCH, "--train-images", str(2 ** 62)],
    [*SEARCH, "--screen-images", str(2 ** 62)],
    [*SEARCH, "--confirm", str(10 ** 12)],
    [*SEARCH, "--seed", str(2 ** 64)],
    [*SEARCH, "--chains", str(10 ** 9)],
    ["train", *TINY, "--epochs-dense", str(10 ** 12)],
    ["train", *TINY, "--batch-size", str(2 ** 62)],
    ["bench", "search", "--dataset", "digits", "--neighbours", str(10 ** 12)],
    ["bench", "screening", "--dataset", "digits", "--layer", "fc", "--sparsity", "80",
     "--steps", str(10 ** 15)],
    ["bench", "train", "--dataset", "digits", "--batches", str(10 ** 12)],
    ["ensemble", "x", "--damage", "swaps", "--damage-seeds", str(10 ** 9)],
    ["car", "drive", "x", "--episodes", str(10 ** 12)],
])
def test_absurd_whole_numbers_are_refused_naming_the_bound(args, tmp_path, run,
                                                           assert_one_line_error):
    line = assert_one_line_error(run(*args, "--out", tmp_path / "o")
                                 if args[0] in ("train", "search") else run(*args))
    assert "range" in line or "bound" in line, line


def test_a_state_step_beyond_the_bound_is_refused(search_copy, run, assert_one_line_error):
    arrays, state = read_state_file(search_copy)
    write_state_file(search_copy, arrays, {**state, "step": 2 ** 62, "evaluations": 10 * 2 ** 62})
    assert "above its bound 1000000000" in assert_one_line_error(run("search", "--resume",
                                                                     search_copy))


# Kind 2: an output never replaces a file the command reads, a run's file, or (without --force)
# an existing result; one kind of run never writes over another.

def digest(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != files.LOCK_FILE}


@pytest.mark.parametrize("target", ["model.json", "model.npz", "metrics.json"])
def test_eval_json_onto_the_checkpoint_or_its_run_is_refused_even_with_force(
        trained_copy, target, run, assert_one_line_error):
    before = digest(trained_copy)
    for extra in ([], ["--force"]):
        line = assert_one_line_error(run("eval", trained_copy, "--json", trained_copy / target,
                                         *extra))
        assert "reads" in line or "file of a run" in line
    assert digest(trained_copy) == before


def test_eval_json_onto_an_existing_file_needs_force(trained, tmp_path, run, assert_ok,
                                                     assert_one_line_error):
    kept = tmp_path / "mine.json"
    kept.write_text("a user's notes")
    assert "--force" in assert_one_line_error(run("eval", trained, "--json", kept))
    assert kept.read_text() == "a user's notes"
    assert_ok(run("eval", trained, "--json", kept, "--force"))
    assert json.loads(kept.read_text())["dataset"] == "digits"
    assert "directory" in assert_one_line_error(run("eval", trained, "--json", tmp_path))


def test_ensemble_json_onto_a_member_is_refused(trained_copy, run, assert_one_line_error):
    before = digest(trained_copy)
    assert "reads" in assert_one_line_error(run("ensemble", trained_copy, "--json",
                                                trained_copy / "model.json", "--force"))
    assert digest(trained_copy) == before


def test_car_drive_outputs_onto_inputs_or_each_other_are_refused_before_driving(
        trained_copy, tmp_path, run, assert_one_line_error):
    before = digest(trained_copy)
    assert "reads" in assert_one_line_error(run("car", "drive", trained_copy, "--gif",
                                                trained_copy / "model.npz"))
    assert "both name" in assert_one_line_error(run("car", "drive", trained_copy, "--gif",
                                                    tmp_path / "a", "--json", tmp_path / "a"))
    (tmp_path / "old.gif").write_bytes(b"GIF89a")
    assert "--force" in assert_one_line_error(run("car", "drive", trained_copy, "--gif",
                                                  tmp_path / "old.gif"))
    assert (tmp_path / "old.gif").read_bytes() == b"GIF89a"
    assert digest(trained_copy) == before


def test_car_record_onto_an_existing_recording_needs_force(tmp_path, run, assert_one_line_error):
    (tmp_path / "carracing.npz").write_bytes(b"a recording")
    line = assert_one_line_error(run("car", "record", "--episodes", "3", "--out", tmp_path))
    assert "already holds a recording" in line and "--force" in line
    assert (tmp_path / "carracing.npz").read_bytes() == b"a recording"


def test_bench_json_onto_an_existing_file_is_refused_before_the_benchmark(tmp_path, run,
                                                                          assert_one_line_error):
    (tmp_path / "b.json").write_text("{}")
    assert "--force" in assert_one_line_error(run("bench", "train", "--dataset", "digits", "--json",
                                                  tmp_path / "b.json"))
    assert (tmp_path / "b.json").read_text() == "{}"


@pytest.mark.slow
def test_a_backprop_line_onto_a_search_and_a_search_onto_a_backprop_line_are_refused(
        search_copy, tmp_path, run, assert_ok, assert_one_line_error):
    before = digest(search_copy)
    line = assert_one_line_error(run(*BACKPROP, "--max-steps", "2", "--out", search_copy))
    assert "holds a search (state.npz)" in line
    assert digest(search_copy) == before
    line_out = tmp_path / "bp"
    assert_ok(run(*BACKPROP, "--max-steps", "2", "--out", line_out))
    before = digest(line_out)
    line = assert_one_line_error(run(*SEARCH, "--max-steps", "2", "--out", line_out))
    assert "holds a backprop line" in line
    line = assert_one_line_error(run(*SEARCH, "--chains", "2", "--max-steps", "2", "--out",
                                     line_out))
    assert "holds a backprop line" in line
    assert digest(line_out) == before


def test_a_search_into_a_trained_run_and_a_train_into_a_search_are_refused(
        trained_copy, search_copy, run, assert_one_line_error):
    before = digest(trained_copy)
    line = assert_one_line_error(run("search", "--checkpoint", trained_copy, "--neighbours", "10",
                                     "--max-steps", "2", "--out", trained_copy))
    assert "holds a trained run (model.npz)" in line
    assert digest(trained_copy) == before
    before = digest(search_copy)
    for extra in ([], ["--force"]):
        assert "holds a search" in assert_one_line_error(run("train", *TINY, "--out", search_copy,
                                                             *extra))
    assert "holds a search" in assert_one_line_error(run(*SEARCH, "--chains", "2", "--max-steps",
                                                         "2", "--out", search_copy))
    assert digest(search_copy) == before


# Kind 3: an option that has no effect in the combination given is refused, never ignored; amounts
# mean what they say.

@pytest.mark.parametrize("args, says", [
    ([*SEARCH, "--jobs", "2"], "--jobs has no effect without --chains"),
    ([*SEARCH, "--backend", "dask"], "--backend has no effect without --chains"),
    ([*SEARCH, "--scheduler", "tcp://h:1"], "--scheduler has no effect without --chains"),
    ([*SEARCH, "--screen-images", "0", "--confirm", "3"], "--confirm has no effect with "
                                                          "screening off"),
    ([*SEARCH, "--screen-images", "0", "--confirm-stages", "2"], "--confirm-stages has no"),
    ([*SEARCH, "--screen-images", "0", "--screen", "fc=64"], "--screen has no effect"),
    ([*SEARCH, "--engine", "textbook", "--confirm", "3"], "screening off"),
    ([*SEARCH, "--confirm", "10"], "--confirm 10 is not below --neighbours 10"),
    ([*SEARCH, "--schedule", "alternate", "--layer-weight", "fc=2"], "ignores them"),
    ([*SEARCH, "--schedule", "fc", "--layer-weight", "fc=2"], "ignores them"),
    ([*SEARCH, "--layer-weight", "layer1.0=2"], "names layer1.0, which this search does not"),
    ([*SEARCH, "--layer", "fc", "--screen", "layer2.0=64"], "names layer2.0, which this search"),
    ([*SEARCH, "--backprop-lr", "0.1"], "--backprop-lr has no effect without --backprop"),
    ([*BACKPROP, "--neighbours", "5"], "--neighbours has no effect with --backprop"),
    ([*BACKPROP, "--schedule", "fc", "--anneal", "1"], "--schedule, --anneal have no effect"),
    ([*SEARCH, "--anneal-half-life", "10"], "--anneal-half-life has no effect without --anneal"),
    ([*SEARCH, "--fitness", "accuracy", "--margin-scale", "2"], "--margin-scale has no effect "
                                                                "with --fitness accuracy"),
    ([*BACKPROP, "--margin-scale", "2"], "--margin-scale has no effect with --backprop"),
    ([*BACKPROP, "--subsample", "0.5"], "--subsample has no effect with --backprop"),
    (["train", *TINY, "--sparsity", "0", "--pruning", "layer"], "--pruning has no effect with "
                                                                 "--sparsity 0"),
    (["train", *TINY, "--lr-binary", "0.1"], "--lr-binary has no effect with --epochs-binary 0"),
    (["train", *TINY, "--gain-grad-scale", "none"], "--gain-grad-scale has no effect"),
])
def test_an_option_without_effect_is_refused(args, says, tmp_path, run, assert_one_line_error):
    assert says in assert_one_line_error(run(*args, "--out", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_idle_options_of_ensemble_drive_bench_and_reproduce_are_refused(trained, tmp_path, run,
                                                                        assert_one_line_error):
    assert "--amount has no effect without --damage" in assert_one_line_error(
        run("ensemble", trained, "--amount", "5"))
    assert "--damage-seeds has no effect without --damage" in assert_one_line_error(
        run("ensemble", trained, "--damage-seeds", "2"))
    assert "--gif-every has no effect without --gif" in assert_one_line_error(
        run("car", "drive", trained, "--gif-every", "3"))
    assert "--confirm has no effect with --screen-images 0" in assert_one_line_error(
        run("bench", "search", "--dataset", "digits", "--screen-images", "0", "--confirm", "3"))
    for figure in ("fig8a", "fig2a", "ens-mnist80"):
        line = assert_one_line_error(run("reproduce", figure, "--quick", "--checkpoint", trained,
                                         "--out", tmp_path / "r"))
        assert "--checkpoint would have no effect" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind, amount, says", [
    ("swaps", "0.5", "--amount 0.5 is not a whole number of swaps"),
    ("swaps", "2.25", "not a whole number of swaps"),
    ("swaps", "1e9", "not a whole number of swaps in 0..100000"),
    ("delete", "1.5", "a deleted fraction must be in [0, 1]"),
])
def test_damage_amounts_mean_what_they_say(trained, kind, amount, says, run, assert_one_line_error):
    assert says in assert_one_line_error(run("ensemble", trained, "--damage", kind, "--amount",
                                             amount))


def test_whole_swaps_given_as_decimals_are_the_same_swaps(trained):
    net, _ = checkpoint.load(trained)
    a = ensemble.damage(net, "swaps", 3, np.random.default_rng(0)).ternary_weights()
    b = ensemble.damage(net, "swaps", 3.0, np.random.default_rng(0)).ternary_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(data.MinisenseError, match="whole number of swaps"):
        ensemble.damage(net, "swaps", 0.5, np.random.default_rng(0))


# Kind 4: the edges: negative seeds, a full disk, GIF paths, the environment, a read-only
# install, a leaking or empty car recording, a dense network asked for swaps.

@pytest.mark.parametrize("args", [
    ["train", *TINY, "--seed", "-1"],
    [*SEARCH, "--seed", "-1"],
    ["bench", "screening", "--dataset", "digits", "--layer", "fc", "--sparsity", "80",
     "--seed", "-1"],
    ["reproduce", "fig8a", "--quick", "--seed", "-1"],
    ["car", "drive", "x", "--seed", "-1"],
    ["car", "record", "--seed", "-1"],
    ["car", "expert", "--seed", "-5"],
])
def test_a_negative_seed_is_a_one_line_error(args, tmp_path, run, assert_one_line_error):
    line = assert_one_line_error(run(*args, "--out", tmp_path / "o")
                                 if args[0] in ("train", "search") else run(*args))
    assert "--seed" in line and "0<=x<=4294967295" in line


def test_the_library_refuses_negative_seeds_too(tmp_path):
    for call in (lambda: car.check_seed(-1),
                 lambda: reproduce.run("fig8a", quick=True, out=tmp_path, seed=-1),
                 lambda: psiren.train("digits", psiren.config_for("digits", seed=-1), tmp_path)):
        with pytest.raises(data.MinisenseError, match="seed -1 is outside"):
            call()


@pytest.fixture
def full_disk(monkeypatch):
    """Every atomic write's buffered data goes to /dev/full: the flush fails with ENOSPC, and
    the close would fail again."""
    def to_dev_full(fd, mode="r", *args, **kwargs):
        os.close(fd)
        return open("/dev/full", mode, *args, **kwargs)
    monkeypatch.setattr(files.os, "fdopen", to_dev_full)


@pytest.mark.slow
def test_a_full_disk_during_train_and_eval_json_is_one_line_and_leaves_nothing(full_disk, trained,
                                                                               tmp_path, run):
    line = ends_in_one_line_error(run("train", *TINY, "--out", tmp_path / "t"))
    assert "No space left on device" in line
    assert not [p for p in (tmp_path / "t").iterdir() if p.name != files.LOCK_FILE]
    line = ends_in_one_line_error(run("eval", trained, "--json", tmp_path / "e.json"))
    assert "cannot write" in line and "No space left on device" in line
    assert list(tmp_path.glob("*e.json*")) == []


def test_gif_and_json_paths_are_checked_before_the_drive(trained, tmp_path, monkeypatch, run,
                                                         assert_one_line_error):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "a file stands where" in assert_one_line_error(run("car", "drive", trained, "--gif",
                                                              blocker / "a.gif"))
    assert "directory" in assert_one_line_error(run("car", "drive", trained, "--gif", tmp_path))
    files.check_outputs({"--gif": tmp_path / "new" / "deeper" / "a.gif"})    # made when written
    real_access = os.access                                 # (as root, every folder is writable)
    monkeypatch.setattr(files.os, "access",
                        lambda path, mode: not mode & os.W_OK and real_access(path, mode))
    assert "read-only" in assert_one_line_error(run("car", "drive", trained, "--gif",
                                                    tmp_path / "a.gif"))


def cli_subprocess(args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "minisense_cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def assert_subprocess_one_line_error(proc) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("value", ["0", "abc", "-2", "", "1.5", "100000"])
def test_a_bad_numba_num_threads_is_a_one_line_error(value):
    line = assert_subprocess_one_line_error(cli_subprocess(["--version"],
                                                           {"NUMBA_NUM_THREADS": value}))
    assert "NUMBA_NUM_THREADS" in line and "1..4096" in line


@pytest.mark.slow
def test_an_unwritable_numba_cache_dir_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    line = assert_subprocess_one_line_error(cli_subprocess(
        ["--version"], {"NUMBA_CACHE_DIR": str(tmp_path / "file" / "cache")}))
    assert "NUMBA_CACHE_DIR" in line


@pytest.mark.slow
def test_a_read_only_install_still_runs(trained, tmp_path):
    """Numba can write its cache neither beside the package nor in the user's cache (a file
    stands in both places: as root, permissions alone would not stop it)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    package = tmp_path / "install"
    for name in ("minisense", "cli"):
        shutil.copytree(root / name, package / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (package / "minisense" / "fast" / "__pycache__").write_text("not a folder")
    (tmp_path / "home").write_text("not a folder")
    env = {"PYTHONPATH": str(package), "HOME": str(tmp_path / "home"),
           "XDG_CACHE_HOME": str(tmp_path / "home" / "cache"), "TMPDIR": str(tmp_path),
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    proc = cli_subprocess(["eval", trained], env, cwd=tmp_path)
    assert proc.returncode == 0 and "test accuracy" in proc.stdout, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert any((tmp_path / f"minisense-numba-{os.getuid()}").iterdir())    # the cache went here


def write_recording(folder, splits, episodes=4, frames_each=6, labels=None):
    """A small car-racing recording in the format of 'minisense car record', made up."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = episodes * frames_each
    arrays = {"frames": rng.integers(0, 256, (n, 32, 32), dtype=np.uint8),
              "labels": (rng.integers(0, 3, n) if labels is None else labels).astype(np.uint8),
              "episode": np.repeat(np.arange(episodes, dtype=np.int32), frames_each),
              "step": np.tile(np.arange(frames_each, dtype=np.int32), episodes),
              "seeds": np.arange(episodes, dtype=np.int64),
              "returns": np.zeros(episodes), "laps": np.zeros(episodes, bool)}
    np.savez_compressed(folder / "carracing.npz", **arrays)
    meta = {"format": "minisense-carracing", "format_version": 1, "episodes": episodes,
            "splits": splits}
    (folder / "carracing.json").write_text(json.dumps(meta))
    return folder


GOOD_SPLITS = {"train": [0, 1], "validation": [2], "test": [3]}


@pytest.mark.parametrize("splits, says", [
    ({"train": [0, 1, 3], "validation": [2], "test": [3]}, "in both the train and the test"),
    ({"train": [0, 1], "validation": [1, 2], "test": [3]}, "in both the train and the validation"),
    ({"train": [0, 1, 2], "validation": [], "test": [3]}, "the validation split has no frames"),
    ({"train": [0, 1, 2], "validation": [9], "test": [3]}, "the validation split has no frames"),
    ({"train": [0, 1], "validation": [2], "test": []}, "the test split has no frames"),
    ({"train": [0], "validation": [2], "test": [3]}, "episodes [1] are in no split"),
    ({"train": [0, 1.5], "validation": [2], "test": [3]}, "not a list of episode indices"),
    ({"train": [0, 1], "validation": [2]}, "no \"splits\" naming"),
])
def test_a_recording_with_leakage_or_an_empty_split_is_refused(tmp_path, splits, says, run,
                                                               assert_one_line_error):
    folder = write_recording(tmp_path / "car", splits)
    with pytest.raises(data.MinisenseError, match=None) as e:
        data.load_dataset("carracing", folder)
    assert says in str(e.value)
    assert says in assert_one_line_error(run("search", "--init", "random", "--sparsity", "80",
                                             "--dataset", "carracing", "--data-dir", folder,
                                             "--max-steps", "1", "--out", tmp_path / "s"))


def test_a_sound_made_up_recording_loads_split_by_episode(tmp_path):
    car = data.load_dataset("carracing", write_recording(tmp_path / "car", GOOD_SPLITS))
    assert (len(car.train.labels), len(car.validation.labels), len(car.test.labels)) == (12, 6, 6)


@pytest.mark.slow
def test_swaps_in_a_dense_member_are_refused_naming_the_layer(tmp_path, run, assert_ok,
                                                              assert_one_line_error):
    dense = tmp_path / "dense"
    assert_ok(run("train", *TINY, "--sparsity", "0", "--epochs-prune", "0", "--out", dense))
    line = assert_one_line_error(run("ensemble", dense, "--damage", "swaps", "--amount", "1"))
    assert "layer layer1.0 has no zero weight" in line and "--damage delete" in line
    assert_ok(run("ensemble", dense, "--damage", "delete", "--amount", "0.1", "--damage-seeds",
                  "1"))


# The fuzz test: each field of a state file, a checkpoint and a recording mutated in turn. Every
# mutated file ends in a one-line MinisenseError or the very result of the intact file; any other
# exception (a crash, a traceback) fails, and so does a different result taken in silence.

BAD_VALUES = [None, True, -1, 0, 2.5, "x", 2 ** 62, 10 ** 30, [], {}, float("nan")]


def record_mutations(record: dict):
    """(label, mutated copy) for each field: missing, and each bad value; then an extra field."""
    for key in record:
        yield f"{key} missing", {k: v for k, v in record.items() if k != key}
        for value in BAD_VALUES:
            if type(value) is not type(record[key]) or value != record[key]:
                yield f"{key}={value!r}", {**record, key: value}
    yield "an extra field", {**record, "zz": 1}


def array_mutations(arrays: dict, free=()):
    """(label, mutated copy) for each array: missing, reshaped, cut, emptied, a scalar, another
    dtype, values out of their range (not for the arrays ``free``, whose every value is valid
    data, such as pixels); then an extra array."""
    for key, a in arrays.items():
        changes = {"missing": None, "flattened": a.reshape(-1)[:-1] if a.ndim <= 1 else
                   a.reshape(-1), "cut": a[:-1], "emptied": a[:0], "a scalar": np.array(7),
                   "float32": a.astype(np.float32), "int64": a.astype(np.int64),
                   "values + 3": (a.astype(np.int64) + 3).astype(a.dtype)}
        if key in free:
            changes.pop("values + 3")
        for label, changed in changes.items():
            mutated = {k: v for k, v in arrays.items() if k != key}
            if changed is not None:
                mutated[key] = changed
            yield f"{key} {label}", mutated
    yield "an extra array", {**arrays, "zz": np.zeros(3)}


class Tally:
    def __init__(self):
        self.counts = {"refused": 0, "same result": 0, "ran": 0}

    def outcome(self, label, attempt, same=None):
        """``attempt()`` must raise MinisenseError (one line) or return a result equal to
        ``same`` (or, for ``same`` None, any result: a valid setting that ran)."""
        try:
            result = attempt()
        except data.MinisenseError as e:
            assert "\n" not in str(e), (label, str(e))
            self.counts["refused"] += 1
            return
        if same is None:
            self.counts["ran"] += 1
        else:
            assert same(result), f"{label}: taken in silence with another result"
            self.counts["same result"] += 1

    @property
    def files(self):
        return sum(self.counts.values())


FUZZ = {}


@pytest.mark.slow
def test_fuzz_every_field_of_a_state_file(searched, tmp_path, monkeypatch):
    tally = Tally()
    intact = pathlib.Path(shutil.copytree(searched, tmp_path / "intact"))
    monkeypatch.setattr(runs, "load_dataset", data.load_cached)       # digits read once

    def resumed(folder):
        search = runs.resume(folder)
        search.step()                      # step 6 in memory: the state's randomness and moves
        return {k: v.copy() for k, v in search.fit.weights.items()}

    expected = resumed(intact)

    def same(weights):
        return all(np.array_equal(weights[k], expected[k]) for k in expected)

    arrays, state = read_state_file(searched)
    config = json.loads((searched / "config.json").read_text())
    for n, (label, mutated) in enumerate(record_mutations(state)):
        folder = pathlib.Path(shutil.copytree(searched, tmp_path / f"r{n}"))
        write_state_file(folder, arrays, mutated)
        tally.outcome(f"state {label}", lambda folder=folder: resumed(folder), same)
    for n, (label, mutated) in enumerate(array_mutations(arrays)):
        folder = pathlib.Path(shutil.copytree(searched, tmp_path / f"a{n}"))
        write_state_file(folder, mutated, state)
        tally.outcome(f"state.npz {label}", lambda folder=folder: resumed(folder), same)
    for n, (label, mutated) in enumerate(record_mutations(config)):
        folder = pathlib.Path(shutil.copytree(searched, tmp_path / f"c{n}"))
        (folder / "config.json").write_text(json.dumps(mutated))

        def attempt(folder=folder):
            weights = resumed(folder)      # a valid setting: a clean run in the start's family
            assert _family_of(weights) == _family_of(expected)
            return weights
        tally.outcome(f"config {label}", attempt)
    FUZZ["state file"] = tally.counts
    print(f"\nstate file fuzz: {tally.files} mutated files, {tally.counts}")
    assert tally.counts["refused"] > 0.8 * tally.files


def _family_of(weights):
    return {k: (int((w == -1).sum()), int((w == 0).sum())) for k, w in weights.items()}


@pytest.mark.slow
def test_fuzz_every_field_of_a_checkpoint(trained, tmp_path):
    tally = Tally()
    images = data.load_dataset("digits").test.images[:20]
    expected = checkpoint.load(trained)[0].exact_logits(images)

    def loaded(folder):
        return checkpoint.load(folder)[0].exact_logits(images)

    def same(logits):
        return np.array_equal(logits, expected)

    meta = json.loads((trained / "model.json").read_text())
    with np.load(trained / "model.npz") as f:
        arrays = {k: f[k] for k in f.files}
    folder = tmp_path / "ckpt"
    shutil.copytree(trained, folder)
    for label, mutated in record_mutations(meta):
        (folder / "model.json").write_text(json.dumps(mutated))
        tally.outcome(f"model.json {label}", lambda: loaded(folder), same)
    for label, mutated in record_mutations(meta["thresholds"]):
        (folder / "model.json").write_text(json.dumps({**meta, "thresholds": mutated}))
        tally.outcome(f"thresholds {label}", lambda: loaded(folder), same)
    for hashed in (True, False):        # with the hash, and as an older checkpoint without it
        unhashed = {k: v for k, v in meta.items() if k != "weights_sha256" or hashed}
        (folder / "model.json").write_text(json.dumps(unhashed))
        for label, mutated in array_mutations(arrays):
            np.savez_compressed(folder / "model.npz", **mutated)
            tally.outcome(f"model.npz {label}", lambda: loaded(folder), same)
    FUZZ["checkpoint"] = tally.counts
    print(f"\ncheckpoint fuzz: {tally.files} mutated files, {tally.counts}")


def test_fuzz_every_field_of_a_recording(tmp_path):
    tally = Tally()
    intact = write_recording(tmp_path / "intact", GOOD_SPLITS)
    expected = data.load_dataset("carracing", intact)

    def same(loaded):
        return all(np.array_equal(getattr(getattr(loaded, s), part),
                                  getattr(getattr(expected, s), part))
                   for s in data.SPLITS for part in ("images", "labels"))

    meta = json.loads((intact / "carracing.json").read_text())
    with np.load(intact / "carracing.npz") as f:
        arrays = {k: f[k] for k in f.files}
    folder = pathlib.Path(shutil.copytree(intact, tmp_path / "rec"))
    for label, mutated in record_mutations(meta):
        (folder / "carracing.json").write_text(json.dumps(mutated))
        tally.outcome(f"carracing.json {label}",
                      lambda: data.load_dataset("carracing", folder), same)
    for label, mutated in record_mutations(meta["splits"]):
        (folder / "carracing.json").write_text(json.dumps({**meta, "splits": mutated}))
        tally.outcome(f"splits {label}", lambda: data.load_dataset("carracing", folder), same)
    (folder / "carracing.json").write_text(json.dumps(meta))
    for label, mutated in array_mutations(arrays, free=("frames",)):
        np.savez_compressed(folder / "carracing.npz", **mutated)
        tally.outcome(f"carracing.npz {label}", lambda: data.load_dataset("carracing", folder),
                      same)
    FUZZ["recording"] = tally.counts
    print(f"\nrecording fuzz: {tally.files} mutated files, {tally.counts}")


def test_data_dir_with_digits_and_eval_json_onto_a_data_file_are_refused(trained, tmp_path, run,
                                                                         assert_one_line_error):
    assert "--data-dir has no effect with --dataset digits" in assert_one_line_error(
        run("train", *TINY, "--data-dir", tmp_path, "--out", tmp_path / "t"))
    assert "--data-dir has no effect" in assert_one_line_error(
        run(*SEARCH, "--data-dir", tmp_path, "--out", tmp_path / "s"))
    folder = write_recording(tmp_path / "car", GOOD_SPLITS)
    car_net = random_network("car", 80, 0, data.load_dataset("carracing", folder).train.images)
    checkpoint.save(car_net, tmp_path / "carnet", {"dataset": "carracing"})
    before = (folder / "carracing.json").read_bytes()
    line = ends_in_one_line_error(run("eval", tmp_path / "carnet", "--data-dir", folder,
                                      "--json", folder / "carracing.json", "--force"))
    assert "file this command reads" in line or "file of a run" in line
    idx = folder / "train-images-idx3-ubyte.gz"            # a dataset's file in the data folder
    idx.write_bytes(b"an IDX file")
    line = ends_in_one_line_error(run("eval", tmp_path / "carnet", "--data-dir", folder,
                                      "--json", idx, "--force"))
    assert "file this command reads" in line and idx.read_bytes() == b"an IDX file"
    assert (folder / "carracing.json").read_bytes() == before

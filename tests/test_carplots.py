"""Tests for the car-racing pictures (minisense.carplots): ``minisense plot`` on a DAgger run
folder (runlogs.dagger_series, runplots.plot_run) and ``minisense car compare --plot``.

The DAgger folders and the drive results are written by hand in tmp_path (two rounds, three
tracks), so the series and the printed numbers are known exactly; one real tiny DAgger run is
plotted in the slow lane.
"""

import io
import json

import numpy as np
import pytest
from helpers import PNG_MAGIC

from minisense import car, carplots, dagger, runlogs, runplots
from minisense.errors import MinisenseError

SETTINGS = {"rounds": 3, "episodes": 2, "seed": 5, "beta0": 0.5, "beta_decay": 0.5,
            "expert_name": "pursuit-v1", "trainer": "psiren", "max_steps": 1000}
ROUNDS = [
    {"round": 0, "beta": 0.5, "frames_added": 1900, "train_frames": 9900,
     "train_accuracy": 0.81, "validation_accuracy": 0.74, "test_accuracy": 0.73,
     "mean_return": 610.5, "sem_return": 40.5, "laps": 0, "network_agreement": 0.7,
     "expert_steps": 950, "seeds": [1000001, 1000002], "seconds": 12.0},
    {"round": 1, "beta": 0.25, "frames_added": 1800, "train_frames": 11700,
     "train_accuracy": 0.80, "validation_accuracy": 0.76, "test_accuracy": 0.75,
     "mean_return": 702.0, "sem_return": 20.0, "laps": 1, "network_agreement": 0.8,
     "expert_steps": 450, "seeds": [1000003, 1000004], "seconds": 13.0},
]
START = {"round": -1, "train_accuracy": 0.84, "validation_accuracy": 0.71,
         "test_accuracy": 0.70, "seconds": 30.0}
RECORDING = {"format": "minisense-carracing", "episodes": 14, "seed": 0, "noise": 0.0,
             "expert_name": "pursuit-v1", "max_steps": 1000, "expert_mean_return": 891.25,
             "dagger": {"rounds": 2, "recorded_episodes": 10}}


def lines(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture
def dagger_run(tmp_path):
    """A hand-written DAgger run folder of two finished rounds (round 1's episodes.npz gone)."""
    folder = tmp_path / "dagger"
    for sub in ("start", "round-000", "round-001", "data"):
        (folder / sub).mkdir(parents=True)
    (folder / "dagger.json").write_text(json.dumps(SETTINGS))
    (folder / "rounds.jsonl").write_text(lines(ROUNDS))
    (folder / "start" / "model.json").write_text(json.dumps({"dataset": "carracing",
                                                             "dagger": START}))
    (folder / "round-000" / "episodes.npz").write_bytes(npz_bytes(returns=np.array([570.0,
                                                                                    651.0])))
    (folder / "data" / "carracing.json").write_text(json.dumps(RECORDING))
    return folder


def drive_json(path, seeds, returns):
    """A file as ``car drive --json`` writes it (car.summarize of its episodes)."""
    runs = [{"seed": s, "return": r, "steps": 1000, "lap": r > 900, "class_counts": [1, 2, 3]}
            for s, r in zip(seeds, returns)]
    path.write_text(json.dumps({"checkpoint": "net/model.npz", "members": ["net/model.npz"],
                                "commensurate": True, "dataset": "carracing", "seeds": seeds,
                                "max_steps": 1000, **car.summarize(runs)}))
    return path


def expert_json(path, seeds, returns):
    """A file as ``car expert --json`` writes it."""
    runs = [{"seed": s, "return": r, "steps": 900, "lap": True} for s, r in zip(seeds, returns)]
    path.write_text(json.dumps({"expert_name": "pursuit-v1", "expert": {}, "seeds": seeds,
                                "continuous": car.summarize(runs),
                                "three_class": car.summarize(runs)}))
    return path


# -- the DAgger series ---------------------------------------------------------------------------

def test_the_file_names_are_those_dagger_writes():
    assert (runlogs.DAGGER_FILE, runlogs.ROUNDS_FILE) == (dagger.SETTINGS_FILE,
                                                          dagger.ROUNDS_FILE)


def test_the_dagger_series_are_the_records_of_the_folder(dagger_run):
    assert runlogs.run_kind(dagger_run) == "dagger"
    s = runlogs.dagger_series(dagger_run)
    assert s["records"] == ROUNDS and s["settings"] == SETTINGS
    assert s["round"].tolist() == [0, 1]
    for key in runlogs.ROUND_FIELDS[1:]:
        assert s[key].tolist() == [r[key] for r in ROUNDS], key
    assert s["episode_returns"] == [[570.0, 651.0], None]
    assert s["start_train_frames"] == 9900 - 1900
    assert s["start"] == {k: START[k] for k in ("train_accuracy", "validation_accuracy",
                                                "test_accuracy")}
    assert s["expert"] == {"mean_return": 891.25, "sem_return": None, "expert_name": "pursuit-v1",
                           "episodes": 10, "seeds": [0, 9], "source": "the recording"}


@pytest.mark.parametrize("change", [{"noise": 0.1}, {"expert_name": "pursuit-v2"},
                                    {"max_steps": 60}])
def test_the_recordings_expert_is_drawn_only_when_it_drove_as_the_rounds_expert(dagger_run,
                                                                                change):
    (dagger_run / "data" / "carracing.json").write_text(json.dumps({**RECORDING, **change}))
    assert runlogs.dagger_series(dagger_run)["expert"] is None


def test_a_dagger_run_without_its_start_or_aggregate_still_has_its_rounds(dagger_run):
    (dagger_run / "start" / "model.json").unlink()
    (dagger_run / "data" / "carracing.json").unlink()
    s = runlogs.dagger_series(dagger_run)
    assert s["start"] is None and s["expert"] is None and len(s["round"]) == 2


# -- minisense plot on a DAgger run --------------------------------------------------------------

def test_plot_draws_a_dagger_run_and_replaces_it_only_with_force(dagger_run, run, assert_ok,
                                                                 assert_one_line_error):
    png = dagger_run / "plot.png"
    result = assert_ok(run("plot", dagger_run))
    assert result.output == f"picture: {png}\n"
    assert png.read_bytes()[:8] == PNG_MAGIC
    png.write_bytes(b"mine")
    line = assert_one_line_error(run("plot", dagger_run))
    assert "already exists" in line and "--force" in line
    assert png.read_bytes() == b"mine"
    assert_ok(run("plot", dagger_run, "--force"))
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_the_title_names_the_trainer_seed_episodes_and_beta(dagger_run):
    title = runplots._dagger_title(dagger_run, runlogs.dagger_series(dagger_run))
    for part in ("p-SIREN (Algorithm 1)", "seed 5", "2 episodes a round",
                 "0.5 \\times 0.5^r", "expert pursuit-v1", "2 of 3 rounds finished",
                 "validation 76.00%, test 75.00%"):
        assert part in title, part
    assert "cut at" not in title


def test_plot_draws_the_expert_of_a_car_expert_json(dagger_run, tmp_path, run, assert_ok):
    expert = expert_json(tmp_path / "expert.json", [1000, 1001, 1002], [880.0, 900.0, 920.0])
    line = carplots.expert_line(expert)
    assert line["mean_return"] == 900.0 and line["sem_return"] == pytest.approx(20 / np.sqrt(3))
    assert line["episodes"] == 3 and line["seeds"] == [1000, 1002]
    out = tmp_path / "with-expert.png"
    assert_ok(run("plot", dagger_run, "--expert", expert, "--out", out))
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_expert_for_a_run_that_is_not_dagger_is_a_one_line_error(tmp_path, run,
                                                                 assert_one_line_error):
    search = tmp_path / "search"
    search.mkdir()
    (search / "config.json").write_text(json.dumps({"seed": 0}))
    (search / "steps.jsonl").write_text(json.dumps({
        "step": 0, "train_accuracy": 0.1, "validation_accuracy": 0.1, "test_accuracy": 0.1,
        "seconds": 0.0}) + "\n")
    expert = expert_json(tmp_path / "expert.json", [1000], [900.0])
    line = assert_one_line_error(run("plot", search, "--expert", expert))
    assert "--expert" in line and "is a search folder" in line
    assert not (search / "plot.png").exists()


def test_a_drive_json_as_expert_is_a_one_line_error(dagger_run, tmp_path, run,
                                                    assert_one_line_error):
    drive = drive_json(tmp_path / "drive.json", [1000], [900.0])
    line = assert_one_line_error(run("plot", dagger_run, "--expert", drive))
    assert "give the --json of car expert" in line
    assert not (dagger_run / "plot.png").exists()


def test_a_corrupt_rounds_log_is_a_one_line_error_and_nothing_is_written(dagger_run, run,
                                                                         assert_one_line_error):
    (dagger_run / "rounds.jsonl").write_text(lines(ROUNDS[:1]) + "\x00 garbage\n" +
                                             lines(ROUNDS[1:]))
    line = assert_one_line_error(run("plot", dagger_run))
    assert f"{dagger_run / 'rounds.jsonl'} line 2 is not a record" in line
    assert not (dagger_run / "plot.png").exists()


def test_rounds_out_of_order_or_missing_are_one_line_errors(dagger_run, run,
                                                            assert_one_line_error):
    (dagger_run / "rounds.jsonl").write_text(lines([ROUNDS[0], {**ROUNDS[1], "round": 2}]))
    assert "not 0, 1, ..." in assert_one_line_error(run("plot", dagger_run))
    (dagger_run / "rounds.jsonl").unlink()
    assert "finished no round yet" in assert_one_line_error(run("plot", dagger_run))
    (dagger_run / "dagger.json").write_text("{cut")
    with pytest.raises(MinisenseError, match="dagger.json is unreadable"):
        runplots.plot_run(dagger_run)


def test_an_unreadable_episodes_file_is_a_one_line_error(dagger_run, run, assert_one_line_error):
    (dagger_run / "round-000" / "episodes.npz").write_bytes(b"not a zip")
    line = assert_one_line_error(run("plot", dagger_run))
    assert "episodes.npz is unreadable" in line


# -- car compare --plot --------------------------------------------------------------------------

def test_compare_plot_writes_a_png_and_prints_the_same_numbers(tmp_path, run, assert_ok):
    seeds = [1000, 1001, 1002, 1003]
    a = drive_json(tmp_path / "a.json", seeds, [850.0, 905.0, 930.0, -40.0])
    b = expert_json(tmp_path / "b.json", seeds, [880.0, 900.0, 920.0, 910.0])
    r = car.compare_files(a, b)
    assert r["returns_a"] == [850.0, 905.0, 930.0, -40.0]
    assert r["returns_b"] == [880.0, 900.0, 920.0, 910.0]
    plain = assert_ok(run("car", "compare", a, b)).output
    out = tmp_path / "pictures" / "scatter.png"
    with_plot = assert_ok(run("car", "compare", a, b, "--plot", out)).output
    assert with_plot == plain + f"picture: {out}\n"
    assert "-241.2 +- 236.4" in plain             # d = (-30, 5, 10, -950)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_compare_plot_replaces_a_file_only_with_force(tmp_path, run, assert_ok,
                                                      assert_one_line_error):
    a = drive_json(tmp_path / "a.json", [1000, 1001], [850.0, 905.0])
    b = drive_json(tmp_path / "b.json", [1000, 1001], [880.0, 900.0])
    out = tmp_path / "scatter.png"
    out.write_bytes(b"mine")
    line = assert_one_line_error(run("car", "compare", a, b, "--plot", out))
    assert "--plot" in line and "already exists" in line
    assert out.read_bytes() == b"mine"
    assert_ok(run("car", "compare", a, b, "--plot", out, "--force"))
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_compare_plot_of_another_format_is_a_one_line_error(tmp_path, run,
                                                            assert_one_line_error):
    a = drive_json(tmp_path / "a.json", [1000], [850.0])
    b = drive_json(tmp_path / "b.json", [1000], [880.0])
    line = assert_one_line_error(run("car", "compare", a, b, "--plot", tmp_path / "s.pdf",
                                     "--json", tmp_path / "c.json"))
    assert "--plot" in line and "does not end in .png" in line
    assert not (tmp_path / "s.pdf").exists() and not (tmp_path / "c.json").exists()


def test_tracks_below_900_are_labelled_by_seed_only_when_few(tmp_path):
    def labels(returns_a):
        n = len(returns_a)
        r = car.compare({"episodes": [{"seed": 1000 + i, "return": x}
                                      for i, x in enumerate(returns_a)]},
                        {"episodes": [{"seed": 1000 + i, "return": 905.0} for i in range(n)]})
        fig = carplots.draw_paired(r)
        texts = [t.get_text() for t in fig.axes[0].texts]
        fig.clf()
        return texts
    assert labels([850.0, 950.0, 100.0]) == ["1000", "1002"]
    assert labels([850.0] * (carplots.MAX_SEED_LABELS + 1)) == []


# -- a real run ----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.usefixtures("no_other_data")
def test_a_real_tiny_dagger_run_plots_with_the_recordings_expert(tmp_path, run, assert_ok):
    # 3 recorded episodes and one round of one episode, all cut at 60 steps, one epoch a step.
    recording, out = tmp_path / "rec", tmp_path / "run"
    car.record(3, 7, recording, workers=1, max_steps=60)
    assert_ok(run("car", "dagger", "--data-dir", recording, "--out", out, "--rounds", 1,
                  "--episodes", 1, "--max-steps", 60, "--epochs-dense", 1, "--epochs-prune", 1,
                  "--epochs-sparse", 1, "--epochs-binary", 1))
    s = runlogs.dagger_series(out)
    record = json.loads((out / "rounds.jsonl").read_text())
    assert s["mean_return"].tolist() == [record["mean_return"]]
    assert s["episode_returns"][0] == pytest.approx([record["mean_return"]])
    meta = json.loads((recording / "carracing.json").read_text())
    assert s["expert"]["mean_return"] == meta["expert_mean_return"]
    assert s["start"] is not None
    assert_ok(run("plot", out))
    assert (out / "plot.png").read_bytes()[:8] == PNG_MAGIC

"""Tests for DAgger on the car (minisense.dagger, minisense car dagger).

The gym tests share one tiny recording (3 episodes cut at 60 steps: 10 frames each) and run
p-SIREN with one epoch per step; a round drives one episode of 60 steps. The error tests use a
recording written by hand (random frames), no gym.
"""

import json

import numpy as np
import pytest

from minisense import car, checkpoint, dagger, ensemble
from minisense.data import load_dataset
from minisense.errors import MinisenseError
from minisense.expert import expert_config
from minisense.runs import random_network, search
from minisense.sense import SenseConfig

STEPS = 60
EPOCHS = ["--epochs-dense", "1", "--epochs-prune", "1", "--epochs-sparse", "1",
          "--epochs-binary", "1"]


# Only --data-dir can hold a recording here (the shared fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("no_other_data")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A real recording: 3 episodes (seeds 7, 8, 9) of 60 steps, one process."""
    out = tmp_path_factory.mktemp("dagger") / "rec"
    car.record(3, 7, out, workers=1, max_steps=STEPS)
    return out


@pytest.fixture
def fake_recording(tmp_path):
    """write(expert_name=...) -> a folder holding a recording of random frames, 3 episodes."""
    def write(**meta):
        rng = np.random.default_rng(0)
        arrays = {"frames": rng.integers(0, 256, (30, 32, 32)).astype(np.uint8),
                  "labels": rng.integers(0, 3, 30).astype(np.uint8),
                  "episode": np.repeat(np.arange(3, dtype=np.int32), 10),
                  "step": np.tile(np.arange(50, 60, dtype=np.int32), 3),
                  "seeds": np.arange(3, dtype=np.int64), "returns": np.zeros(3),
                  "laps": np.zeros(3, bool)}
        folder = tmp_path / "fake"
        folder.mkdir(exist_ok=True)
        dagger.write_recording(folder, arrays, {
            "format": "minisense-carracing", "format_version": 1,
            "splits": {"train": [0], "validation": [1], "test": [2]}, **meta})
        return folder
    return write


def dagger_args(data, out, *extra):
    return ["car", "dagger", "--data-dir", data, "--out", out, "--episodes", "1",
            "--max-steps", STEPS, *EPOCHS, *extra]


def weights(path):
    with np.load(path) as f:
        return {name: f[name] for name in f.files}


# -- with the simulator ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_round_adds_the_expert_labels_of_the_states_visited(recording, tmp_path, run,
                                                              assert_ok):
    # beta = 1: the expert drives every step, so the states are those of its own episode on the
    # round's track, and the recorder's frames and labels are the oracle.
    out = tmp_path / "run"
    assert_ok(run(*dagger_args(recording, out, "--rounds", 1, "--beta0", 1, "--beta-decay", 1)))
    with np.load(out / "round-000" / "episodes.npz") as f:
        added = {name: f[name] for name in f.files}
    seed = dagger.track_seeds(0, 0, 1)[0]
    oracle = car._record_episode((seed, expert_config("pursuit-v1"), STEPS, 0.0, "grey"))
    assert len(added["labels"]) == STEPS - car.ZOOM_STEPS
    np.testing.assert_array_equal(added["frames"], oracle["frames"])
    np.testing.assert_array_equal(added["labels"], oracle["labels"])
    np.testing.assert_array_equal(added["step"], oracle["steps"])
    record = json.loads((out / "rounds.jsonl").read_text().splitlines()[0])
    assert record["frames_added"] == len(added["labels"]) and record["expert_steps"] == STEPS
    assert record["seeds"] == [seed]
    aggregate, original = load_dataset("carracing", out / "data"), load_dataset(
        "carracing", recording)
    np.testing.assert_array_equal(aggregate.train.images[-len(added["labels"]):],
                                  added["frames"])
    np.testing.assert_array_equal(aggregate.train.images[:len(original.train.labels)],
                                  original.train.images)


@pytest.mark.slow
def test_validation_and_test_episodes_are_never_changed(recording, tmp_path, run, assert_ok):
    before = {p.name: p.read_bytes() for p in recording.iterdir()}
    out = tmp_path / "run"
    assert_ok(run(*dagger_args(recording, out, "--rounds", 2)))
    assert {p.name: p.read_bytes() for p in recording.iterdir()} == before
    aggregate, original = load_dataset("carracing", out / "data"), load_dataset(
        "carracing", recording)
    for split in ("validation", "test"):
        for field in ("images", "labels"):
            a, b = getattr(getattr(aggregate, split), field), getattr(getattr(original, split),
                                                                      field)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [0, 1]
    assert len(aggregate.train.labels) == len(original.train.labels) + sum(
        r["frames_added"] for r in rounds) == rounds[-1]["train_frames"]
    for key in ("train_accuracy", "validation_accuracy", "test_accuracy", "mean_return",
                "sem_return", "seconds"):
        assert all(key in r for r in rounds)
    # every existing tool reads the aggregate: train on it
    assert_ok(run("train", "--dataset", "carracing", "--data-dir", out / "data", "--epochs-dense",
                  1, "--epochs-prune", 1, "--epochs-sparse", 0, "--epochs-binary", 0, "--out",
                  tmp_path / "trained"))


@pytest.mark.slow
@pytest.mark.parametrize("trainer", [[], ["--trainer", "psiren-step4", "--epochs-binary", "3"]],
                         ids=["psiren", "psiren-step4"])
def test_a_killed_run_resumes_to_the_same_network(recording, tmp_path, run, assert_ok,
                                                  monkeypatch, trainer):
    # psiren-step4 continues the last round's network: the resumed round 1 starts from round 0's
    # saved checkpoint, where the whole run started it from the network still in memory.
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert_ok(run(*dagger_args(recording, whole, "--rounds", 2, *trainer)))
    train = dagger.train

    def dies_in_round_1(data, settings, round_, previous=None, member=0):
        if round_ == 1:
            raise RuntimeError("killed")
        return train(data, settings, round_, previous, member)

    monkeypatch.setattr(dagger, "train", dies_in_round_1)
    result = run(*dagger_args(recording, killed, "--rounds", 2, *trainer))
    assert isinstance(result.exception, RuntimeError)
    assert len((killed / "rounds.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(dagger, "train", train)
    assert_ok(run(*dagger_args(recording, killed, "--rounds", 2, *trainer)))
    for name in ("start", "round-000", "round-001"):
        a, b = weights(whole / name / "model.npz"), weights(killed / name / "model.npz")
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        # the integer thresholds and the scales too: on this tiny task step 4 moves only those
        a, b = (checkpoint.read_meta(folder / name / "model.json") for folder in (whole, killed))
        assert all(a[key] == b[key] for key in ("thresholds", "last_gain", "logit_scale"))
    assert (whole / "data" / "carracing.npz").read_bytes() == \
        (killed / "data" / "carracing.npz").read_bytes()
    strip = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (whole / "rounds.jsonl").read_text().splitlines()]
    assert strip == [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                     for line in (killed / "rounds.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sense_rounds_continue_from_the_last_network(recording, tmp_path, run, assert_ok):
    # A search only swaps weights within a layer: a round's network of the start's family was
    # searched from it, with no gradient and no new training.
    start = tmp_path / "start"
    net = random_network("car", 80, 0, load_dataset("carracing", recording).train.images)
    checkpoint.save(net, start, {"dataset": "carracing"})
    out = tmp_path / "run"
    assert_ok(run(*dagger_args(recording, out, "--rounds", 2, "--trainer", "sense",
                               "--sense-steps", 2, "--checkpoint", start)))
    for name in ("start", "round-000", "round-001"):
        assert checkpoint.load(out / name)[0].family() == net.family()
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["search_steps"] for r in rounds] == [[2], [2]]    # each ended by --sense-steps


def one_sense_round(recording, tmp_path, run, assert_ok, steps, *extra):
    """One SENSE round of ``steps`` steps (and ``extra`` options) from a random 80% start ->
    the start, the round's network's ternary weights and the round's aggregate."""
    start = tmp_path / "start"
    net = random_network("car", 80, 0, load_dataset("carracing", recording).train.images)
    checkpoint.save(net, start, {"dataset": "carracing"})
    out = tmp_path / "run"
    assert_ok(run(*dagger_args(recording, out, "--rounds", 1, "--trainer", "sense",
                               "--sense-steps", steps, "--checkpoint", start, *extra)))
    return (net, checkpoint.load(out / "round-000")[0].ternary_weights(),
            load_dataset("carracing", out / "data"))


def searched_alone(net, data, keep, steps, **config):
    """The ternary weights where the same search, run alone on ``data``, ends (``keep``)."""
    config = SenseConfig(max_steps=steps, budget_seconds=600.0,
                         seed=dagger.round_seed(0, 0, dagger.TRAINING), **config)
    return search(net, data, config, keep=keep)[0].ternary_weights()


def same_weights(a: dict, b: dict) -> bool:
    return all(np.array_equal(w, b[name]) for name, w in a.items())


@pytest.mark.slow
def test_a_sense_round_can_hand_on_its_search_s_last_network(recording, tmp_path, run,
                                                              assert_ok):
    # The round's network is the one the same search, run alone on the round's aggregate,
    # ends at; it is not the search's best by validation frames.
    net, found, data = one_sense_round(recording, tmp_path, run, assert_ok, 6,
                                       "--sense-keep", "last")
    for keep in ("last", "best"):
        assert same_weights(found, searched_alone(net, data, keep, 6)) == (keep == "last")


@pytest.mark.slow
def test_a_sense_round_can_score_a_subsample_of_the_aggregate(recording, tmp_path, run,
                                                               assert_ok, monkeypatch):
    # The round's search is search --subsample (its settings, as the round passes them), and
    # its network is the one that search, run alone on the round's aggregate, ends at. (On so
    # few frames the search on every frame ends at the same network: the margin saturates.)
    configs = []
    monkeypatch.setattr(dagger, "search", lambda net, data, config, keep: (
        configs.append(config) or search(net, data, config, keep=keep)))
    net, found, data = one_sense_round(recording, tmp_path, run, assert_ok, 8, "--sense-keep",
                                       "last", "--sense-subsample", 0.5,
                                       "--sense-redraw-steps", 3)
    assert [(c.subsample, c.redraw_steps, c.max_steps) for c in configs] == [(0.5, 3, 8)]
    assert same_weights(found, searched_alone(net, data, "last", 8, subsample=0.5,
                                              redraw_steps=3))


@pytest.mark.slow
def test_psiren_step4_rounds_fine_tune_the_last_network_with_its_mask_fixed(recording, tmp_path,
                                                                           run, assert_ok):
    # Step 4 moves signs and gains, never zeros: every round's network has the zero positions of
    # the p-SIREN network it started from, and each round is the last one fine-tuned (it differs
    # from the one before in a weight or a threshold).
    out = tmp_path / "run"
    assert_ok(run(*dagger_args(recording, out, "--rounds", 2, "--trainer", "psiren-step4",
                               "--epochs-binary", 10)))
    nets = [checkpoint.load(out / name)[0] for name in ("start", "round-000", "round-001")]
    for before, after in zip(nets, nets[1:]):
        a, b = before.ternary_weights(), after.ternary_weights()
        assert all(np.array_equal(a[k] == 0, b[k] == 0) for k in a)
        assert any(not np.array_equal(a[k], b[k]) for k in a) or \
            before.thresholds != after.thresholds
    assert json.loads((out / "dagger.json").read_text())["trainer"] == "psiren-step4"


@pytest.mark.slow
def test_a_search_ended_by_its_time_budget_is_recorded_and_said(recording, tmp_path, run,
                                                                  assert_ok):
    # A budget far below one step: the search stops before its first step, which the round's
    # record (search_steps) and the log both say, since a rerun under other load may differ.
    start = tmp_path / "start"
    checkpoint.save(random_network("car", 80, 0, load_dataset("carracing", recording)
                                   .train.images), start, {"dataset": "carracing"})
    out = tmp_path / "run"
    result = run(*dagger_args(recording, out, "--rounds", 1, "--trainer", "sense",
                              "--sense-steps", 5, "--sense-minutes", 1e-9, "--checkpoint", start))
    assert_ok(result)
    assert json.loads((out / "rounds.jsonl").read_text())["search_steps"] == [0]
    assert "the time budget ended the search" in result.output


def random_starts(recording, tmp_path, seeds):
    """Random 80% car networks saved as checkpoints (one per seed): an ensemble's start."""
    images = load_dataset("carracing", recording).train.images
    paths = []
    for seed in seeds:
        checkpoint.save(random_network("car", 80, seed, images), tmp_path / f"start{seed}",
                        {"dataset": "carracing"})
        paths.append(tmp_path / f"start{seed}")
    return paths


@pytest.mark.slow
def test_an_ensemble_drives_as_one_and_each_member_is_searched_again(recording, tmp_path, run,
                                                                      assert_ok):
    starts = random_starts(recording, tmp_path, [0, 1])
    out = tmp_path / "run"
    assert_ok(run(*dagger_args(recording, out, "--rounds", 1, "--trainer", "sense",
                               "--sense-steps", 2, "--checkpoint", starts[0], "--checkpoint",
                               starts[1])))
    # the frames were collected by the two start networks driving together: the return of
    # round 0's episode is that of car drive with the two (summed logits), an independent path
    with np.load(out / "round-000" / "episodes.npz") as f:
        seed, collected = int(f["seeds"][0]), float(f["returns"][0])
    drove = car.drive(starts, episodes=1, seed=seed, max_steps=STEPS, workers=1)
    assert collected == drove["episodes"][0]["return"]
    members = [checkpoint.load(out / "round-000" / f"member-{k}")[0] for k in (0, 1)]
    for member, start in zip(members, starts):          # a search keeps each start's family
        assert member.family() == checkpoint.load(start)[0].family()
    assert not (out / "round-000" / "model.npz").exists()
    # the record's accuracies are the ensemble's (summed logits), each member's beside them
    record = json.loads((out / "rounds.jsonl").read_text())
    data = load_dataset("carracing", out / "data")
    scores = ensemble.evaluate(members, data.test.images, data.test.labels)
    assert record["test_accuracy"] == scores["sum"]
    assert [m["test_accuracy"] for m in record["member_accuracies"]] == scores["members"]
    # the round folder is the ensemble for every tool that reads members
    assert ensemble.member_paths([out / "round-000"]) == [out / "round-000" / "member-0",
                                                          out / "round-000" / "member-1"]
    assert json.loads((out / "summary.json").read_text())["checkpoint"] == str(out / "round-000")


@pytest.mark.slow
def test_a_killed_ensemble_run_resumes_to_the_same_members(recording, tmp_path, run, assert_ok,
                                                           monkeypatch):
    args = ["--rounds", 2, "--trainer", "sense", "--sense-steps", 2, "--members", 2]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert_ok(run(*dagger_args(recording, whole, *args)))
    train = dagger.train

    def dies_in_round_1(data, settings, round_, previous=None, member=0):
        if round_ == 1 and member == 1:
            raise RuntimeError("killed")
        return train(data, settings, round_, previous, member)

    monkeypatch.setattr(dagger, "train", dies_in_round_1)
    assert isinstance(run(*dagger_args(recording, killed, *args)).exception, RuntimeError)
    monkeypatch.setattr(dagger, "train", train)
    assert_ok(run(*dagger_args(recording, killed, *args)))
    for name in ("start", "round-000", "round-001"):
        for k in (0, 1):
            a = weights(whole / name / f"member-{k}" / "model.npz")
            b = weights(killed / name / f"member-{k}" / "model.npz")
            assert a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)
    # the members differ: each has its own seed
    a, b = (weights(whole / "start" / f"member-{k}" / "model.npz") for k in (0, 1))
    assert any(not np.array_equal(a[key], b[key]) for key in a)


# -- settings and errors, no simulator ------------------------------------------------------------

def test_the_expert_defaults_to_the_recordings(fake_recording):
    assert dagger.settings_for(fake_recording(), 1)["expert_name"] == "pursuit-v1"
    folder = fake_recording(expert_name="pursuit-v2")
    assert dagger.settings_for(folder, 1)["expert_name"] == "pursuit-v2"
    assert dagger.settings_for(folder, 1, expert="pursuit-v1")["expert_name"] == "pursuit-v1"


def test_round_seeds_depend_on_the_seed_and_round_only():
    assert dagger.track_seeds(0, 3, 4) == dagger.track_seeds(0, 3, 4)
    assert dagger.track_seeds(0, 3, 4) != dagger.track_seeds(0, 4, 4)
    assert dagger.track_seeds(0, 3, 4) != dagger.track_seeds(1, 3, 4)
    assert min(dagger.track_seeds(5, 0, 100)) >= dagger.FIRST_TRACK_SEED
    assert dagger.beta(0.5, 0.5, 2) == 0.125


def test_a_folder_without_a_recording_is_one_line_error(tmp_path, run, assert_one_line_error):
    (tmp_path / "empty").mkdir()
    line = assert_one_line_error(run(*dagger_args(tmp_path / "empty", tmp_path / "run")))
    assert "not a car-racing recording" in line


def test_zero_rounds_is_one_line_error(fake_recording, tmp_path, run, assert_one_line_error):
    line = assert_one_line_error(run(*dagger_args(fake_recording(), tmp_path / "run", "--rounds",
                                                  0)))
    assert "rounds must be" in line


def test_an_mnist_checkpoint_is_one_line_error(fake_recording, trained, tmp_path, run,
                                               assert_one_line_error):
    line = assert_one_line_error(run(*dagger_args(fake_recording(), tmp_path / "run",
                                                  "--checkpoint", trained)))
    assert "car network is needed" in line


def test_a_rerun_with_other_settings_is_one_line_error(fake_recording, tmp_path, run,
                                                       assert_one_line_error):
    folder, out = fake_recording(), tmp_path / "run"
    out.mkdir()
    (out / dagger.SETTINGS_FILE).write_text(json.dumps(dagger.settings_for(folder, 2, seed=1)))
    line = assert_one_line_error(run(*dagger_args(folder, out, "--rounds", 2)))
    assert "with other settings (" in line and "give its options again" in line


def test_a_folder_of_another_run_is_refused(fake_recording, trained_copy, run,
                                            assert_one_line_error):
    line = assert_one_line_error(run(*dagger_args(fake_recording(), trained_copy)))
    assert "trained run" in line


def test_a_checkpoint_saved_mid_round_does_not_count_as_a_finished_round(tmp_path):
    (tmp_path / dagger.ROUNDS_FILE).write_text('{"round": 0}\n{"round": 1')
    assert dagger.read_rounds(tmp_path) == [{"round": 0}]
    assert checkpoint.checkpoint_paths(dagger.model_path(tmp_path, 0))[0].parent.name == \
        "round-000"


def test_a_start_checkpoint_per_member_or_none(fake_recording, tmp_path, run,
                                               assert_one_line_error):
    folder = fake_recording()
    net = random_network("car", 80, 0, load_dataset("carracing", folder).train.images)
    checkpoint.save(net, tmp_path / "start", {"dataset": "carracing"})
    line = assert_one_line_error(run(*dagger_args(folder, tmp_path / "run", "--checkpoint",
                                                  tmp_path / "start", "--members", 2)))
    assert "1 start checkpoints for 2 members" in line
    settings = dagger.settings_for(folder, 1, start=[tmp_path / "start"] * 3)
    assert settings["members"] == 3 and len(settings["start"]) == 3
    assert dagger.settings_for(folder, 1, start=tmp_path / "start")["start"] == str(
        (tmp_path / "start" / "model.npz").resolve())


def test_a_run_from_before_ensembles_continues(fake_recording, tmp_path):
    # dagger.json written before the members setting existed meant one network
    folder = fake_recording()
    saved = dagger.settings_for(folder, 2)
    del saved["members"]
    dagger._check_same(saved, dagger.settings_for(folder, 3), tmp_path)
    with pytest.raises(MinisenseError, match="members: 1"):
        dagger._check_same(saved, dagger.settings_for(folder, 3, members=2), tmp_path)


def test_a_run_from_before_sense_keep_handed_on_the_best_network(fake_recording, tmp_path):
    folder = fake_recording()
    saved = dagger.settings_for(folder, 2, trainer="sense")
    del saved["sense_keep"]
    dagger._check_same(saved, dagger.settings_for(folder, 3, trainer="sense"), tmp_path)
    with pytest.raises(MinisenseError, match="sense_keep: 'best'"):
        dagger._check_same(saved, dagger.settings_for(folder, 3, trainer="sense",
                                                      sense_keep="last"), tmp_path)


def test_keeping_the_last_network_without_sense_is_one_line_error(fake_recording, tmp_path, run,
                                                                 assert_one_line_error):
    line = assert_one_line_error(run(*dagger_args(fake_recording(), tmp_path / "run",
                                                  "--rounds", 1, "--sense-keep", "last")))
    assert "needs --trainer sense" in line and "psiren" in line


def test_member_folders_are_read_in_the_order_of_their_numbers(tmp_path):
    for k in (0, 2, 10, 1):
        (tmp_path / f"member-{k}").mkdir()
        (tmp_path / f"member-{k}" / "model.npz").write_bytes(b"")
    assert [p.name for p in ensemble.member_paths([tmp_path])] == [
        "member-0", "member-1", "member-2", "member-10"]


# -- frames near a departure ----------------------------------------------------------------------

def test_kept_frames_are_those_near_the_first_departure():
    steps = np.arange(50, 60)
    assert dagger.kept_frames(steps, None, 0).all() and dagger.kept_frames(steps, 55, 0).all()
    assert not dagger.kept_frames(steps, None, 3).any()
    np.testing.assert_array_equal(np.flatnonzero(dagger.kept_frames(steps, 55, 2)),
                                  [3, 4, 5, 6, 7])                 # steps 53..57
    np.testing.assert_array_equal(np.flatnonzero(dagger.kept_frames(steps, 50, 1)), [0, 1])


def test_a_round_keeps_the_frames_near_the_departure_each_repeated(fake_recording, tmp_path,
                                                                   monkeypatch):
    # The simulator is replaced by a drive whose frames are numbered by step and whose car
    # leaves the road at step 55 on the first track and never on the second: the oracle is
    # which steps' frames the round adds, and how often.
    def drive(seed, policy, render=True, max_steps=car.MAX_STEPS, on_frame=None):
        for step in range(max_steps):
            on_frame(step, np.full((96, 96, 3), step, np.uint8), step % 3, None)
        departed = 55 if seed == dagger.track_seeds(0, 0, 2)[0] else None
        return {"seed": seed, "return": 0.0, "steps": max_steps, "lap": False, "top_speed": 0.0,
                "off_road_steps": int(departed is not None), "first_off_road": departed,
                "wrong_way_steps": 0}
    monkeypatch.setattr(car, "run_episode", drive)
    folder = fake_recording()
    start = tmp_path / "start"
    checkpoint.save(random_network("car", 80, 0, load_dataset("carracing", folder).train.images),
                    start, {"dataset": "carracing"})
    settings = dagger.settings_for(folder, 1, episodes=2, start=start, max_steps=60,
                                   near_departure=2, repeat_kept=3)
    added, runs = dagger.collect([start], settings, 0)
    np.testing.assert_array_equal(added["step"], np.repeat([53, 54, 55, 56, 57], 3))
    np.testing.assert_array_equal(added["frames"][:, 0, 0], np.repeat([53, 54, 55, 56, 57], 3))
    np.testing.assert_array_equal(added["labels"], np.repeat([53, 54, 55, 56, 57], 3) % 3)
    np.testing.assert_array_equal(added["episode"], np.zeros(15))
    assert [r["first_off_road"] for r in runs] == [55, None]
    # the track without a departure adds an episode without frames; the aggregate still loads
    arrays, meta = dagger.read_recording(folder)
    dagger.write_recording(tmp_path / "agg", *dagger.aggregate(arrays, meta, [added]))
    data = load_dataset("carracing", tmp_path / "agg")
    assert len(data.train.labels) == 10 + 15


def test_near_departure_and_repeats_are_checked(fake_recording):
    folder = fake_recording()
    for bad in ({"near_departure": -1}, {"near_departure": 1001}, {"repeat_kept": 0},
                {"repeat_kept": 2.5}, {"near_departure": True}):
        with pytest.raises(MinisenseError, match=next(iter(bad))):
            dagger.settings_for(folder, 1, **bad)


def test_a_run_from_before_near_departure_kept_every_frame(fake_recording, tmp_path):
    folder = fake_recording()
    saved = dagger.settings_for(folder, 2)
    del saved["near_departure"], saved["repeat_kept"]
    dagger._check_same(saved, dagger.settings_for(folder, 3), tmp_path)
    with pytest.raises(MinisenseError, match="near_departure: 0"):
        dagger._check_same(saved, dagger.settings_for(folder, 3, near_departure=50), tmp_path)


# -- a subsampled fitness for SENSE rounds --------------------------------------------------------

def test_a_sense_subsample_is_checked_and_only_for_sense(fake_recording, tmp_path, run,
                                                         assert_one_line_error):
    folder = fake_recording()
    for bad in (0, 1.5, float("nan"), "half"):
        with pytest.raises(MinisenseError, match="subsample"):
            dagger.settings_for(folder, 1, trainer="sense", sense_subsample=bad)
    with pytest.raises(MinisenseError, match="redraw_steps"):
        dagger.settings_for(folder, 1, trainer="sense", sense_subsample=0.5, sense_redraw_steps=0)
    line = assert_one_line_error(run(*dagger_args(folder, tmp_path / "run", "--rounds", 1,
                                                  "--sense-subsample", 0.5)))
    assert "--trainer sense" in line and "psiren" in line


def test_a_run_from_before_sense_subsample_scored_every_frame(fake_recording, tmp_path):
    # Runs without the option keep their settings as written; one with it is another run.
    folder = fake_recording()
    saved = dagger.settings_for(folder, 2, trainer="sense")
    assert saved["sense"] == {"max_steps": 200, "budget_seconds": 600.0}
    dagger._check_same(saved, dagger.settings_for(folder, 3, trainer="sense"), tmp_path)
    with pytest.raises(MinisenseError, match="sense: "):
        dagger._check_same(saved, dagger.settings_for(folder, 3, trainer="sense",
                                                      sense_subsample=0.5), tmp_path)


# -- driving the rounds with a logit offset -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("cls", range(3))
def test_the_network_drives_a_round_with_its_logit_offset(cls):
    # An offset far beyond any logit decides every step: the actions executed are that class's,
    # whatever the network's own argmax (the oracle), and the expert still labels every step.
    frames = np.random.default_rng(0).integers(0, 256, (50, 32, 32)).astype(np.uint8)
    net = random_network("car", 80, 0, frames)
    offset = [0.0, 0.0, 0.0]
    offset[cls] = 1e9
    counts, actions, labels = {"agree": 0, "expert": 0}, [], []
    policy = dagger.mixed_policy(net, expert_config("pursuit-v1"), 0.0,
                                 np.random.default_rng(0), counts, logit_offset=offset)

    def spy(env, observation):
        action, wanted = policy(env, observation)
        actions.append(action)
        labels.append(wanted)
        return action, wanted
    car.run_episode(7, spy, max_steps=20)
    np.testing.assert_array_equal(np.array(actions), np.tile(car.ACTIONS[cls], (20, 1)))
    assert counts == {"agree": labels.count(cls), "expert": 0}


@pytest.mark.slow
def test_a_round_collects_the_states_its_offset_network_reaches(fake_recording, tmp_path):
    # Offset 1e9 on "left": the round's car turns left at every step, so its frames are those
    # of a car held at full left on the round's track (the oracle), labelled by the expert.
    frames = np.random.default_rng(0).integers(0, 256, (50, 32, 32)).astype(np.uint8)
    path = checkpoint.save(random_network("car", 80, 0, frames), tmp_path / "net",
                           {"dataset": "carracing"})
    settings = dagger.settings_for(fake_recording(), 1, episodes=1, max_steps=STEPS,
                                   logit_offset=[1e9, 0, 0])
    arrays, runs = dagger.collect([path], settings, 0)
    config = expert_config(settings["expert_name"])
    oracle_frames, oracle_labels = [], []

    def held_left(env, observation):
        return car.ACTIONS[0], dagger.label(env, config)

    def keep(step, observation, cls, env):
        if step >= car.ZOOM_STEPS:
            oracle_frames.append(car.network_frame(env, observation, "grey"))
            oracle_labels.append(cls)
    car.run_episode(dagger.track_seeds(0, 0, 1)[0], held_left, max_steps=STEPS, on_frame=keep)
    np.testing.assert_array_equal(arrays["frames"], np.array(oracle_frames))
    np.testing.assert_array_equal(arrays["labels"], np.array(oracle_labels))
    assert runs[0]["expert"] == 0


def test_a_logit_offset_is_checked_recorded_and_part_of_the_run(fake_recording, tmp_path, run,
                                                                assert_one_line_error):
    folder = fake_recording()
    saved = dagger.settings_for(folder, 2, logit_offset=(0, 2, 0))
    assert saved["logit_offset"] == [0.0, 2.0, 0.0]
    json.dumps(saved)                                   # dagger.json can hold it
    with pytest.raises(MinisenseError, match="logit_offset"):
        dagger._check_same(saved, dagger.settings_for(folder, 3), tmp_path)
    for bad in ((0, 2), (0, float("nan"), 0), ("a", 0, 0)):
        with pytest.raises(MinisenseError, match="logit offset"):
            dagger.settings_for(folder, 1, logit_offset=bad)
    line = assert_one_line_error(run(*dagger_args(folder, tmp_path / "run", "--rounds", 1,
                                                  "--logit-offset", "0,2")))
    assert "logit" in line and not (tmp_path / "run").exists()


def test_a_run_from_before_the_logit_offset_drove_without_one(fake_recording, tmp_path):
    folder = fake_recording()
    saved = dagger.settings_for(folder, 2)
    assert saved["logit_offset"] is None
    del saved["logit_offset"]
    dagger._check_same(saved, dagger.settings_for(folder, 3), tmp_path)
    with pytest.raises(MinisenseError, match="logit_offset: None"):
        dagger._check_same(saved, dagger.settings_for(folder, 3, logit_offset=[0, 1, 0]),
                           tmp_path)

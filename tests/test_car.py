"""Tests for the car-racing task (minisense.car, minisense.expert, the carracing dataset, the CLI).

One tiny recording (3 episodes cut at 70 steps) is shared by the module; the expert's lap runs
without drawing frames. The whole file takes well under a minute.
"""

import json

import numpy as np
import pytest

from minisense import car, checkpoint, data, ensemble, expert
from minisense.data import architecture_for, load_dataset
from minisense.errors import MinisenseError
from minisense.expert import ACTIONS, ExpertConfig, expert_config, next_wheel_angle
from minisense.fast.layers import Flatten
from minisense.network import build_network
from minisense.runs import random_network

TINY_STEPS = 70


# Only --data-dir can hold a recording here (the shared fixture in conftest.py).
pytestmark = pytest.mark.usefixtures("no_other_data")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A recording of 3 short episodes (seeds 7, 8, 9) in two processes."""
    out = tmp_path_factory.mktemp("car") / "data"
    meta = car.record(3, 7, out, workers=2, max_steps=TINY_STEPS)
    return out, meta


@pytest.fixture(scope="module")
def car_checkpoint(tiny, tmp_path_factory):
    """A random 80%-sparse car network, thresholds calibrated on the tiny recording."""
    data = load_dataset("carracing", tiny[0])
    net = random_network("car", 80, 0, data.train.images)
    path = tmp_path_factory.mktemp("ckpt") / "car"
    checkpoint.save(net, path, {"dataset": "carracing"})
    return path


@pytest.mark.slow
def test_expert_finishes_a_lap_with_three_classes():
    result = car.run_episode(3, car.expert_policy(ExpertConfig()), render=False)
    assert result["lap"], result
    assert result["return"] >= 850, result


@pytest.mark.slow
def test_physics_do_not_depend_on_drawing_frames():
    policy = car.expert_policy(ExpertConfig())
    drawn = car.run_episode(5, policy, render=True, max_steps=120)
    skipped = car.run_episode(5, policy, render=False, max_steps=120)
    assert drawn == skipped


class FakeEnv:
    """Just enough of CarRacing for ``expert.label``: the front wheel angle."""

    def __init__(self, wheel_angle):
        joint = type("Joint", (), {"angle": wheel_angle})()
        wheel = type("Wheel", (), {"joint": joint})()
        self.unwrapped = type("Unwrapped", (), {"car": type("Car", (), {"wheels": [wheel]})()})()


@pytest.mark.parametrize("labelling, wheel_angle, wheel_target, speed, allowed, expected", [
    ("threshold", 0.0, 0.4, 50, 60, 0), ("threshold", 0.0, -0.4, 50, 60, 2),
    ("threshold", 0.0, 0.2, 70, 60, 1),
    ("angle", 0.0, 0.3, 50, 60, 0),      # the left class reaches the wanted angle exactly
    ("angle", 0.0, 0.02, 50, 60, 1),     # close enough to straight: gas while too slow
    ("angle", 0.0, 0.02, 70, 60, 0),     # the same angle when too fast: coast in a turn
    ("angle", 0.3, 0.0, 50, 60, 1),      # straightening the wheel
    ("angle", -0.1, -0.3, 50, 60, 2),
])
def test_label_follows_the_labelling_rule(monkeypatch, labelling, wheel_angle, wheel_target,
                                          speed, allowed, expected):
    monkeypatch.setattr(expert, "plan", lambda env, config: (wheel_target, speed, allowed))
    assert expert.label(FakeEnv(wheel_angle), ExpertConfig(labelling=labelling)) == expected


def test_perturbed_policy_executes_random_blocks_but_keeps_the_expert_label():
    policy = car.perturbed(lambda env, observation: (car.ACTIONS[1], 1), 0.1,
                           np.random.default_rng(0), hold_steps=10)
    steps = [policy(None, None) for _ in range(400)]
    assert all(cls == 1 for _, cls in steps)
    executed = np.array([np.flatnonzero((car.ACTIONS == a).all(axis=1))[0] for a, _ in steps])
    assert 0 < (executed != 1).sum() < 400 and set(executed) == {0, 1, 2}
    starts = np.flatnonzero(np.diff(np.r_[1, executed]) != 0)   # runs are at least 10 long ...
    lengths = np.diff(np.r_[starts, len(executed)])
    assert (lengths[executed[starts] != 1] % 10 == 0).all()      # ... of the held random class
    unperturbed = car.perturbed(lambda env, observation: (car.ACTIONS[2], 2), 0.0,
                                np.random.default_rng(0))
    assert all(np.array_equal(unperturbed(None, None)[0], car.ACTIONS[2]) for _ in range(50))


def test_wheel_turns_at_most_one_step_toward_its_target():
    assert next_wheel_angle(0.0, 0.6) == pytest.approx(0.06)
    assert next_wheel_angle(0.03, 0.0) == 0.0
    assert next_wheel_angle(-0.4, -0.6) == pytest.approx(-0.46)   # the joint limit clips later
    assert ACTIONS.shape == (3, 3) and ACTIONS[1, 1] > 0 and ACTIONS[0, 0] < 0 < ACTIONS[2, 0]


def test_preprocess_is_grey_3x3_block_mean():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    small = data.preprocess(frame)
    assert small.shape == (32, 32) and small.dtype == np.uint8
    grey = frame @ np.array([0.299, 0.587, 0.114])
    for i, j in [(0, 0), (5, 17), (31, 31)]:
        assert small[i, j] == int(np.rint(grey[3 * i:3 * i + 3, 3 * j:3 * j + 3].mean()))
    assert np.array_equal(data.preprocess(np.stack([frame, frame]))[1], small)


def test_car_network_flattens_to_576_and_has_3_outputs():
    net = build_network(architecture_for("carracing"), 0)
    x = np.zeros((2, 32, 32, 1), np.float32)
    for module in net.modules:
        x = module.forward(x)
        if isinstance(module, Flatten):
            assert x.shape == (2, 576)
    assert x.shape == (2, 3)


def test_split_is_by_episode_and_needs_three():
    assert data.split_episodes(3) == {"train": [0], "validation": [1], "test": [2]}
    s = data.split_episodes(25)
    assert (len(s["train"]), len(s["validation"]), len(s["test"])) == (19, 3, 3)
    with pytest.raises(MinisenseError, match="at least 3 episodes"):
        data.split_episodes(2)


@pytest.mark.slow
def test_recording_round_trips_through_the_loader(tiny):
    out, meta = tiny
    data = load_dataset("carracing", out)
    per_episode = TINY_STEPS - car.ZOOM_STEPS
    assert meta["frames"] == 3 * per_episode and meta["seed"] == 7
    with np.load(out / "carracing.npz", allow_pickle=False) as f:
        frames, labels, episode = f["frames"], f["labels"], f["episode"]
        assert f["step"].min() == car.ZOOM_STEPS and list(f["seeds"]) == [7, 8, 9]
    for split, index in (("train", 0), ("validation", 1), ("test", 2)):
        part = getattr(data, split)
        assert part.images.shape == (per_episode, 32, 32) and part.images.dtype == np.uint8
        assert np.array_equal(part.images, frames[episode == index])
        assert np.array_equal(part.labels, labels[episode == index].astype(np.int64))
    assert data.num_classes == 3 and architecture_for(data.name) == "car"
    assert json.loads((out / "carracing.json").read_text())["splits"]["test"] == [2]


@pytest.mark.slow
def test_recording_is_the_same_for_one_or_two_workers(tiny, tmp_path):
    car.record(3, 7, tmp_path, workers=1, max_steps=TINY_STEPS)
    with np.load(tiny[0] / "carracing.npz") as a, np.load(tmp_path / "carracing.npz") as b:
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name


@pytest.mark.slow
def test_train_and_eval_on_carracing_print_the_majority_baseline(tiny, tmp_path, run, assert_ok):
    result = run("train", "--dataset", "carracing", "--data-dir", tiny[0], "--sparsity", 80,
                 "--epochs-dense", 1, "--epochs-prune", 1, "--epochs-sparse", 0,
                 "--epochs-binary", 1, "--out", tmp_path / "run")
    assert_ok(result)
    assert "majority class" in result.output
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert model["architecture"] == "car" and model["dataset"] == "carracing"
    result = run("eval", tmp_path / "run", "--data-dir", tiny[0])
    assert_ok(result)
    data = load_dataset("carracing", tiny[0])
    baseline = np.bincount(data.test.labels).max() / len(data.test.labels)
    assert f"majority class {100 * baseline:.2f}%)" in result.output


@pytest.mark.slow
def test_car_drive_runs_a_short_episode_and_writes_a_gif(car_checkpoint, tmp_path, run, assert_ok):
    gif = tmp_path / "drive.gif"
    result = run("car", "drive", car_checkpoint, "--episodes", 2, "--max-steps", 60,
                 "--seed", 1000, "--workers", 1, "--gif", gif, "--json", tmp_path / "drive.json")
    assert_ok(result)
    assert "mean return" in result.output and "laps finished 0 of 2" in result.output
    assert gif.read_bytes()[:6] == b"GIF89a"
    record = json.loads((tmp_path / "drive.json").read_text())
    assert [e["steps"] for e in record["episodes"]] == [60, 60]
    assert record["gif"]["return"] == record["episodes"][0]["return"]   # the same drive
    assert sum(record["episodes"][0]["class_counts"]) == 60


@pytest.mark.slow
def test_an_episode_says_whether_the_car_left_the_road_and_went_the_wrong_way():
    # The expert stays on the road, driving the track's way; a car at full gas with the wheel
    # hard left circles off the road, half of each circle against the track.
    expert = car.run_episode(1000, car.expert_policy(expert_config("pursuit-v3")),
                             render=False, max_steps=300)
    assert (expert["off_road_steps"], expert["first_off_road"], expert["wrong_way_steps"]) == \
        (0, None, 0)
    assert 50 < expert["top_speed"] <= 63                      # pursuit-v3's cap is 62
    circling = car.run_episode(1000, lambda env, observation: (np.array([-1.0, 1.0, 0.0]), None),
                               render=False, max_steps=300)
    assert 0 < circling["first_off_road"] < 100 and circling["off_road_steps"] > 150
    assert 50 < circling["wrong_way_steps"] < 250
    summary = car.summarize([expert, circling])
    assert (summary["off_road_episodes"], summary["wrong_way_episodes"]) == (1, 1)
    assert summary["top_speed"] == expert["top_speed"]


@pytest.mark.slow
def test_an_ensemble_of_one_network_twice_drives_as_that_network(car_checkpoint):
    alone = car.drive(car_checkpoint, 1, 1000, 40, workers=1)
    twice = car.drive([car_checkpoint, car_checkpoint], 1, 1000, 40, workers=1)
    assert len(alone["members"]) == 1 and len(twice["members"]) == 2 and twice["commensurate"]
    assert twice["episodes"][0]["return"] == alone["episodes"][0]["return"]
    assert twice["episodes"][0]["class_counts"] == alone["episodes"][0]["class_counts"]


def test_a_zero_logit_offset_decides_as_the_exact_integer_argmax(car_checkpoint, tiny):
    """Post-hoc logit adjustment: with offset 0 the real-logit argmax is the exact integer one
    (a positive scale keeps the order and the first of ties), alone and in an ensemble; a
    gas offset only ever turns decisions to the gas, more of them the larger it is."""
    net, _ = checkpoint.load(car_checkpoint, architecture="car")
    images = load_dataset("carracing", tiny[0]).train.images
    for nets in ([net], [net, net]):
        logits = ensemble.member_logits(nets, images)
        exact = ensemble.combine(logits)["sum"]
        assert np.array_equal(car.adjusted_class(nets, logits, [0, 0, 0]), exact)
        spread = net.logit_scale * float(logits.std())
        shares = []
        for o in (0.5, 2.0, 1e9):
            adjusted = car.adjusted_class(nets, logits, [0, o * spread, 0])
            assert np.all((adjusted == exact) | (adjusted == 1))
            shares.append(np.mean(adjusted == 1))
        assert np.mean(exact == 1) <= shares[0] <= shares[1] < shares[2] == 1.0


@pytest.mark.slow
def test_a_drive_with_a_logit_offset_records_it_and_zero_drives_as_none(car_checkpoint):
    plain = car.drive(car_checkpoint, 1, 1000, 40, workers=1)
    zero = car.drive(car_checkpoint, 1, 1000, 40, workers=1, logit_offset=(0, 0, 0))
    gas = car.drive(car_checkpoint, 1, 1000, 40, workers=1, logit_offset=(0, 1e9, 0))
    assert "logit_offset" not in plain and zero["logit_offset"] == [0.0, 0.0, 0.0]
    assert zero["episodes"] == plain["episodes"]
    assert gas["episodes"][0]["class_counts"] == [0, 40, 0]


@pytest.mark.parametrize("offset", [(0, 1), (0, float("nan"), 0), (0, True, 0), "0,1,0"])
def test_a_bad_logit_offset_is_a_one_line_error(car_checkpoint, offset):
    with pytest.raises(MinisenseError, match="logit offset must be 3 finite numbers"):
        car.drive(car_checkpoint, 1, 1000, 40, workers=1, logit_offset=offset)


@pytest.mark.parametrize("offset", ["0,x,0", "0,inf,0", "0,1"])
def test_a_bad_logit_offset_option_is_a_one_line_error(car_checkpoint, offset, tmp_path, run,
                                                       assert_one_line_error):
    assert_one_line_error(run("car", "drive", car_checkpoint, "--max-steps", 5,
                              "--logit-offset", offset, "--json", tmp_path / "d.json"))
    assert not (tmp_path / "d.json").exists()


def test_missing_recording_is_a_one_line_error(tmp_path, run, assert_one_line_error):
    line = assert_one_line_error(run("train", "--dataset", "carracing", "--data-dir",
                                     tmp_path / "nowhere"))
    assert "minisense car record" in line


@pytest.mark.slow
def test_mnist_checkpoint_cannot_drive(tiny, tmp_path, run, assert_one_line_error):
    images = np.zeros((10, 28, 28), np.uint8)
    checkpoint.save(random_network("mnist", 80, 0, images), tmp_path / "mnist",
                    {"dataset": "mnist"})
    line = assert_one_line_error(run("car", "drive", tmp_path / "mnist", "--max-steps", 10))
    assert "mnist network" in line and "car" in line

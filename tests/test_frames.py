"""Tests for the car's frame kinds (minisense.data: the grey frame and the speedometer frame).

A network sees frames of the kind it was trained on: the recording says which, its checkpoints
carry it, driving uses it, and frames of another kind are refused with a one-line error.
"""

import json

import numpy as np
import pytest

from minisense import car, checkpoint, dagger, data
from minisense.data import (
    FRAME_SIZE,
    SPEEDOMETER_FINE_RANGE,
    SPEEDOMETER_RANGE,
    preprocess,
    speedometer,
)
from minisense.errors import MinisenseError
from minisense.expert import expert_config
from minisense.runs import random_network

STEPS = 60
pytestmark = pytest.mark.usefixtures("no_other_data")


def test_speedometer_fills_the_columns_its_speed_passes():
    low, high = SPEEDOMETER_RANGE
    per_column = (high - low) / FRAME_SIZE
    assert not speedometer(low).any() and not speedometer(low - 10).any()
    assert (speedometer(high) == 255).all() and (speedometer(high + 50) == 255).all()
    row = speedometer(low + 16.5 * per_column)           # half-way through column 16
    assert row[:16].tolist() == [255] * 16 and row[16] == 128 and not row[17:].any()
    rows = speedometer(np.linspace(0, 100, 2001)).astype(int)
    assert rows.shape == (2001, FRAME_SIZE)
    assert (np.diff(rows, axis=0) >= 0).all()            # faster lights no column less
    lit = rows.sum(axis=1) / 255 * per_column + low       # the speed the bar shows
    inside = (np.linspace(0, 100, 2001) > low) & (np.linspace(0, 100, 2001) < high)
    assert np.abs(lit - np.linspace(0, 100, 2001))[inside].max() < per_column / 255


def test_speedometer_frame_is_the_grey_frame_with_its_bottom_rows_redrawn():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    grey = preprocess(frames)
    drawn = preprocess(frames, [41.0, 63.7])
    assert np.array_equal(drawn[:, :30], grey[:, :30])
    for frame, speed in zip(drawn, [41.0, 63.7]):
        assert np.array_equal(frame[30:], np.stack([speedometer(speed)] * 2))
    assert np.array_equal(preprocess(frames[1], 63.7), drawn[1])


def test_fine_speedometer_frame_draws_its_bottom_row_at_half_a_unit_a_column():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    speeds = [41.0, 59.3, 60.2]
    fine = preprocess(frames, speeds, "speedometer-fine")
    coarse = preprocess(frames, speeds)
    assert np.array_equal(fine[:, :31], coarse[:, :31])      # the grey rows and the 30-70 bar
    assert SPEEDOMETER_FINE_RANGE == (50.0, 66.0)
    # By hand: 41 is below the fine bar; 59.3 fills 18.6 columns, 60.2 fills 20.4.
    assert not fine[0, 31].any()
    assert fine[1, 31, :18].tolist() == [255] * 18 and fine[1, 31, 18] == 153
    assert not fine[1, 31, 19:].any()
    assert fine[2, 31, :20].tolist() == [255] * 20 and fine[2, 31, 20] == 102
    # 59.3 and 60.2 differ by one coarse column's fraction, by two fine columns
    assert np.abs(coarse[1, 31].astype(int) - coarse[2, 31]).sum() < 255
    assert np.abs(fine[1, 31].astype(int) - fine[2, 31]).sum() > 255
    with pytest.raises(ValueError, match="speedometer frames"):
        preprocess(frames, speeds, "grey")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The same 3 short episodes (seeds 7, 8, 9) recorded with grey, speedometer and fine
    speedometer frames."""
    root = tmp_path_factory.mktemp("frames")
    car.record(3, 7, root / "grey", workers=1, max_steps=STEPS)
    car.record(3, 7, root / "speedo", workers=1, max_steps=STEPS, frame_kind="speedometer")
    car.record(3, 7, root / "fine", workers=1, max_steps=STEPS, frame_kind="speedometer-fine")
    return root / "grey", root / "speedo", root / "fine"


def _network(folder, path, **meta):
    net = random_network("car", 80, 0, data.load_dataset("carracing", folder).train.images)
    checkpoint.save(net, path, {"dataset": "carracing", **meta})
    return path


@pytest.mark.slow
def test_recorded_speedometer_frames_show_the_speed_of_the_car(recordings):
    grey, speedo, fine = recordings
    assert json.loads((speedo / "carracing.json").read_text())["frame_kind"] == "speedometer"
    assert data.load_dataset("carracing", speedo).frame_kind == "speedometer"
    assert data.load_dataset("carracing", grey).frame_kind == "grey"
    # The oracle: the expert's speeds on seed 7, read from the hull's velocity step by step.
    speeds = []
    policy = car.expert_policy(expert_config("pursuit-v1"))

    def timed(env, observation):
        speeds.append(float(np.linalg.norm(env.unwrapped.car.hull.linearVelocity)))
        return policy(env, observation)

    car.run_episode(7, timed, render=False, max_steps=STEPS)
    with np.load(speedo / "carracing.npz") as s, np.load(grey / "carracing.npz") as g:
        first = s["episode"] == 0
        assert np.array_equal(s["step"], g["step"]) and np.array_equal(s["labels"], g["labels"])
        assert np.array_equal(s["frames"][:, :30], g["frames"][:, :30])
        shown = s["frames"][first][:, 30]
        expected = speedometer(np.array(speeds)[s["step"][first]])
        assert np.array_equal(shown, expected) and shown.any()
    with np.load(fine / "carracing.npz") as f, np.load(speedo / "carracing.npz") as s:
        assert np.array_equal(f["frames"][:, :31], s["frames"][:, :31])
        shown = f["frames"][f["episode"] == 0][:, 31]
        expected = speedometer(np.array(speeds)[f["step"][first]], SPEEDOMETER_FINE_RANGE)
        assert np.array_equal(shown, expected)
    assert data.load_dataset("carracing", fine).frame_kind == "speedometer-fine"


@pytest.mark.slow
def test_a_network_drives_with_the_frames_it_was_trained_on(recordings, tmp_path, monkeypatch):
    seen = []
    drawn = car.preprocess
    monkeypatch.setattr(car, "preprocess", lambda frames, speed=None, kind="speedometer": (
        seen.append((speed, kind)) or drawn(frames, speed, kind)))
    for folder, kind in zip(recordings, ("grey", "speedometer", "speedometer-fine")):
        seen.clear()
        path = _network(folder, tmp_path / kind, **data.frame_meta(
            data.load_dataset("carracing", folder)))
        result = car.drive(path, 1, 1000, 20, workers=1)
        assert result["frame_kind"] == kind and len(seen) == 20
        assert all((s is None) == (kind == "grey") and k == kind for s, k in seen)


@pytest.mark.slow
def test_frames_of_another_kind_are_refused(recordings, tmp_path, run, assert_one_line_error):
    grey, speedo, _ = recordings
    grey_net = _network(grey, tmp_path / "grey")
    speedo_net = _network(speedo, tmp_path / "speedo", frame_kind="speedometer")
    line = assert_one_line_error(run("car", "drive", grey_net, speedo_net, "--max-steps", 10))
    assert "grey frames" in line and "speedometer frames" in line
    line = assert_one_line_error(run("eval", speedo_net, "--data-dir", grey))
    assert "trained on speedometer frames" in line and "a speedometer recording" in line
    line = assert_one_line_error(run("search", "--checkpoint", grey_net, "--data-dir", speedo,
                                     "--max-steps", 1, "--out", tmp_path / "s"))
    assert "trained on grey frames" in line
    with pytest.raises(MinisenseError, match="trained on grey frames"):
        dagger.settings_for(speedo, 1, start=grey_net)
    assert dagger.settings_for(speedo, 1, start=speedo_net)["frame_kind"] == "speedometer"
    odd = _network(grey, tmp_path / "odd", frame_kind="colour")
    line = assert_one_line_error(run("car", "drive", odd, "--max-steps", 10))
    assert "'colour'" in line and "grey, speedometer" in line
    with pytest.raises(MinisenseError, match="unknown frame kind"):
        car.record(3, 7, tmp_path / "r", frame_kind="colour")
    assert run("car", "record", "--frame-kind", "colour").exit_code == 2

"""Tests for the expert's named versions (minisense.expert.EXPERTS) and the paired comparison of
two drivers (minisense.car.paired, compare; minisense car compare).

The gym tests drive at most 120 steps without drawing frames, or record 3 episodes of 60.
"""

import json
import math
from dataclasses import asdict, replace

import numpy as np
import pytest

from minisense import car, expert
from minisense.errors import MinisenseError
from minisense.expert import DEFAULT_EXPERT, EXPERTS, ExpertConfig, expert_config

# pursuit-v1's 3-class labels, computed with minisense/expert.py as it was before the expert
# had versions (commit 5edb266): seed -> (steps, labels, return). The committed recording was
# made by this driver, so they must never change.
V1_LABELS = {
    6: (50, "21212121211212121212121212121211211111111111111111", 12.60563380281692),
    0: (120, "1111111111111111111111111111111111111111111111111111111111111111111111111111112012"
             "00211100200022200022002200000002221110", 60.100313479623715),
}


def _labels(config: ExpertConfig, seed: int, steps: int) -> tuple[str, float]:
    labels = []
    result = car.run_episode(seed, car.expert_policy(config), render=False, max_steps=steps,
                             on_frame=lambda step, observation, cls, env: labels.append(cls))
    return "".join(map(str, labels)), result["return"]


def test_the_default_expert_is_pursuit_v1_with_the_original_knobs():
    assert DEFAULT_EXPERT == "pursuit-v1"
    assert EXPERTS["pursuit-v1"] == ExpertConfig()
    assert expert_config() == ExpertConfig()


def test_expert_versions_are_distinct():
    configs = [asdict(c) for c in EXPERTS.values()]
    assert len(configs) >= 2
    assert all(a != b for i, a in enumerate(configs) for b in configs[i + 1:])


def test_expert_config_is_a_copy_with_changes():
    changed = expert_config("pursuit-v2", labelling="threshold")
    assert changed.labelling == "threshold" and EXPERTS["pursuit-v2"].labelling == "angle"
    changed.max_speed = 1.0
    assert EXPERTS["pursuit-v2"].max_speed == 58.0


def test_unknown_expert_is_a_clear_error():
    with pytest.raises(MinisenseError, match="unknown expert 'fast'.*pursuit-v1"):
        expert_config("fast")
    with pytest.raises(MinisenseError, match="unknown labelling"):
        expert_config("pursuit-v1", labelling="sideways")


def test_unknown_expert_on_the_command_line_is_a_one_line_error(run, assert_one_line_error):
    line = assert_one_line_error(run("car", "expert", "--expert", "fast", "--episodes", 1))
    assert "fast" in line and "pursuit-v1" in line
    line = assert_one_line_error(run("car", "record", "--expert", "fast", "--episodes", 3))
    assert "fast" in line


class _Loop:
    """Just enough of the unwrapped CarRacing for ``expert._nearest``: a track (list) that runs
    out along y = 0 and back along y = 2, its two stretches 2 units apart."""

    def __init__(self):
        out = [(0.0, 0.0, 3.5 * i, 0.0) for i in range(20)]
        back = [(0.0, 0.0, 3.5 * (19 - i), 2.0) for i in range(20)]
        self.track = out + back


def test_progress_window_keeps_the_nearest_waypoint_on_the_cars_stretch():
    u = _Loop()
    track = np.asarray(u.track)
    beside = np.array([3.5 * 10, 1.8])        # off the road at waypoint 10, nearer the way back
    assert expert._nearest(u, track, beside, 0) == 29
    assert expert._nearest(u, track, np.array([0.0, 0.0]), 3) == 0     # a new track: the start
    u._minisense_progress = (u.track, 9)
    assert expert._nearest(u, track, beside, 3) == 10
    assert u._minisense_progress == (u.track, 10)
    u.track = list(u.track)                   # another track (a reset): the last index is stale
    assert expert._nearest(u, track, np.array([3.5, 0.0]), 3) == 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(V1_LABELS))
def test_pursuit_v1_labels_are_those_of_the_original_expert(seed):
    steps, labels, total = V1_LABELS[seed]
    assert _labels(expert_config("pursuit-v1"), seed, steps) == (labels, total)


@pytest.mark.slow
def test_pursuit_v2_labels_differ_from_pursuit_v1():
    steps, labels, _ = V1_LABELS[6]
    v2, _ = _labels(expert_config("pursuit-v2"), 6, steps)
    assert len(v2) == steps and v2 != labels


@pytest.mark.slow
def test_a_recording_names_its_expert(tmp_path):
    meta = car.record(3, 7, tmp_path / "v2", workers=1, max_steps=60, expert="pursuit-v2")
    assert meta["expert_name"] == "pursuit-v2"
    assert meta["expert"] == asdict(EXPERTS["pursuit-v2"])
    meta = car.record(3, 7, tmp_path / "v1", workers=1, max_steps=60)
    assert meta["expert_name"] == "pursuit-v1" and meta["expert"] == asdict(ExpertConfig())
    changed = car.record(3, 7, tmp_path / "t", expert_config(labelling="threshold"), workers=1,
                         max_steps=60, expert="pursuit-v1")
    assert changed["expert_name"] is None            # knobs changed: no longer that version
    saved = json.loads((tmp_path / "v2" / "carracing.json").read_text())
    assert saved["expert_name"] == "pursuit-v2"


# -- the paired comparison --------------------------------------------------------------------

def test_paired_statistics_match_a_hand_computation():
    r = car.paired([3.0, 5.0, 10.0], [1.0, 4.0, 6.0])
    # d = (2, 1, 4): mean 7/3; deviations -1/3, -4/3, 5/3, squares sum 42/9, s^2 = 7/3;
    # standard error sqrt(s^2 / 3) = sqrt(7/9).
    assert r["differences"] == [2.0, 1.0, 4.0]
    assert r["mean_difference"] == pytest.approx(7 / 3)
    assert r["sem_difference"] == pytest.approx(math.sqrt(7 / 9))
    assert (r["mean_a"], r["mean_b"], r["a_better"], r["b_better"]) == (6.0, 11 / 3, 3, 0)


def test_paired_refuses_lists_of_different_lengths():
    with pytest.raises(MinisenseError, match="equal"):
        car.paired([1.0, 2.0], [1.0])
    with pytest.raises(MinisenseError, match="equal"):
        car.paired([], [])


def test_summarize_reports_the_standard_error_and_tracks_below_900():
    runs = [{"seed": s, "return": r, "steps": 1000, "lap": r > 900, "top_speed": v,
             "off_road_steps": off, "first_off_road": 400 if off else None,
             "wrong_way_steps": wrong}
            for s, (r, v, off, wrong) in enumerate([(880.0, 61.0, 30, 200), (910.0, 66.5, 4, 0),
                                                    (940.0, 60.0, 0, 0)])]
    s = car.summarize(runs)
    assert s["mean_return"] == pytest.approx(910.0) and s["sem_return"] == pytest.approx(
        30 / math.sqrt(3))
    assert s["returns"] == [880.0, 910.0, 940.0] and s["below_solved"] == 1 and s["laps"] == 2
    assert (s["off_road_episodes"], s["wrong_way_episodes"], s["top_speed"]) == (2, 1, 66.5)
    older = car.summarize([{k: v for k, v in r.items() if k not in car.TRACE} for r in runs])
    assert "top_speed" not in older and older["mean_return"] == s["mean_return"]


def _expert_json(path, seeds, returns):
    """A file as ``car expert --json`` writes it (only what compare reads)."""
    runs = [{"seed": s, "return": r, "steps": 900, "lap": True} for s, r in zip(seeds, returns)]
    path.write_text(json.dumps({"three_class": {"episodes": runs},
                                "continuous": {"episodes": runs[::-1]}}))
    return path


def _drive_json(path, seeds, returns):
    """A file as ``car drive --json`` writes it (only what compare reads)."""
    runs = [{"seed": s, "return": r, "steps": 900, "lap": True} for s, r in zip(seeds, returns)]
    path.write_text(json.dumps({"episodes": runs}))
    return path


def test_compare_pairs_an_expert_with_a_drive_on_the_same_seeds(tmp_path, run, assert_ok):
    a = _expert_json(tmp_path / "a.json", [1000, 1001, 1002], [3.0, 5.0, 10.0])
    b = _drive_json(tmp_path / "b.json", [1000, 1001, 1002], [1.0, 4.0, 6.0])
    r = car.compare_files(a, b)
    assert r["seeds"] == [1000, 1001, 1002] and r["mean_difference"] == pytest.approx(7 / 3)
    result = run("car", "compare", a, b, "--json", tmp_path / "c.json")
    assert_ok(result)
    assert "+2.3 +- 0.9" in result.output and "A better on 3, B on 0" in result.output
    assert json.loads((tmp_path / "c.json").read_text())["sem_difference"] == pytest.approx(
        math.sqrt(7 / 9))


def test_compare_refuses_different_seeds_in_one_line(tmp_path, run, assert_one_line_error):
    a = _expert_json(tmp_path / "a.json", [1000, 1001], [900.0, 910.0])
    b = _drive_json(tmp_path / "b.json", [2000, 2001], [900.0, 910.0])
    with pytest.raises(MinisenseError, match="different tracks"):
        car.compare_files(a, b)
    line = assert_one_line_error(run("car", "compare", a, b))
    assert "1000-1001" in line and "2000-2001" in line


def test_compare_refuses_a_file_without_episodes_in_one_line(tmp_path, run, assert_one_line_error):
    a = _expert_json(tmp_path / "a.json", [1000], [900.0])
    (tmp_path / "other.json").write_text(json.dumps({"accuracy": 0.9}))
    (tmp_path / "broken.json").write_text("{not json")
    assert "no episodes" in assert_one_line_error(run("car", "compare", a,
                                                      tmp_path / "other.json"))
    assert "unreadable" in assert_one_line_error(run("car", "compare", a,
                                                     tmp_path / "broken.json"))


def _gas_above_allowed(name: str, seed: int, steps: int) -> tuple[int, int]:
    """Steps driven above the allowed speed, and of them those labelled straight+gas."""
    config = expert_config(name)
    above = gassed = 0

    def policy(env, observation):
        nonlocal above, gassed
        _, speed, allowed = expert.plan(env, config)
        cls = expert.label(env, config)
        above += speed > allowed
        gassed += speed > allowed and cls == 1
        return expert.ACTIONS[cls], cls

    car.run_episode(seed, policy, render=False, max_steps=steps)
    return above, gassed


@pytest.mark.slow
def test_pursuit_v3_never_gasses_above_its_cap_where_pursuit_v2_did():
    # pursuit-v3's coast penalty (0.10 rad) is above one wheel step (0.06 rad), so a steering
    # class always costs less than straight+gas once the car is faster than allowed.
    above, gassed = _gas_above_allowed("pursuit-v3", 3000, 600)
    assert above > 0 and gassed == 0
    above, gassed = _gas_above_allowed("pursuit-v2", 3000, 600)
    assert above > 0 and gassed > 0


@pytest.mark.slow
def test_capped_versions_are_pursuit_v3_with_a_lower_cap_they_keep():
    for name, cap in (("pursuit-v3-cap58", 58.0), ("pursuit-v3-cap60", 60.0)):
        assert EXPERTS[name] == replace(EXPERTS["pursuit-v3"], max_speed=cap)
    run = car.run_episode(1000, car.expert_policy(expert_config("pursuit-v3-cap60")),
                          render=False, max_steps=600)
    assert 55 < run["top_speed"] <= 60.5 and run["off_road_steps"] == 0

"""Plan N's two recordings, diagnostics outside the package: the speedometer-fine recording with
row 28 (black in every frame) redrawn as

* oracle: the expert's wheel target, and row 29 as the wheel angle now (wheelrow's bar);
* fovea: the observation's own row R, grey, full resolution, centre columns 32-63, R the median
  row of the pursuit point over the training frames at 59-60 units/s (plan.txt);
* oracle-allowed: the oracle's rows, and row 0 (the farthest of the view) as the speed the expert
  allows now, a bar on the fine row's span (plan.txt, amendment).

Usage: python rows.py CARDATA-V3CAP60-FINE VARIANT=OUT... (replays the 40 recorded episodes with
their expert, two workers; checks every frame and label against the recording; writes each named
variant's recording to its OUT)."""
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from minisense import car
from minisense.data import GREY, SPEEDOMETER_FINE_RANGE, speedometer
from minisense.expert import _nearest, expert_config, label, plan

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "psiren90-fine-seeds", "wheelrow"))
from wheelrow import wheel_angle, wheel_row  # noqa: E402

EXPERT = expert_config("pursuit-v3-cap60")
CAR_ROW, CAR_COLUMN = 72.0, 48.0        # the car's place in the 96x96 observation (WINDOW_H / 4
ROWS_PER_UNIT = 2.7 * 6.0 * 96 / 800    # from the bottom, WINDOW_W / 2), zoom 16.2 px a unit
COLUMNS_PER_UNIT = 2.7 * 6.0 * 96 / 1000   # on the 1000x800 window, smoothscaled to 96x96
FOVEA = slice(32, 64)


def pursuit_pixel(env):
    """Where the expert's pursuit point falls in the observation: (row, column), fractional."""
    u = env.unwrapped
    track = np.asarray(u.track, dtype=np.float64)
    position = np.array(u.car.hull.position)
    speed = float(np.hypot(*u.car.hull.linearVelocity))
    nearest = _nearest(u, track, position, EXPERT.progress_window)
    ahead = int(EXPERT.lookahead_base + EXPERT.lookahead_per_speed * speed)
    local_x, local_y = u.car.hull.GetLocalVector(tuple(track[(nearest + ahead) % len(track), 2:]
                                                       - position))
    return CAR_ROW - local_y * ROWS_PER_UNIT, CAR_COLUMN + local_x * COLUMNS_PER_UNIT


def episode(seed):
    out = {k: [] for k in ("frame", "grey", "target", "angle", "speed", "allowed", "row", "column",
                           "label")}

    def keep(step, observation, cls, env):
        if step < car.ZOOM_STEPS:
            return
        target, speed, allowed = plan(env, EXPERT)
        row, column = pursuit_pixel(env)
        out["frame"].append(car.network_frame(env, observation, "speedometer-fine"))
        out["grey"].append(np.rint(observation[:, FOVEA].astype(np.float64) @ GREY)
                           .astype(np.uint8))
        out["target"].append(target)
        out["angle"].append(wheel_angle(env))
        out["speed"].append(speed)
        out["allowed"].append(allowed)
        out["row"].append(row)
        out["column"].append(column)
        out["label"].append(label(env, EXPERT))
        assert out["label"][-1] == cls, "the expert's label is not the one it drove by"
    car.run_episode(seed, car.expert_policy(EXPERT), on_frame=keep)
    return {k: np.array(v) for k, v in out.items()}


def write(rec, source, frames, out, note):
    os.makedirs(out)
    np.savez_compressed(f"{out}/carracing.npz", **{**rec, "frames": frames})
    shutil.copy(f"{source}/carracing.json", f"{out}/carracing.json")
    print(f"{len(frames)} frames, {note}: {out}")


if __name__ == "__main__":
    source, outs = sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:])
    assert set(outs) <= {"oracle", "fovea", "oracle-allowed"}, outs
    rec = dict(np.load(f"{source}/carracing.npz"))
    meta = json.load(open(f"{source}/carracing.json"))
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(episode, rec["seeds"].tolist()))
    for e, r in enumerate(results):
        sel = rec["episode"] == e
        assert np.array_equal(r["frame"], rec["frames"][sel]), f"episode {e} does not replay"
        assert np.array_equal(r["label"], rec["labels"][sel]), f"episode {e}'s labels differ"
    train = np.isin(rec["episode"], meta["splits"]["train"])
    every = {k: np.concatenate([r[k] for r in results]) for k in results[0]}
    cap = train & (every["speed"] >= 59) & (every["speed"] < 60)
    fovea_row = int(np.rint(np.median(every["row"][cap])))
    rows = every["row"][cap]
    columns = every["column"][cap]
    print(f"pursuit point at 59-60 units/s, {cap.sum()} training frames: row median "
          f"{np.median(rows):.2f} (IQR {np.percentile(rows, 25):.2f}-{np.percentile(rows, 75):.2f}),"
          f" column median {np.median(columns):.2f} (5-95% {np.percentile(columns, 5):.2f}-"
          f"{np.percentile(columns, 95):.2f}); R = {fovea_row}")
    below = every["allowed"][cap] < every["speed"][cap]
    print(f"at 59-60 units/s the expert allows less than the speed on {below.mean():.1%} of the "
          f"training frames; of those labelled straight+gas {below[every['label'][cap] == 1].mean():.1%}")
    oracle = rec["frames"].copy()
    oracle[:, 28] = np.array([wheel_row(t) for t in np.clip(every["target"], -0.4, 0.4)])
    oracle[:, 29] = np.array([wheel_row(a) for a in every["angle"]])
    if "oracle" in outs:
        write(rec, source, oracle, outs["oracle"], "row 28 the wheel target, row 29 the wheel angle")
    if "oracle-allowed" in outs:
        oracle[:, 0] = speedometer(every["allowed"], SPEEDOMETER_FINE_RANGE)
        write(rec, source, oracle, outs["oracle-allowed"], "the oracle's rows, row 0 the speed allowed")
    if "fovea" in outs:
        fovea = rec["frames"].copy()
        fovea[:, 28] = every["grey"][:, fovea_row]
        write(rec, source, fovea, outs["fovea"], f"row 28 the observation's row {fovea_row}, columns "
              f"{FOVEA.start}-{FOVEA.stop - 1}")

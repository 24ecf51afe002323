"""A diagnostic, not a frame kind of the package: the speedometer-fine recording with row 29 (part
of the indicator panel) redrawn as the front wheel's angle, a bar from the centre column, 0.025 rad
a column over the joint's +-0.4 rad. Does knowing the wheel angle let a network take the gas where
the expert does at 59-60 units/s? Usage: python wheelrow.py CARDATA-V3CAP60-FINE OUT (replays the
40 recorded episodes with their expert, checks every frame against the recording, writes OUT)."""
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from minisense import car
from minisense.expert import expert_config

LIMIT = 0.4          # rad: the front wheel joint's limits (gymnasium's car_dynamics)


def wheel_row(angle):
    """Row 29: 255 on the columns the angle passes from the centre, the last grey by fraction."""
    pos = np.clip(angle / LIMIT * 16, -16, 16)
    row = np.zeros(32)
    row[16:] = np.clip(pos - np.arange(16), 0, 1)
    row[:16] = np.clip(-pos - np.arange(16), 0, 1)[::-1]
    return np.rint(255 * row).astype(np.uint8)


def wheel_angle(env):
    return float(env.unwrapped.car.wheels[0].joint.angle)


def episode(seed):
    rows, frames = [], []

    def keep(step, observation, cls, env):
        if step >= car.ZOOM_STEPS:
            frames.append(car.network_frame(env, observation, "speedometer-fine"))
            rows.append(wheel_row(wheel_angle(env)))
    car.run_episode(seed, car.expert_policy(expert_config("pursuit-v3-cap60")), on_frame=keep)
    return np.array(frames), np.array(rows)


if __name__ == "__main__":
    source, out = sys.argv[1], sys.argv[2]
    rec = dict(np.load(f"{source}/carracing.npz"))
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(episode, range(len(rec["seeds"]))))
    frames = rec["frames"].copy()
    for e, (f, rows) in enumerate(results):
        sel = rec["episode"] == e
        assert np.array_equal(f, rec["frames"][sel]), f"episode {e} does not replay its recording"
        frames[sel, 29] = rows
    rec["frames"] = frames
    os.makedirs(out)
    np.savez_compressed(f"{out}/carracing.npz", **rec)
    shutil.copy(f"{source}/carracing.json", f"{out}/carracing.json")
    print(f"{len(frames)} frames, row 29 the wheel angle: {out}")

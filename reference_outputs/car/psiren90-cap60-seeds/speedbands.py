"""Where does a car network lose time to its expert? Network and expert drive the
same tracks (validation seeds 3000-3009); for every step from 50 on: the car's speed band and whether
the class is straight+gas. Usage: python speedbands.py CHECKPOINT [EXPERT] (the expert's name in
minisense.expert.EXPERTS; default pursuit-v3-cap60). Output: speedbands.txt."""
import sys

import numpy as np

from minisense import car
from minisense.checkpoint import load
from minisense.data import frame_kind_in
from minisense.expert import expert_config

BANDS = [0, 40, 50, 55, 58, 60, 62, 100]        # units/s; the cap-60 expert cruises in 60-62

net, meta = load(sys.argv[1], architecture="car")
kind = frame_kind_in(meta, sys.argv[1])
expert = sys.argv[2] if len(sys.argv) > 2 else "pursuit-v3-cap60"
drivers = {"network": car.network_policy([net], kind),
           expert: car.expert_policy(expert_config(expert))}
gas = {who: [[] for _ in BANDS[:-1]] for who in drivers}
speeds = {who: [] for who in drivers}
for seed in range(3000, 3010):
    for who, policy in drivers.items():
        steps = []

        def logged(env, observation, policy=policy, steps=steps):
            speed = car.car_speed(env)
            action, cls = policy(env, observation)
            steps.append((cls, speed))
            return action, cls
        car.run_episode(seed, logged)
        for cls, speed in steps[car.ZOOM_STEPS:]:
            gas[who][np.searchsorted(BANDS, speed, side="right") - 1].append(cls == 1)
            speeds[who].append(speed)
for who in drivers:
    print(f"{who}: mean speed {np.mean(speeds[who]):.2f} units/s; straight+gas share (steps) by "
          "speed band: " + ", ".join(f"{lo}-{hi}: " + (f"{np.mean(g):.2f} ({len(g)})" if g else "-")
                                     for lo, hi, g in zip(BANDS, BANDS[1:], gas[who])))

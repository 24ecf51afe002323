"""One tuning trial of the 3-class expert: the named version with some knobs changed, on the
tuning seeds (3000-3099: never the recording's 0-39 nor the headline's 1000-1099).

    python tune.py NAME FIRST_SEED EPISODES '{"knob": value, ...}'

appends one JSON line (the changed knobs, every episode's return, mean, standard error, laps,
tracks below 900, mean steps) to tuning.jsonl and prints it as a line of tuning.log. Every
trial changes pursuit-v1's knobs. Trials whose knobs are not in minisense/expert.py (a smooth
racing line: "line", "line_margin"; "gas_hold"; "curvature_window"; in ../expert-v3 the cap lifted
with the track's length, "cap_per_tile") ran with scratch code that was dropped because it did not
help (reference_outputs/README.md, "Car: a better expert").
"""
import json
import sys
import time

import numpy as np

from minisense import car
from minisense.expert import expert_config

name, first, episodes, changes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(
    sys.argv[4])
config = expert_config("pursuit-v1", **changes)
seeds = list(range(first, first + episodes))
started = time.perf_counter()
runs = [car.run_episode(s, car.expert_policy(config), render=False) for s in seeds]
r = np.array([x["return"] for x in runs])
row = {"trial": name, "base": None, "overrides": changes, "seeds": [seeds[0], seeds[-1]],
       "mean_return": float(r.mean()), "sem": float(r.std(ddof=1) / np.sqrt(len(r))),
       "min_return": float(r.min()), "laps": int(sum(x["lap"] for x in runs)),
       "below_900": int((r < 900).sum()), "mean_steps": float(np.mean([x["steps"] for x in runs])),
       "returns": [round(float(x), 2) for x in r], "seconds": round(time.perf_counter() - started, 1)}
with open("tuning.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
print(f"{name:<30} {seeds[0]}-{seeds[-1]} {row['mean_return']:6.1f} ± {row['sem']:4.1f} laps "
      f"{row['laps']:3d} <900 {row['below_900']:3d} min {row['min_return']:6.1f} steps "
      f"{row['mean_steps']:5.0f}  {json.dumps(changes)}")

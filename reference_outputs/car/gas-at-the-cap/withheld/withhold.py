"""Plan J diagnostic: pursuit-v3-cap60 with its gas onset at the cap withheld at a rate q.

At 59-60 units/s, a straight+gas label is replaced by the expert's best steering class with
probability q (seeded per track), as a network that under-predicts the gas there would drive.
Paired with q = 0 (the expert itself) on the same tracks."""
import json
import sys
import numpy as np
from minisense.car import run_episode, ACTIONS, car_speed, paired
from minisense.expert import expert_config, label

q, seed, n = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
low = float(sys.argv[4]) if len(sys.argv) > 4 else 59.0
expert = expert_config("pursuit-v3-cap60")
steer_only = expert_config("pursuit-v3-cap60", gas_bonus=-10.0)   # gas never wins below the cap

def driver(rng):
    def policy(env, observation):
        cls = label(env, expert)
        if cls == 1 and low <= car_speed(env) < 60.0 and rng.random() < q:
            cls = label(env, steer_only)
        return ACTIONS[cls], cls
    return policy

base, runs = [], []
for s in range(seed, seed + n):
    base.append(run_episode(s, lambda env, o: (ACTIONS[label(env, expert)], None),
                            render=False))
    runs.append(run_episode(s, driver(np.random.default_rng(s)), render=False))
p = paired([r["return"] for r in runs], [r["return"] for r in base])
steps = np.median([r["steps"] - b["steps"] for r, b in zip(runs, base) if r["lap"] and b["lap"]])
print(f"q {q} from {low}: {np.mean([r['return'] for r in runs]):.1f} vs expert "
      f"{np.mean([r['return'] for r in base]):.1f}: {p['mean_difference']:+.2f} +- "
      f"{p['sem_difference']:.2f}, better on {p['a_better']}, worse on {p['b_better']}, "
      f"median extra steps {steps:+.0f}")
json.dump({"q": q, "seeds": [seed, seed + n - 1], **p}, open(f"withhold-q{q}-from{low}-s{seed}.json", "w"))

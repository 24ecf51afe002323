"""Diagnostic (not a driver of the project): the network drives, but when it picks straight+gas
while the car is faster than CAP units/s, the car coasts straight instead ((0, 0, 0), not one of
the network's classes). If the governed network drives like its expert, the gap to the expert is
the speed the frames do not show.  usage: governor.py CHECKPOINT CAP SEED EPISODES OUT.json"""
import json
import sys
from multiprocessing import Pool

import numpy as np
from minisense import car
from minisense.checkpoint import load
from minisense.fast.shards import one_blas_thread

path, cap, out = sys.argv[1], float(sys.argv[2]), sys.argv[5]
seed0, episodes = int(sys.argv[3]), int(sys.argv[4])

def episode(seed):
    net = load(path, architecture="car")[0]
    inner = car.network_policy(net)
    governed = [0]                      # steps the governor changed (a cell the policy updates)
    def policy(env, observation):
        action, cls = inner(env, observation)
        speed = float(np.hypot(*env.unwrapped.car.hull.linearVelocity))
        if cls == 1 and cap > 0 and speed > cap:
            governed[0] += 1
            return np.zeros(3), cls
        return action, cls
    with one_blas_thread():
        r = car.run_episode(seed, policy)
    return {**r, "governed_steps": governed[0]}

if __name__ == "__main__":
    with Pool(2) as pool:
        runs = pool.map(episode, [seed0 + i for i in range(episodes)], chunksize=1)
    s = car.summarize(runs)
    json.dump({"checkpoint": path, "cap": cap, "seeds": [seed0 + i for i in range(episodes)], **s,
               "governed_steps": [r["governed_steps"] for r in runs]}, open(out, "w"), indent=1)
    print(f"cap {cap}: mean {s['mean_return']:.1f} +- {s['sem_return']:.1f}, laps {s['laps']}, "
          f"off road on {s.get('off_road_episodes')}, wrong way {s.get('wrong_way_episodes')}, "
          f"top speed {s.get('top_speed'):.1f}")

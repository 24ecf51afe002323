"""Closed loop: a network whose real logits get +OFFSET on straight+gas drives validation tracks.
Usage: python offset_drive.py CKPT OFFSET SEED EPISODES OUT.json"""
import json, sys
import numpy as np
from minisense import car
from minisense.expert import ACTIONS
from minisense.fast.shards import one_blas_thread
from minisense.network import exact_logits
ckpt, offset, seed, episodes, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
nets, kind = car._networks([ckpt])
net = nets[0]
shift = np.array([0.0, offset, 0.0])
def policy(env, observation):
    z = net.logit_scale * exact_logits(net, car.network_frame(env, observation, kind)[None]).astype(np.float64)
    cls = int((z[0] + shift).argmax())
    return ACTIONS[cls], cls
runs = []
with one_blas_thread():
    for s in range(seed, seed + episodes):
        runs.append(car.run_episode(s, policy))
        print(s, round(runs[-1]["return"], 1), flush=True)
res = {"checkpoint": ckpt, "offset": offset, "seeds": list(range(seed, seed + episodes)), **car.summarize(runs)}
json.dump(res, open(out, "w"))
print(f"offset {offset}: mean {res['mean_return']:.1f} +- {res['sem_return']:.1f}, laps {res['laps']}, below 900 {res['below_solved']}, top speed {res.get('top_speed')}")

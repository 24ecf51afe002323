"""Plan K probe: a car network's action sampled from softmax(logit_scale * Z / T), per-track rng."""
import json
import sys
import numpy as np
from minisense import checkpoint
from minisense.car import ACTIONS, network_frame, run_episode, one_blas_thread
from minisense.data import frame_kind_in
from minisense.checkpoint import checkpoint_paths

path, t, seed, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
net, meta = checkpoint.load(path, architecture="car")
kind = frame_kind_in(meta, checkpoint_paths(path)[1])

def policy_for(rng):
    def policy(env, observation):
        z = net.logit_scale * net.exact_logits(network_frame(env, observation, kind)[None])[0]
        a = z / t
        p = np.exp(a - a.max()); p /= p.sum()
        cls = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
        cls = min(cls, 2)
        return ACTIONS[cls], cls
    return policy

out = []
with one_blas_thread():
    for s in range(seed, seed + n):
        r = run_episode(s, policy_for(np.random.default_rng(s)), render=True)
        out.append(r)
        print(s, round(r["return"], 1), r["lap"], r["off_road_steps"], flush=True)
json.dump(out, open(sys.argv[5], "w"))

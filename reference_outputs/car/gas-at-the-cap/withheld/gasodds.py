"""Plan K: what sampling would do at the cap. On a speedometer-fine recording's validation and test
frames at 59-60 units/s (read off the fine row, as ../../psiren90-fine-seeds/openloop.py), the
share labelled straight+gas, a network's mean p(gas) under softmax(logit_scale * Z / T), and on
the frames labelled gas, its mean p(gas) and the share where p(gas) < 0.1.
Usage: python gasodds.py RECORDING T CHECKPOINT"""
import json
import sys

import numpy as np

from minisense.checkpoint import load
from minisense.data import SPEEDOMETER_FINE_RANGE

rec = np.load(f"{sys.argv[1]}/carracing.npz")
meta = json.load(open(f"{sys.argv[1]}/carracing.json"))
held = np.isin(rec["episode"], meta["splits"]["validation"] + meta["splits"]["test"])
frames, labels = rec["frames"][held], rec["labels"][held]
low, high = SPEEDOMETER_FINE_RANGE
row = frames[:, 31].astype(np.float64)
speed = low + row.sum(axis=1) / 255 * (high - low) / row.shape[1]
cap = (speed >= 59) & (speed < 60)

t, path = float(sys.argv[2]), sys.argv[3]
net, _ = load(path, architecture="car")
z = net.logit_scale * net.exact_logits(frames[cap]).astype(np.float64) / t
p = np.exp(z - z.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
gas = labels[cap] == 1
print(f"{path} at T = {t}: {cap.sum()} frames at 59-60 units/s, labelled gas {gas.mean():.3f}, "
      f"argmax gas {np.mean(p.argmax(axis=1) == 1):.3f}, mean p(gas) {p[:, 1].mean():.3f}; on the "
      f"frames labelled gas: mean p(gas) {p[gas, 1].mean():.3f}, p(gas) < 0.1 on "
      f"{np.mean(p[gas, 1] < 0.1):.3f}, argmax gas {np.mean(p[gas].argmax(axis=1) == 1):.3f}")

"""Open loop: a logit offset o on straight+gas (real logits, logit_scale * Z, as `car drive
--logit-offset 0,o,0`) against the networks' gas share on the fine recording's validation frames,
overall and at 59-60 units/s (speed read off the fine row), with the frame accuracy.
Usage: python offset_open.py RECORDING CHECKPOINT..."""
import json
import sys

import numpy as np

from minisense.checkpoint import load
from minisense.data import SPEEDOMETER_FINE_RANGE
from minisense.network import exact_logits

OFFSETS = (0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 1.0, 1.5, 2.0, 2.5)
rec = np.load(f"{sys.argv[1]}/carracing.npz")
meta = json.load(open(f"{sys.argv[1]}/carracing.json"))
held = np.isin(rec["episode"], meta["splits"]["validation"])
frames, labels = rec["frames"][held], rec["labels"][held]
low, high = SPEEDOMETER_FINE_RANGE
speed = low + frames[:, 31].astype(np.float64).sum(axis=1) / 255 * (high - low) / frames.shape[2]
cap = (speed >= 59) & (speed < 60)
print(f"validation frames {len(labels)}, labelled gas {np.mean(labels == 1):.3f}; at 59-60 units/s "
      f"{cap.sum()}, labelled gas {np.mean(labels[cap] == 1):.3f}")
for path in sys.argv[2:]:
    net, _ = load(path, architecture="car")
    z = net.logit_scale * exact_logits(net, frames).astype(np.float64)
    print(f"{path} (real logits' standard deviation {z.std():.3f})")
    for o in OFFSETS:
        p = (z + np.array([0, o, 0])).argmax(axis=1)
        print(f"  o={o:<5} accuracy {np.mean(p == labels):.3f}, gas {np.mean(p == 1):.3f}; at 59-60 gas "
              f"{np.mean(p[cap] == 1):.3f}, accuracy {np.mean(p[cap] == labels[cap]):.3f}")

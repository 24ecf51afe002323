"""How the expert's labels follow one another near the cap: on every frame of a speedometer-fine
recording (all 40 episodes) whose fine row reads 59-60 units/s, the label after each label of the
step before. Usage: python weave.py CARDATA-V3CAP60-FINE. Output: weave.txt."""
import sys

import numpy as np

from minisense.data import SPEEDOMETER_FINE_RANGE
from minisense.expert import CLASSES

rec = np.load(f"{sys.argv[1]}/carracing.npz")
frames, labels, episode, step = rec["frames"], rec["labels"], rec["episode"], rec["step"]
low, high = SPEEDOMETER_FINE_RANGE
speed = low + frames[:, 31].astype(np.float64).sum(axis=1) / 255 * (high - low) / 32
follows = np.r_[False, (episode[1:] == episode[:-1]) & (step[1:] == step[:-1] + 1)]
near = (speed >= 59) & (speed < 60) & follows
before = np.r_[0, labels[:-1]]
print(f"{near.sum()} frames at 59-60 units/s after a recorded step; straight+gas on "
      f"{np.mean(labels[near] == 1):.3f}")
for c, name in enumerate(CLASSES):
    after = labels[near & (before == c)]
    print(f"after {name} ({len(after)}): " + ", ".join(
        f"{other} {np.mean(after == k):.3f}" for k, other in enumerate(CLASSES)))

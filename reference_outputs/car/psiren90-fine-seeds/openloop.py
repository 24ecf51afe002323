"""Open loop near the cap: on a speedometer-fine recording's validation and test frames, by speed
band (read off the fine row, 50-66 units/s, else the coarse row), the share of frames labelled straight+gas and the share a network
predicts so. Usage: python openloop.py RECORDING CHECKPOINT... (coarse-kind checkpoints see the
frames with the fine row redrawn coarse)."""
import json
import sys

import numpy as np

from minisense.checkpoint import load
from minisense.data import SPEEDOMETER_FINE_RANGE, SPEEDOMETER_RANGE, frame_kind_in
from minisense.network import exact_logits

rec = np.load(f"{sys.argv[1]}/carracing.npz")
meta = json.load(open(f"{sys.argv[1]}/carracing.json"))
held = np.isin(rec["episode"], meta["splits"]["validation"] + meta["splits"]["test"])
frames, labels = rec["frames"][held], rec["labels"][held]


def read(row, span):
    low, high = span
    return low + row.astype(np.float64).sum(axis=1) / 255 * (high - low) / row.shape[1]


speed = read(frames[:, 31], SPEEDOMETER_FINE_RANGE)
outside = (speed <= SPEEDOMETER_FINE_RANGE[0]) | (speed >= SPEEDOMETER_FINE_RANGE[1])
speed[outside] = read(frames[outside, 30], SPEEDOMETER_RANGE)
BANDS = [0, 50, 55, 58, 59, 60, 61, 62, 100]
band = np.searchsorted(BANDS, speed, side="right") - 1
shown = [(i, lo, hi) for i, (lo, hi) in enumerate(zip(BANDS, BANDS[1:])) if np.any(band == i)]
print("labels: " + ", ".join(f"{lo}-{hi}: {np.mean(labels[band == i] == 1):.3f} ({np.sum(band == i)})"
                             for i, lo, hi in shown))
for path in sys.argv[2:]:
    net, m = load(path, architecture="car")
    x = frames.copy()
    if frame_kind_in(m, path) == "speedometer":
        x[:, 31] = x[:, 30]
    pred = exact_logits(net, x).argmax(axis=1)
    print(f"{path}: accuracy {np.mean(pred == labels):.4f}; gas " + ", ".join(
        f"{lo}-{hi}: {np.mean(pred[band == i] == 1):.3f} (acc {np.mean(pred[band == i] == labels[band == i]):.3f})"
        for i, lo, hi in shown))

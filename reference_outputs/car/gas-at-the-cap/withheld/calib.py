"""Plan K: temperature scaling (Guo et al. 2017) of car networks' real logits: on each split of a
recording, the T minimizing the mean cross-entropy of softmax(logit_scale * Z / T) (over 400
values from 0.05 to 20), the cross-entropy at T = 1, the mean top probability at T = 1 and the
frame accuracy.   python calib.py CARDATA CHECKPOINT..."""
import sys

import numpy as np

from minisense import checkpoint
from minisense.data import load_dataset

GRID = np.exp(np.linspace(np.log(0.05), np.log(20), 400))


def cross_entropy(z, labels, t):
    a = z / t
    a = a - a.max(axis=1, keepdims=True)
    return float(-(a[np.arange(len(a)), labels] - np.log(np.exp(a).sum(axis=1))).mean())


data = load_dataset("carracing", sys.argv[1])
for path in sys.argv[2:]:
    net, _ = checkpoint.load(path)
    line = [f"{path}: logit_scale {net.logit_scale:.4g}"]
    for split in ("validation", "test"):
        s = getattr(data, split)
        z = net.logit_scale * net.exact_logits(s.images).astype(np.float64)
        best = GRID[np.argmin([cross_entropy(z, s.labels, t) for t in GRID])]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        line.append(f"{split}: T {best:.3f}, cross-entropy at T=1 {cross_entropy(z, s.labels, 1):.3f}"
                    f", top probability {p.max(axis=1).mean():.3f}, accuracy "
                    f"{(z.argmax(axis=1) == s.labels).mean():.4f}")
    print("; ".join(line))

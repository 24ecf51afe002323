"""Drives of the validation tracks against the expert's, track by track: mean paired difference
(+- standard error), its median (plan F's and G's choice rule), tracks better than the expert,
and on the tracks both finished, the network's extra steps (median). Usage: python medians.py
EXPERT.json DRIVE.json... (EXPERT.json: `car expert --json`, its 3-class episodes)."""
import json
import sys

import numpy as np

expert = json.load(open(sys.argv[1]))["three_class"]["episodes"]
for path in sys.argv[2:]:
    drive = json.load(open(path))["episodes"]
    assert [a["seed"] for a in drive] == [b["seed"] for b in expert[:len(drive)]], path
    d = np.array([a["return"] - b["return"] for a, b in zip(drive, expert)])
    steps = np.array([a["steps"] - b["steps"] for a, b in zip(drive, expert) if a["lap"] and b["lap"]])
    print(f"{path}: mean {np.mean([a['return'] for a in drive]):.1f}, vs expert {d.mean():+.1f} +- "
          f"{d.std(ddof=1) / np.sqrt(len(d)):.1f}, median {np.median(d):+.2f}, better on {np.sum(d > 0)} "
          f"of {len(d)}; both finished {len(steps)}, extra steps median {np.median(steps):+.0f}; "
          f"left the road on {sum(a['off_road_steps'] > 0 for a in drive)}")

"""Plan M's numbers: SENSE from a random 80% network and binary backprop given the same compute,
three start seeds each (S = 0, 1 from earlier plans, S = 2 from this one), on the validation tracks
3000-3049, the test tracks 1000-1099 and the fresh tracks 7000-7099, each paired with the expert
pursuit-v3-cap60 on the same tracks. Run from this folder: python third.py (output third.txt)."""
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CAR = HERE.parent
FRESH = CAR / "fresh-tracks-7000"
sys.path.insert(0, str(FRESH))
from fresh import describe, episodes, returns, sem  # noqa: E402  (plan L's readers of a drive)

EXPERT = {3000: CAR / "expert-v3/expert-cap60-s3000.json",
          1000: CAR / "expert-v3/expert-cap60-s1000.json",
          7000: FRESH / "expert-s7000.json"}
TRACKS = {3000: 50, 1000: 100, 7000: 100}
# (method, S) -> its search folder and its drives on each track set
RUNS = {
    ("SENSE", 0): (CAR / "sense-random80-fine",
                   {3000: CAR / "dagger-sense-fine/val3000-start.json",
                    1000: CAR / "dagger-sense-fine/drive-start.json",
                    7000: FRESH / "drive-sense-s0.json"}),
    ("SENSE", 1): (CAR / "sense-random80-fine-s1",
                   {3000: CAR / "sense-random80-fine-s1/val3000.json",
                    1000: CAR / "sense-random80-fine-s1/drive.json",
                    7000: FRESH / "drive-sense-s1.json"}),
    ("SENSE", 2): (CAR / "sense-random80-fine-s2",
                   {s: HERE / f"drive-sense-{s}.json" for s in TRACKS}),
    ("backprop", 0): (CAR / "backprop-random80-fine",
                      {3000: CAR / "backprop-random80-fine/val3000.json",
                       1000: CAR / "backprop-random80-fine/drive.json",
                       7000: FRESH / "drive-backprop-s0.json"}),
    ("backprop", 1): (CAR / "backprop-random80-fine-s1",
                      {3000: CAR / "backprop-random80-fine-s1/val3000.json",
                       1000: CAR / "backprop-random80-fine-s1/drive.json",
                       7000: FRESH / "drive-backprop-s1.json"}),
    ("backprop", 2): (CAR / "backprop-random80-fine-s2",
                      {s: HERE / f"drive-backprop-{s}.json" for s in TRACKS}),
}


def paired(a, b):
    d = a - b
    return (f"{d.mean():+5.1f} +- {sem(d):3.1f} (better on {np.sum(d > 0)}, "
            f"worse on {np.sum(d < 0)}, median {np.median(d):+5.1f})")


def frames(folder):
    """The line's best network by validation frames: (validation, test) accuracy."""
    summary = json.loads((folder / "summary.json").read_text())
    best = summary["best"] if "best" in summary else summary["best_by_validation"]
    return best["validation_accuracy"], best["test_accuracy"]


def main():
    expert = {}
    for s, path in EXPERT.items():
        seeds = [e["seed"] for e in episodes(path, "three_class")]
        assert seeds == list(range(s, s + TRACKS[s])), path
        expert[s] = returns(path, "three_class")
        print(f"expert pursuit-v3-cap60, {s}-{s + TRACKS[s] - 1}: "
              f"{expert[s].mean():5.1f} +- {sem(expert[s]):3.1f}")
    means = {}
    for (method, seed), (folder, drives) in RUNS.items():
        if not (folder / "summary.json").exists():
            print(f"{method} S={seed}: no run")
            continue
        val, test = frames(folder)
        print(f"{method} S={seed} ({folder.name}): frames validation {100 * val:.2f}%, "
              f"test {100 * test:.2f}%")
        for s, path in drives.items():
            if not path.exists():
                print(f"  {s}: not driven")
                continue
            assert [e["seed"] for e in episodes(path)] == list(range(s, s + TRACKS[s])), path
            r = returns(path)
            means[method, seed, s] = r.mean()
            print(f"  {s}-{s + TRACKS[s] - 1}: {describe(path)}\n"
                  f"{' ' * 12}vs expert {paired(r, expert[s])}")
    print()
    for method in ("SENSE", "backprop"):
        for s in TRACKS:
            m = [means[k] for k in sorted(means) if k[0] == method and k[2] == s]
            print(f"{method}, {len(m)} seeds, {s}-{s + TRACKS[s] - 1}: mean {np.mean(m):5.1f} "
                  f"(min {min(m):5.1f}, max {max(m):5.1f})")
    print()
    for seed in (0, 1, 2):
        for s in TRACKS:
            a, b = RUNS["SENSE", seed][1][s], RUNS["backprop", seed][1][s]
            if a.exists() and b.exists():
                print(f"SENSE - backprop from start seed {seed}, {s}-{s + TRACKS[s] - 1}: "
                      f"{paired(returns(a), returns(b))}")


if __name__ == "__main__":
    main()

"""Plan L's numbers: the headline networks and their expert on 100 fresh test tracks, 7000-7099,
beside the same networks on 1000-1099 and on the 200 tracks together. Run from this folder:
python fresh.py (output fresh.txt). Reads this plan's drives (here) and the 1000-1099 drives
where earlier plans left them."""
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CAR = HERE.parent
EXPERT = {7000: HERE / "expert-s7000.json", 1000: CAR / "expert-v3/expert-cap60-s1000.json"}
# name here -> its drive over 1000-1099 (plans E-H and the baseline's)
DRIVERS = {
    "sense-s0": CAR / "dagger-sense-fine/drive-start.json",
    "sense-s1": CAR / "sense-random80-fine-s1/drive.json",
    "psiren-s952354559": CAR / "psiren90-fine-seeds/s952354559/drive.json",
    "psiren-s1": CAR / "psiren90-fine-seeds/s1/drive.json",
    "psiren-s2": CAR / "psiren90-fine-seeds/s2/drive.json",
    "backprop-s0": CAR / "backprop-random80-fine/drive.json",
    "backprop-s1": CAR / "backprop-random80-fine-s1/drive.json",
    "psiren-s952354559-o1.5": CAR / "gas-at-the-cap/hundred/drive-s952354559-o1.5.json",
    "psiren-s1-o1.0": CAR / "gas-at-the-cap/hundred/drive-s1-o1.0.json",
    "psiren-s2-o2.0": CAR / "gas-at-the-cap/test/drive-s2-o2.0.json",
}
METHODS = {
    "SENSE, 2 seeds": ["sense-s0", "sense-s1"],
    "p-SIREN 90%, 3 seeds": ["psiren-s952354559", "psiren-s1", "psiren-s2"],
    "binary backprop, 2 seeds": ["backprop-s0", "backprop-s1"],
    "p-SIREN with plan H's offsets": ["psiren-s952354559-o1.5", "psiren-s1-o1.0",
                                      "psiren-s2-o2.0"],
}
INDENT = " " * 12


def episodes(path, key=None):
    data = json.loads(Path(path).read_text())
    return (data[key] if key else data)["episodes"]


def returns(path, key=None):
    return np.array([e["return"] for e in episodes(path, key)])


def sem(x):
    return x.std(ddof=1) / np.sqrt(len(x))


def describe(path, key=None):
    eps = episodes(path, key)
    r = np.array([e["return"] for e in eps])
    return (f"{r.mean():5.1f} +- {sem(r):3.1f} (laps {sum(e['lap'] for e in eps)}, "
            f"below 900 {np.sum(r < 900)}, off road {sum(e['off_road_steps'] > 0 for e in eps)}, "
            f"min {r.min():5.1f})")


def paired(a, b):
    d = a - b
    return (f"{d.mean():+5.1f} +- {sem(d):3.1f} (better on {np.sum(d > 0)}, "
            f"median {np.median(d):+5.1f})")


def main():
    seeds = [e["seed"] for e in episodes(EXPERT[7000], "three_class")]
    assert seeds == list(range(7000, 7100)), "the expert's tracks are not 7000-7099"
    expert = {s: returns(p, "three_class") for s, p in EXPERT.items()}
    print(f"expert pursuit-v3-cap60, 7000-7099: {describe(EXPERT[7000], 'three_class')}")
    print(f"                          1000-1099: {describe(EXPERT[1000], 'three_class')}")
    means = {}
    for name, old in DRIVERS.items():
        path = HERE / f"drive-{name}.json"
        if not path.exists():
            print(f"{name}: not driven on 7000-7099")
            continue
        assert [e["seed"] for e in episodes(path)] == seeds, path
        r, r_old = returns(path), returns(old)
        means[name] = {7000: r.mean(), 1000: r_old.mean()}
        print(name)
        print(f"  7000-7099: {describe(path)}\n{INDENT}vs expert {paired(r, expert[7000])}")
        print(f"  1000-1099: {describe(old)}\n{INDENT}vs expert {paired(r_old, expert[1000])}")
        both = np.concatenate([r - expert[7000], r_old - expert[1000]])
        print(f"  both, 200 tracks: vs expert {both.mean():+5.1f} +- {sem(both):3.1f}")
    print()
    for method, names in METHODS.items():
        if not all(n in means for n in names):
            continue
        for tracks in (7000, 1000):
            m = [means[n][tracks] for n in names]
            print(f"{method}, {tracks}-{tracks + 99}: mean {np.mean(m):5.1f} "
                  f"(min {min(m):5.1f}, max {max(m):5.1f})")
    print()
    for s in (0, 1):
        a, b = HERE / f"drive-sense-s{s}.json", HERE / f"drive-backprop-s{s}.json"
        if a.exists() and b.exists():
            print(f"SENSE - backprop from start seed {s}, 7000-7099: "
                  f"{paired(returns(a), returns(b))}")


if __name__ == "__main__":
    main()

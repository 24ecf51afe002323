"""Plan N's numbers (output results.txt): each network's frames (metrics.json) and its drive of the
validation tracks 3000-3099 paired with the expert and with the same p-SIREN seed on the plain
fine frames. Run from this folder: python results.py."""
from pathlib import Path

import numpy as np

from minisense.car import paired, summarize
from minisense.runlogs import read_json

HERE = Path(__file__).resolve().parent
CAR = HERE.parents[1]
EXPERT = [CAR / "expert-v3/expert-cap60-s3000.json",
          CAR / "gas-at-the-cap/val3050/expert-cap60-s3050.json"]
PLAIN = {"952354559": [CAR / "psiren90-fine-seeds/s952354559/val3000.json",
                       CAR / "gas-at-the-cap/val3050/val3050-s952354559-none.json"],
         "1": [CAR / "psiren90-fine-seeds/s1/val3000.json",
               CAR / "gas-at-the-cap/hundred/val3050-s1-none.json"]}


def runs(paths):
    """The episodes of one driver over 3000-3099, in seed order, from its drive files."""
    out = []
    for p in paths:
        data = read_json(Path(p))
        out += data.get("three_class", data)["episodes"]
    assert [r["seed"] for r in out] == list(range(3000, 3100)), paths
    return out


def drove(mine):
    """Mean +- SE over the tracks, laps, tracks where it left the road, top speed (car.summarize)."""
    s = summarize(mine)
    return (f"{s['mean_return']:.1f} +- {s['sem_return']:.1f} (laps {s['laps']}, off the road "
            f"{s['off_road_episodes']}, top speed {s['top_speed']:.1f})")


def line(name, d):
    return (f"{name} {d['mean_difference']:+.1f} +- {d['sem_difference']:.1f} (median "
            f"{np.median(d['differences']):+.2f}, better on {d['a_better']}, worse on "
            f"{d['b_better']})")


expert = [r["return"] for r in runs(EXPERT)]
print(f"expert pursuit-v3-cap60 on 3000-3099: {np.mean(expert):.1f}")
for seed, plain_paths in PLAIN.items():
    plain = runs(plain_paths)
    p = paired([r["return"] for r in plain], expert)
    print(f"\np-SIREN seed {seed}, plain fine frames: 3000-3099 {drove(plain)}")
    print("  " + line("against the expert", p))
    for variant in ("oracle", "oracle-allowed", "fovea"):
        folder = HERE / f"{variant}-s{seed}"
        m = read_json(folder / "metrics.json")
        drive = folder / "val3000-3099.json"
        head = (f"{variant}, seed {seed}: validation frames {100 * m['accuracy']['validation']:.2f}%, test "
                f"{100 * m['accuracy']['test']:.2f}%")
        if not drive.exists():
            print(head + "; not driven")
            continue
        mine = runs([drive])
        r = np.array([x["return"] for x in mine])
        print(f"{head}; 3000-3099 {drove(mine)}")
        d = paired(r, expert)
        print("  " + line("against the expert", d) + f"; level: {d['mean_difference'] >= -d['sem_difference']}")
        print("  " + line("against the plain fine frames", paired(r, [x["return"] for x in plain])))

# Plan O: the expert reading only 6 waypoints of track (horizon.py), and p-SIREN on its recording
horizons = {h: runs([HERE / f"horizon-h{h}-s3000.json"]) for h in (6, 10, 14, 40)}
print("\nplan O, pursuit-v3-cap60 by horizon on 3000-3099:")
for h, mine in horizons.items():
    print(f"  horizon {h}: {drove(mine)}; " + line("against horizon 40", paired(
        [x["return"] for x in mine], [x["return"] for x in horizons[40]])))
near = [x["return"] for x in horizons[6]]
for seed, plain_paths in PLAIN.items():
    folder = HERE / f"h6-s{seed}"
    m = read_json(folder / "metrics.json")
    head = (f"horizon-6 recording, seed {seed}: validation frames "
            f"{100 * m['accuracy']['validation']:.2f}%, test {100 * m['accuracy']['test']:.2f}%")
    drive = folder / "val3000-3099.json"
    if not drive.exists():
        print(head + "; not driven")
        continue
    mine = runs([drive])
    print(f"{head}; 3000-3099 {drove(mine)}")
    d = paired([x["return"] for x in mine], near)
    print("  " + line("against its expert (horizon 6)", d)
          + f"; level: {d['mean_difference'] >= -d['sem_difference']}")
    print("  " + line("against pursuit-v3-cap60", paired([x["return"] for x in mine], expert)))
    print("  " + line("against the same seed on the plain fine frames",
                      paired([x["return"] for x in mine], [x["return"] for x in runs(plain_paths)])))

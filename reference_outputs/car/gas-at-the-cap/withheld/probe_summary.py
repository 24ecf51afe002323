"""Plan K probe: the sampled drive (probe.py, 3000-3049) against the expert and the argmax drive."""
import json
import numpy as np

expert = json.load(open("tune-gb0.03-s3000.json"))["returns"]          # pursuit-v3-cap60
runs = json.load(open("probe-s9-t0.963.json")) + json.load(open("probe-s9-t0.963-3010.json"))
argmax = json.load(open("../../psiren90-fine-seeds/s952354559/val3000.json"))
sampled = [r["return"] for r in runs]


def paired(x, y):
    d = np.array(x) - np.array(y)
    return (f"{d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f}, better on {(d > 0).sum()}"
            f" of {len(d)}, median {np.median(d):+.2f}")


print(f"sampled at T = 0.963: {np.mean(sampled):.1f} +- {np.std(sampled, ddof=1) / np.sqrt(50):.1f}"
      f", {sum(r['lap'] for r in runs)} laps, off the road on "
      f"{sum(r['off_road_steps'] > 0 for r in runs)}")
print("sampled against the expert:", paired(sampled, expert))
print("argmax against the expert: ", paired(argmax["returns"], expert))
print("sampled against the argmax:", paired(sampled, argmax["returns"]))
both = [i for i in range(50) if runs[i]["lap"] and argmax["episodes"][i]["lap"]]
print(f"laps both finished: {len(both)}; steps against the argmax, median "
      f"{np.median([runs[i]['steps'] - argmax['episodes'][i]['steps'] for i in both]):+.0f}")

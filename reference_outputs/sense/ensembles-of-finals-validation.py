"""Validation accuracy (only) of the ensembles of the final 60-minute runs' best networks, by
summed logits and by vote (minisense.ensemble.evaluate); writes the JSON named on the command line."""
import itertools, json, sys
from minisense import ensemble
from minisense.data import load_dataset
runs = {"mnist, --shift-pixels 2 --redraw-steps 2000": ("sense/mnist-random80-shift2-r2000-60min-final-s{}/best", "mnist"),
        "mnist, defaults": ("sense/mnist-random80-60min-final-s{}/best", "mnist"),
        "fashion-mnist, defaults": ("sense/fashion-random80-60min-final-s{}/best", "fashion-mnist"),
        "carracing, defaults": ("car/sense-random80-60min-final-s{}/best", "carracing")}
out = {"split": "validation", "seeds": [2, 3, 4], "results": []}
for name, (fmt, ds) in runs.items():
    data = load_dataset(ds, None)
    paths = [fmt.format(s) for s in (2, 3, 4)]
    nets, _, _ = ensemble.load_members(paths)
    for combo in [(0, 1), (0, 2), (1, 2), (0, 1, 2)]:
        r = ensemble.evaluate([nets[i] for i in combo], data.validation.images, data.validation.labels)
        out["results"].append({"runs": name, "members": [paths[i] for i in combo],
                               **{k: r[k] for k in ("members", "sum", "vote", "mean_disagreement")}})
        print(f"{name}, seeds {[2 + i for i in combo]}: members "
              + " / ".join(f"{100 * m:.2f}" for m in r["members"])
              + f"%, summed logits {100 * r['sum']:.2f}%, vote {100 * r['vote']:.2f}%")
json.dump(out, open(sys.argv[1], "x"), indent=1)

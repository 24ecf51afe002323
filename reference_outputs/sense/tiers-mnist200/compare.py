"""MNIST, 200 steps: the fast unscreened search (minisense.sense.Search, fast engine) against the
textbook hill climb (textbook.sense.hill_climb) with the plain NumPy delta evaluator, and for the
first steps against whole forward passes (ForwardPasses): the same moves and weights, exactly."""
import json, sys, time
import numpy as np
from minisense import sense, runs
from minisense.sense import SenseConfig, layer_at, fitness_set
from minisense.textbook import sense as textbook
from minisense.textbook.delta import DeltaEvaluator as PlainDelta
from minisense.network import in_engine

steps, k, n_fit, forward_steps = 200, 10, 500, int(sys.argv[1]) if len(sys.argv) > 1 else 20
config = SenseConfig(neighbours=k, train_images=n_fit, screen_images=0, max_steps=steps,
                     budget_seconds=1e9, seed=0)
net, data = runs.initial_network(0, "mnist", sparsity=80)
t = time.perf_counter()
search = sense.Search(net, data, config)
search.run()
fast_seconds = time.perf_counter() - t
moves = [(r["step"], r["layer"]) for r in search.history[1:] if r["accepted"]]
images, labels = fitness_set(data, n_fit)
cfg = search.config
plain = in_engine(net, "textbook")
out = {"command": "python mnist200.py", "steps": steps, "neighbours": k, "fitness_images": n_fit,
       "margin_clip": cfg.margin_clip, "fast_accepted": len(moves), "fast_seconds": fast_seconds,
       "final_train_accuracy": search.history[-1]["train_accuracy"],
       "final_validation_accuracy": search.history[-1]["validation_accuracy"]}
for name, evaluator, n in (("textbook_delta", PlainDelta, steps), ("forward_passes", textbook.ForwardPasses, forward_steps)):
    t = time.perf_counter()
    got, weights = textbook.hill_climb(plain, images, labels, lambda s: layer_at(cfg, search.layers, s), n,
                                       k, cfg.seed, cfg.fitness, cfg.margin_clip, evaluator)
    seconds = time.perf_counter() - t
    same_moves = [(m["step"], m["layer"]) for m in got] == [m for m in moves if m[0] <= n]
    if n == steps:
        same_weights = all(np.array_equal(weights[x], search.fit.weights[x]) for x in weights)
    else:
        same_weights = None
    out[name] = {"steps": n, "accepted": len(got), "same_moves": same_moves,
                 "same_final_weights": same_weights, "seconds": seconds}
    print(json.dumps(out), flush=True)

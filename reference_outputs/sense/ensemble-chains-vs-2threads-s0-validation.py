"""Validation accuracy (only) of the ensemble of the two chains' best networks of the seed-0
two-chain MNIST hour, beside the best of one chain on two threads (minisense.ensemble.evaluate)."""
import json, sys
from minisense import ensemble
from minisense.data import load_dataset
data = load_dataset("mnist", None)
chains = [f"sense/mnist-random80-shift2-r2000-chains2-60min-s0/chain-{i}/best" for i in (0, 1)]
single = "sense/mnist-random80-shift2-r2000-2threads-60min-s0/best"
nets, _, _ = ensemble.load_members(chains + [single])
v = data.validation
pair = ensemble.evaluate(nets[:2], v.images, v.labels)
one = ensemble.evaluate(nets[2:], v.images, v.labels)
out = {"split": "validation", "two_chains": {"members": chains, **{k: pair[k] for k in ("members", "sum", "vote", "mean_disagreement")}},
       "one_chain_two_threads": {"member": single, "accuracy": one["members"][0]}}
print("two chains (one thread each): members " + " / ".join(f"{100 * m:.2f}" for m in pair["members"])
      + f"%, summed logits {100 * pair['sum']:.2f}%, vote {100 * pair['vote']:.2f}%")
print(f"one chain on two threads: {100 * one['members'][0]:.2f}%")
json.dump(out, open(sys.argv[1], "x"), indent=1)

"""Step 4's learned gains at 0% and 90% sparsity on MNIST (session 5 diagnosis).

One dense epoch on 20,000 training images, then (90%: prune and one sparse epoch) binarize and
run 300 batches of step 4 at lr 0.01, momentum 0.9, with the gains fixed ("off"), learned from
the raw gradient ("plain", the behaviour before session 5), from LSQ's gradient / sqrt(N)
("lsq", the default since) or in log space ("log"). For "plain" at 0% the first 20 batches are
traced. Run: PYTHONPATH=. OPENBLAS_NUM_THREADS=1 MINISENSE_DATA=DATA python step4-gains.py
"""
import copy

import numpy as np

from minisense.data import load_dataset
from minisense.layers import SGD, softmax_cross_entropy
from minisense.network import binarize, build_network, fix_thresholds
from minisense.psiren import prune, target_zeros, train_epoch

d = load_dataset("mnist")              # --data-dir order: $MINISENSE_DATA, cache, download
x, y = d.train.images[:20000], d.train.labels[:20000]
rng = np.random.default_rng(0)
net = build_network("mnist", rng)
train_epoch(net, x, y, SGD(list(net.weighted.values()), 0.05, 0.9, 5e-4), rng, 100)
print("dense validation", net.accuracy(d.validation.images, d.validation.labels))


def step(self, mode):
    for i, layer in enumerate(self.layers):
        if layer.learn_gain:
            g = layer.gain_grad
            if mode == "lsq":
                g = g / np.sqrt(np.count_nonzero(layer.effective_weight()))
            elif mode == "log":
                g = g * layer.gain
            self.gain_velocity[i] = self.momentum * self.gain_velocity[i] + g
            if mode == "log":
                layer.gain = float(layer.gain * np.exp(-self.lr * self.gain_velocity[i]))
            else:
                layer.gain = max(float(layer.gain - self.lr * self.gain_velocity[i]), 1e-6)
    for layer, v in zip(self.layers, self.velocity):
        v *= self.momentum
        v += layer.grad
        layer.weight -= self.lr * v
        if layer.mask is not None:
            layer.weight *= layer.mask


def gains(n):
    return [round(layer.gain, 4) for layer in n.weighted.values()]


for p in (0, 90):
    base = copy.deepcopy(net)
    if p:
        prune(base, target_zeros(base, p, "global"))
        train_epoch(base, x, y, SGD(list(base.weighted.values()), 0.01, 0.9, 5e-4), rng, 100)
    for mode in ("off", "plain", "lsq", "log"):
        n = copy.deepcopy(base)
        binarize(n)
        if mode == "off":
            print(f"p{p} binarized: validation "
                  f"{n.accuracy(d.validation.images, d.validation.labels):.4f}, gains {gains(n)}")
        for layer in n.weighted.values():
            layer.learn_gain = mode != "off"
        opt = SGD(list(n.weighted.values()), 0.01, 0.9, 0.0)
        r = np.random.default_rng(1)
        losses = []
        for i in range(300):
            b = r.integers(0, len(x), 100)
            loss, dl = softmax_cross_entropy(n.forward(x[b]), y[b])
            n.backward(dl)
            step(opt, mode)
            losses.append(loss)
            if p == 0 and mode == "plain" and i < 20:
                print(f"  p0 plain batch {i}: loss {loss:.3f}, gains after it {gains(n)}")
        fix_thresholds(n)
        by50 = [round(float(np.mean(losses[k:k + 50])), 3) for k in range(0, 300, 50)]
        print(f"p{p} {mode:5s} mean loss per 50 batches {by50}, gains {gains(n)}, validation "
              f"{n.accuracy(d.validation.images, d.validation.labels):.4f}", flush=True)

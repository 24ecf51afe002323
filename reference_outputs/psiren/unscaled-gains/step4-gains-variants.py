"""Step 4 gain learning variants at 0% and 90% sparsity, 300 batches each (session 5)."""
import copy, sys, numpy as np
from minisense.data import load_dataset
from minisense.network import build_network, binarize
from minisense.layers import SGD, softmax_cross_entropy
from minisense.psiren import train_epoch, prune, target_zeros
d = load_dataset("mnist", "/work/shared/data")
x, y = d.train.images[:20000], d.train.labels[:20000]
rng = np.random.default_rng(0)
net = build_network("mnist", rng)
opt = SGD(list(net.weighted.values()), 0.05, 0.9, 5e-4)
train_epoch(net, x, y, opt, rng, 100)

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
        v *= self.momentum; v += layer.grad; layer.weight -= self.lr * v
        if layer.mask is not None: layer.weight *= layer.mask

for p in (0, 90):
    base = copy.deepcopy(net)
    if p:
        prune(base, target_zeros(base, p, "global"))
        train_epoch(base, x, y, SGD(list(base.weighted.values()), 0.01, 0.9, 5e-4), rng, 100)
    for mode in ("off", "plain", "lsq", "log"):
        n = copy.deepcopy(base); binarize(n)
        for l in n.weighted.values(): l.learn_gain = mode != "off"
        opt = SGD(list(n.weighted.values()), 0.01, 0.9, 0.0)
        r = np.random.default_rng(1); losses = []
        for i in range(300):
            b = r.integers(0, len(x), 100)
            loss, dl = softmax_cross_entropy(n.forward(x[b]), y[b]); n.backward(dl); step(opt, mode)
            losses.append(loss)
        from minisense.network import fix_thresholds; fix_thresholds(n)
        print(f"p{p} {mode:5s} loss by 50: {[round(float(np.mean(losses[k:k+50])),3) for k in range(0,300,50)]}"
              f" gains {[round(l.gain,4) for l in n.weighted.values()]} val {n.accuracy(d.validation.images, d.validation.labels):.4f}", flush=True)

"""Step 4 at 0% sparsity: is the loss blow-up the learned gains? (session 5 diagnosis)"""
import copy, sys, numpy as np
from minisense.data import load_dataset
from minisense.network import build_network, binarize, fix_thresholds
from minisense.layers import SGD, softmax_cross_entropy
from minisense.psiren import train_epoch
d = load_dataset("mnist", "/work/shared/data")
x, y = d.train.images[:20000], d.train.labels[:20000]
rng = np.random.default_rng(0)
net = build_network("mnist", rng)
opt = SGD(list(net.weighted.values()), 0.05, 0.9, 5e-4)
train_epoch(net, x, y, opt, rng, 100)
print("dense val", net.accuracy(d.validation.images, d.validation.labels))
for learn in (True, False):
    n = copy.deepcopy(net)
    binarize(n)
    print("learn_gain", learn, "binarized val", n.accuracy(d.validation.images, d.validation.labels),
          "gains", [round(l.gain, 4) for l in n.weighted.values()], n.thresholds)
    for l in n.weighted.values():
        l.learn_gain = learn
    opt = SGD(list(n.weighted.values()), 0.01, 0.9, 0.0)
    r = np.random.default_rng(1)
    for i in range(150):
        b = r.integers(0, len(x), 100)
        loss, dl = softmax_cross_entropy(n.forward(x[b]), y[b])
        n.backward(dl)
        opt.step()
        if i % 15 == 0 or loss > 5:
            print(f"  batch {i} loss {loss:.3f} gains", [round(l.gain, 4) for l in n.weighted.values()],
                  "gain_grads", [round(l.gain_grad, 1) for l in n.weighted.values()])
            if loss > 5 and i > 40: break

"""Step-4 recipe search at 95%: snapshot the sparse net, then try step-4 variants."""
import copy, json, sys, time
import numpy as np
import minisense.psiren as P
from minisense.data import load_dataset
from minisense.layers import SGD
from minisense.network import binarize, fix_thresholds

snap = {}
orig = P.binarize
def grab(net):
    snap["net"] = copy.deepcopy(net)
    orig(net)
P.binarize = grab
data = load_dataset("mnist", "/work/shared/data")
cfg = P.PsirenConfig(sparsity=95, epochs={"dense": 10, "prune": 5, "sparse": 5, "binary": 0})
net, hist = P.psiren(data, cfg, log=lambda l: print(l, flush=True))
sparse = snap["net"]
val, test = data.validation, data.test
print("after binarize, no tuning: val %.4f test %.4f" % (net.accuracy(val.images, val.labels), net.accuracy(test.images, test.labels)), flush=True)
batches = -(-50000 // 100)
for lr, learn in [(0.003, True), (0.001, True), (0.003, False)]:
    n = copy.deepcopy(sparse)
    binarize(n)
    for l in n.weighted.values(): l.learn_gain = learn
    opt = SGD(list(n.weighted.values()), lr, 0.9, 0.0)
    rng = np.random.default_rng(0)
    E = 3
    sched = P._cosine(lr, E, batches)
    for e in range(E):
        t0 = time.time()
        loss = P.train_epoch(n, data.train.images, data.train.labels, opt, rng, 100, lambda i, e=e: sched(e, i))
        fix_thresholds(n)
        print(f"lr {lr} learn {learn} epoch {e+1}: loss {loss:.4f} val {n.accuracy(val.images, val.labels):.4f} {time.time()-t0:.0f}s gains {[round(l.gain,4) for l in n.weighted.values()]}", flush=True)
    for l in n.weighted.values(): l.learn_gain = False
    print(f"RESULT lr {lr} learn {learn}: val {n.accuracy(val.images, val.labels):.4f} test {n.accuracy(test.images, test.labels):.4f}", flush=True)

"""95%: other allocations of the nonzeros across layers (steps 1-3), then 4 epochs of step 4."""
import sys, time, numpy as np
import minisense.psiren as P
from minisense.data import load_dataset
log = lambda *a: print(*a, flush=True)
mode = sys.argv[1]
orig_prune = P.prune

def prune(net, zeros):
    count = zeros["*"]
    names = list(net.weighted)
    if mode == "fanin":
        scores = [np.abs(net.weighted[n].effective_weight()).ravel() *
                  np.sqrt(net.weighted[n].weight[0].size) for n in names]
        groups = [(names, count)]
    elif mode == "l1quota":
        total = sum(net.weighted[n].weight.size for n in names)
        frac = count / round(total * 0.95)          # progress of the schedule, 0..1
        l1 = net.weighted["layer1.0"].weight.size
        c1 = int(round(l1 * 0.75 * frac))            # layer1.0 ends 75% sparse (100 kept)
        groups = [(["layer1.0"], c1), (names[1:], count - c1)]
    for grp, c in groups:
        if mode == "fanin":
            mags = np.concatenate(scores)
        else:
            mags = np.concatenate([np.abs(net.weighted[n].effective_weight()).ravel() for n in grp])
        keep = np.ones(mags.size, bool); keep[np.argsort(mags, kind="stable")[:c]] = False
        off = 0
        for n in grp:
            l = net.weighted[n]; s = l.weight.size
            l.mask = keep[off:off + s].reshape(l.weight.shape).astype(l.weight.dtype)
            l.weight *= l.mask; off += s
P.prune = prune
data = load_dataset("mnist", "/work/shared/data")
cfg = P.PsirenConfig(sparsity=95, epochs={"dense": 10, "prune": 5, "sparse": 5, "binary": 4})
net, hist = P.psiren(data, cfg, log=log)
log(mode, "family", net.family())
log(f"RESULT {mode}: val {net.accuracy(data.validation.images, data.validation.labels):.4f} "
    f"test {net.accuracy(data.test.images, data.test.labels):.4f}")

"""Step-4 variants at 95% on one snapshot of the sparse (step 3) network, seed 0."""
import copy, os, pickle, sys, time
import numpy as np
import minisense.psiren as P
from minisense.data import load_dataset
from minisense.layers import SGD, softmax_cross_entropy
from minisense.network import binarize, fix_thresholds, exact_logits

SNAP = "/tmp/runs/p95/sparse.pkl"
data = load_dataset("mnist", "/work/shared/data")
val, test, train = data.validation, data.test, data.train
log = lambda *a: print(*a, flush=True)

if os.path.exists(SNAP):
    sparse = pickle.load(open(SNAP, "rb"))
else:
    snap = {}
    orig = P.binarize
    def grab(net):
        snap["net"] = copy.deepcopy(net)
        orig(net)
    P.binarize = grab
    cfg = P.PsirenConfig(sparsity=95, epochs={"dense": 10, "prune": 5, "sparse": 5, "binary": 0})
    P.psiren(data, cfg, log=log)
    P.binarize = orig
    sparse = snap["net"]
    pickle.dump(sparse, open(SNAP, "wb"))


def soft_ce(student, teacher, T):
    ps = np.exp(student / T - (student / T).max(1, keepdims=True)); ps /= ps.sum(1, keepdims=True)
    pt = np.exp(teacher / T - (teacher / T).max(1, keepdims=True)); pt /= pt.sum(1, keepdims=True)
    return T * (ps - pt) / len(student)


def binarize_layer(l):
    w = l.effective_weight(); kept = w[w != 0]
    l.weight = w.copy(); l.mask = (w != 0).astype(w.dtype); l.ternary = True
    l.gain = float(np.abs(kept).mean()); l.learn_gain = True


def run(name, lr=0.01, learn=True, epochs=3, kd=0.0, T=4.0, gain_scale=1.0, momentum=0.9,
        calibrate=False, progressive=None):
    n = copy.deepcopy(sparse)
    teacher = copy.deepcopy(sparse)
    if progressive is None:
        binarize(n)
        log(f"[{name}] binarized val {n.accuracy(val.images, val.labels):.4f}")
        for l in n.weighted.values():
            l.learn_gain = learn
    opt = SGD(list(n.weighted.values()), lr, momentum, 0.0)
    rng = np.random.default_rng(0)
    batches = -(-len(train.images) // 100)
    sched = P._cosine(lr, epochs, batches)
    for e in range(epochs):
        if progressive is not None:
            for k, l in enumerate(n.weighted.values()):
                if progressive[k] == e:
                    binarize_layer(l)
                    if n.is_binary:
                        fix_thresholds(n)
                    log(f"[{name}] epoch {e+1}: {l.name} ternary, val {n.accuracy(val.images, val.labels):.4f}")
            if e == max(progressive):
                fix_thresholds(n)
        t0 = time.time()
        order = rng.permutation(len(train.images))
        total = 0.0
        for i, s in enumerate(range(0, len(order), 100)):
            b = order[s:s + 100]
            opt.lr = sched(e, i)
            logits = n.forward(train.images[b])
            loss, d = softmax_cross_entropy(logits, train.labels[b])
            if kd:
                t = teacher.forward(train.images[b])
                d = (1 - kd) * d + kd * soft_ce(logits, t, T)
            n.backward(d)
            if gain_scale != 1.0:
                for l in n.weighted.values():
                    l.gain_grad *= gain_scale
            opt.step()
            total += loss
        if n.is_binary:
            fix_thresholds(n)
        log(f"[{name}] epoch {e+1}: loss {total / batches:.4f} val "
            f"{n.accuracy(val.images, val.labels):.4f} {time.time()-t0:.0f}s gains "
            f"{[round(float(l.gain), 4) for l in n.weighted.values()]}")
    for l in n.weighted.values():
        l.learn_gain = False
    log(f"RESULT [{name}] val {n.accuracy(val.images, val.labels):.4f} test "
        f"{n.accuracy(test.images, test.labels):.4f}")
    return n


VARIANTS = {
    "base": dict(),
    "kd": dict(kd=0.7),
    "gainslow": dict(gain_scale=0.1),
    "nogain": dict(learn=False),
    "lr03": dict(lr=0.03),
    "lr003kd": dict(lr=0.003, kd=0.7),
    "prog4": dict(progressive=[0, 1, 2], epochs=4),
    "base4": dict(epochs=4),
    "prog6": dict(progressive=[0, 2, 4], epochs=6),
}
for name in sys.argv[1:]:
    run(name, **VARIANTS[name])

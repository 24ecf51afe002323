import copy, pickle, numpy as np
from minisense.data import load_dataset
from minisense.network import binarize
data = load_dataset("mnist", "/work/shared/data"); val = data.validation
sparse = pickle.load(open("sparse.pkl", "rb"))
def acc(n):
    return np.mean(np.concatenate([n.forward(val.images[i:i+1000]).argmax(1) for i in range(0, 10000, 1000)]) == val.labels)
print("float", acc(sparse))
for name in sparse.weighted:
    n = copy.deepcopy(sparse); l = n.weighted[name]
    w = l.effective_weight(); kept = w[w != 0]
    a = np.abs(kept).mean()
    l.weight = (a * np.sign(w)).astype(np.float32)
    print("only", name, "ternary (alpha=mean|w|):", acc(n), "nonzeros", kept.size)
    # per-output-channel alpha
    n = copy.deepcopy(sparse); l = n.weighted[name]
    w = l.effective_weight(); w2 = w.reshape(w.shape[0], -1)
    al = np.array([np.abs(r[r != 0]).mean() if (r != 0).any() else 0 for r in w2])
    l.weight = (al.reshape((-1,) + (1,) * (w.ndim - 1)) * np.sign(w)).astype(np.float32)
    print("only", name, "ternary per-channel alpha:", acc(n))

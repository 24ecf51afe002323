"""Threshold moves probed at the end of a climb: each hidden layer's integer HardTanh limit T_l
(Section 3.1; the paper's manifold leaves it free) scaled by a factor, the rest of the network
as it is, accuracy on the training and validation frames (never test).
python threshold-probe.py RUN [RUN ...]   (RUN/best is the network; MINISENSE_DATA finds the car)"""
import sys

import minisense as ms

ds = ms.load_dataset("carracing")
for run in sys.argv[1:]:
    net, meta = ms.load_checkpoint(run + "/best")
    base = dict(net.thresholds)
    print(run.split("/")[-1], "thresholds", base, "gain", net.last_gain)

    def acc(thresholds, split):
        probe = net.with_ternary(net.ternary_weights(), thresholds)
        s = getattr(ds, split)
        return 100 * probe.accuracy(s.images, s.labels)

    print("  base train %.2f val %.2f" % (acc(base, "train"), acc(base, "validation")))
    for name in base:
        for f in (0.5, 0.75, 0.9, 1.1, 1.25, 1.5, 2.0):
            th = dict(base)
            th[name] = max(1, int(round(base[name] * f)))
            print("  %s x%.2f -> %d: train %.2f val %.2f" % (name, f, th[name], acc(th, "train"),
                                                           acc(th, "validation")), flush=True)

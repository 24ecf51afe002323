"""Evaluating a saved network (``minisense eval``): its accuracy on the validation and test splits
of its dataset, next to the majority-class baseline, and each layer's family (Section 3: the
counts of -1, 0 and +1 that bit swaps keep)."""

from __future__ import annotations

from minisense import checkpoint
from minisense.data import architecture_for, check_frame_kind, load_dataset, majority_baseline
from minisense.errors import MinisenseError


def evaluate(path, dataset: str | None = None, data_dir=None) -> dict:
    """Validation and test accuracy, sparsity and per-layer family of a saved network.

    ``dataset`` defaults to the one recorded in the checkpoint; the architecture the dataset needs
    must be the checkpoint's (see ``checkpoint.load``).
    """
    npz_path, _ = checkpoint.checkpoint_paths(path)
    _, meta = checkpoint.load(path)
    name = dataset or meta.get("dataset")
    if name is None:
        raise MinisenseError(f"checkpoint {npz_path} names no dataset; pass --dataset")
    net, meta = checkpoint.load(path, architecture=architecture_for(name))
    data = load_dataset(name, data_dir)
    check_frame_kind(meta, data.frame_kind, checkpoint.checkpoint_paths(path)[1])
    layers = {layer: {"weights": sum(counts.values()),
                      "sparsity": 100.0 * counts["0"] / sum(counts.values()), "family": counts}
              for layer, counts in net.family().items()}
    return {"checkpoint": str(npz_path), "architecture": net.architecture, "dataset": data.name,
            "source": data.source,
            "validation_images": len(data.validation.labels),
            "validation_accuracy": net.accuracy(data.validation.images, data.validation.labels),
            "test_images": len(data.test.labels),
            "test_accuracy": net.accuracy(data.test.images, data.test.labels),
            "validation_majority_baseline": majority_baseline(data.validation),
            "test_majority_baseline": majority_baseline(data.test),
            "sparsity": checkpoint.sparsity_percent(net), "layers": layers}

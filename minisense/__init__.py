"""minisense: Architecture Agnostic Neural Networks (p-SIREN and SENSE) in NumPy and Numba.

The public API, everything the ``minisense`` command does, callable from Python (README, "From
Python"). Configs are frozen dataclasses (``dataclasses.replace`` makes a changed copy); arrays go
in and out as NumPy arrays; long work reports through callbacks and never prints.

Data
    ``load_dataset(name, data_dir=None)`` -> ``Dataset`` with ``train``, ``validation``, ``test``
    splits of uint8 images (n, h, w) and int64 labels (n,).
Networks
    ``Network`` (the textbook tier's; ``build_network`` makes a fresh float one),
    ``random_network(architecture, sparsity, seed, calibration_images)`` (a random p-sparse
    ternary network, Section 4.4), ``exact_logits(net, images)`` (exact integer inference, (n,
    classes) int64); ``net.predict(images)`` and ``net.accuracy(images, labels)``.
p-SIREN (Algorithm 1)
    ``PsirenConfig``, ``train_psiren(dataset, config)`` -> (binary network, history).
SENSE (Algorithm 2)
    ``SenseConfig``, ``search(net, dataset, config, out=None, on_step=...)`` -> (best network by
    validation, history); ``Search``, the same climb step by step in memory (``step()``,
    ``run()``); ``resume_search(folder)`` continues a run folder.
Checkpoints, ensembles, pictures
    ``save_checkpoint(net, path)``, ``load_checkpoint(path)`` -> (network, metadata);
    ``evaluate_ensemble(nets, images, labels)``; ``plot_run(folder)`` draws a run folder (a
    ``train``, ``search`` or ``car dagger`` one) as a PNG.

Names are loaded on first use, so that ``import minisense`` stays light and the textbook tier
(``minisense.textbook``) can be imported without the fast one.
"""

import importlib

__version__ = "0.1.0"

# public name -> (module, name in that module)
_EXPORTS = {
    "MinisenseError": ("minisense.errors", "MinisenseError"),
    "load_dataset": ("minisense.data", "load_dataset"),
    "Dataset": ("minisense.data", "Dataset"),
    "Split": ("minisense.data", "Split"),
    "Network": ("minisense.network", "Network"),
    "build_network": ("minisense.network", "build_network"),
    "exact_logits": ("minisense.network", "exact_logits"),
    "random_network": ("minisense.runs", "random_network"),
    "PsirenConfig": ("minisense.psiren", "PsirenConfig"),
    "train_psiren": ("minisense.psiren", "psiren"),
    "SenseConfig": ("minisense.sense", "SenseConfig"),
    "Search": ("minisense.sense", "Search"),
    "search": ("minisense.runs", "search"),
    "resume_search": ("minisense.runs", "resume"),
    "save_checkpoint": ("minisense.checkpoint", "save"),
    "load_checkpoint": ("minisense.checkpoint", "load"),
    "evaluate_ensemble": ("minisense.ensemble", "evaluate"),
    "plot_run": ("minisense.runplots", "plot_run"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'minisense' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value                 # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

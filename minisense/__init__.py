"""minisense: Architecture Agnostic Neural Networks (p-SIREN and SENSE) in NumPy and Numba."""

__version__ = "0.1.0"

from minisense.errors import MinisenseError  # noqa: E402

__all__ = ["MinisenseError", "__version__"]

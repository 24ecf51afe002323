"""The fast tier: the textbook tier's functions with the same signatures, made fast (threads,
grouped rows, work arrays, Numba kernels) and tested equal to their textbook twins."""

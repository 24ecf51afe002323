"""The textbook tier: the paper plainly, in NumPy; nothing in it is there for speed.

Read it with the paper open, in this order:

1. ``layers``   Section 3.1: im2col convolution and its col2im backward, max-pooling with argmax
                routing, HardTanh, linear, cross-entropy, SGD, and Algorithm 1's binarization
                with the straight-through estimator and learned gains.
2. ``network``  Section 3.1: the MNIST and car networks, binarization to integer thresholds, and
                exact integer inference.
3. ``psiren``   Algorithm 1 (p-SIREN): its four steps and the one training loop.
4. ``sense``    Algorithm 2 (SENSE): a hill climb scoring each neighbour by a whole forward pass.
5. ``delta``    Sections 4.2-4.3: delta evaluation, a neighbour's logits from cached integers.

``minisense.fast`` has the same functions with the same signatures, made fast, and is tested
equal to these; ``--engine textbook`` runs a whole p-SIREN or SENSE run on this tier. Nothing
here imports the fast tier.
"""

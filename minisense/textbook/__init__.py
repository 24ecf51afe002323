"""The textbook tier: the paper plainly, in NumPy; nothing in it is there for speed."""

"""Delta evaluation of bit swaps: score many first neighbours without a full forward pass.

SENSE (Algorithm 2, Section 4.3) and the neighbourhood survey of Section 4.2 evaluate very many
first neighbours of one network: each differs from it by a single bit swap (Section 3.2), one
nonzero weight moved, sign and all, to a zero position of the same layer. The network's integer
arithmetic (``minisense.network``) makes a neighbour's outputs a small, exact correction of the
current network's. For fixed evaluation images we keep the current network's integers::

    z1  pre-pool sums of layer 1        h1 = clip(pool(z1), T1)   (zero-padded for layer 2)
    z2  pre-pool sums of layer 2        h2 = clip(pool(z2), T2)   (the fc input, channel-major)
    z3, h3  the hidden fc layer (car)   logits Z

A swap in layer l changes only the pre-activations of the output channel(s) or unit(s) whose
weights moved: two at most, the one at ``src`` and the one at ``dst``. Their new sums are the old
ones minus w * (input under src) plus w * (input under dst). Only those go through pooling and
clip; an entry of H_l that does not change (its window's max still clips to the same value, or it
saturates) stops there; the entries that do change are pushed through the next layer as "changed
entries and their deltas", and so on to the logits. A swap in the output layer moves two logits.

Layout. Images go in blocks of ``LANES`` (64: eight AVX2 vectors of int32); every cached array
keeps the image last, ``(block, ..., LANES)``, so each kernel's innermost loop runs over a
block's images in SIMD, and a block's integers stay in the CPU cache while all K candidate swaps
are scored on it: one kernel call scores all K candidates on a range of blocks, and the ranges
run on parallel threads (the kernels release the GIL, so plain Python threads share the cores).
Padding lanes hold blank images labelled -1 and never count. Work is skipped a block at a time:
an H entry, a layer-2 channel or the rest of the network is left alone when it changes for none
of the block's images.

Polyphase planes. A k x k convolution followed by q x q max-pooling reads its zero-padded input X
at (q*py + dy + i, q*px + dx + j) for pooled output (py, px), window offset (dy, dx) and tap
(i, j). Split X into its q*q phases X_s[a, b] = X[q*a + ry, q*b + rx], s = ry*q + rx: the read is
phase ((dy+i) % q)*q + (dx+j) % q at (py + (dy+i)//q, px + (dx+j)//q), so for fixed (dy, dx)
and (i, j) a shifted copy of one phase plane. Conv inputs are therefore stored as their phases
and pre-pool sums as their q*q window offsets, each a plane (rows, cols * LANES): every hot loop
runs along a contiguous row, and pooling is an elementwise max over the q*q offset planes.

Arithmetic is exact int32 (images and layer-1 sums, at most 49 * 255, are stored as int16),
wrapped in np.int32 so Numba does not widen it to int64; indices are np.uint64 so Numba drops its
negative-index wraparound, which would stop LLVM from vectorizing. Scores are integers, the same
for any thread count.

:class:`DeltaEvaluator` equals :class:`minisense.textbook.delta.DeltaEvaluator` (the same
delta evaluation in plain NumPy, no blocks, no phases: read it first) and
``minisense.textbook.sense.ForwardPasses`` (apply the swap, run the whole network) exactly, with
the same methods; it is faster because of the blocks, the phase planes and the kernels above.
"""

from __future__ import annotations

import concurrent.futures

import numba
import numpy as np

from minisense.errors import MinisenseError
from minisense.fast.kernels import (
    INT32_LIMIT,
    KEY,
    LANES,
    ConvTaps,
    FcColumns,
    Tail,
    _first_conv_blocks,
    _forward_blocks,
    _hidden_fc_blocks,
    _inner_conv_blocks,
    _output_fc_blocks,
)
from minisense.fast.layers import Conv2d, Flatten, HardTanh, Linear, MaxPool2d
from minisense.network import INPUT_SCALE, Network
from minisense.swaps import apply_swap
from minisense.textbook.delta import check_scored_set, check_swaps, score_logits

# ----------------------------------------------------------------------------------------------
# The evaluator and its NumPy oracle
# ----------------------------------------------------------------------------------------------

_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _over_blocks(kernel, ranges, candidates: int | None = None, **arguments):
    """Run ``kernel(first=, last=, **arguments[, correct=, margin=])`` over block ranges, in
    chunks on ``numba.get_num_threads()`` threads (the kernels release the GIL). Every argument
    goes by name, so none can land in the wrong place.

    ``ranges`` is a number of blocks B (all of 0..B-1) or a list of (first, last) block ranges.
    With ``candidates`` = K each chunk adds its blocks' scores into its own (K,) rows of correct
    and margin; returns their sums over chunks, (K,) int64 each. Integer sums: the result does
    not depend on the number of threads, the split or the order of the blocks.
    """
    global _POOL
    if isinstance(ranges, (int, np.integer)):
        ranges = [(0, int(ranges))]
    blocks = sum(last - first for first, last in ranges)
    threads = min(numba.get_num_threads(), blocks)
    pieces = min(blocks, 4 * threads)
    chunks = []
    for first, last in ranges:                     # each range cut in proportion to its length
        n = max(1, round(pieces * (last - first) / max(blocks, 1))) if last > first else 0
        cuts = np.linspace(first, last, min(n, last - first) + 1).astype(np.int64)
        chunks += list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
    totals = np.zeros((2, len(chunks), candidates or 0), np.int64)

    def run(c):
        scores = {} if candidates is None else {"correct": totals[0, c], "margin": totals[1, c]}
        kernel(first=chunks[c][0], last=chunks[c][1], **arguments, **scores)

    if threads <= 1:
        for c in range(len(chunks)):
            run(c)
    else:
        # Exactly ``threads`` workers, so NUMBA_NUM_THREADS (or numba.set_num_threads) is a
        # hard limit on the cores a search uses, whatever the machine has.
        if _POOL is None or _POOL._max_workers != threads:
            if _POOL is not None:
                _POOL.shutdown()
            _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=threads)
        for future in [_POOL.submit(run, c) for c in range(len(chunks))]:
            future.result()
    return totals[0].sum(axis=0), totals[1].sum(axis=0)


def _pieces(ranges: list, parts: int) -> list[list]:
    """(first, last) block ranges cut into ``parts`` runs of about equal length, in order."""
    blocks = [b for first, last in ranges for b in range(first, last)]
    cuts = np.linspace(0, len(blocks), min(parts, len(blocks)) + 1).astype(int)
    pieces = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        run, out = blocks[a:b], []
        for block in run:                       # consecutive blocks back into ranges
            if out and out[-1][1] == block:
                out[-1] = (out[-1][0], block + 1)
            else:
                out.append((block, block + 1))
        pieces.append(out)
    return [p for p in pieces if p]


def block_window(start: int, count: int, total: int) -> tuple[list, list]:
    """``count`` consecutive blocks from ``start``, wrapping around ``total`` blocks, and the rest.

    Returns (window, rest), each a list of (first, last) block ranges; together they cover every
    block once. Screened evaluation (``minisense.sense``) scores on the window first.
    """
    start, count = start % total, min(count, total)
    end = start + count
    if end <= total:
        window, rest = [(start, end)], [(end, total), (0, start)]
    else:
        window, rest = [(start, total), (0, end - total)], [(end - total, start)]
    return ([r for r in window if r[1] > r[0]], [r for r in rest if r[1] > r[0]])


def fc_columns(w: np.ndarray) -> FcColumns:
    """A fc weight (out, in) as its nonzeros column by column, for pushing changed inputs.

    Returns FcColumns(start (in+1,) int64, rows (nnz,) int64, values (nnz,) int32): column f's
    nonzeros are rows[start[f]:start[f+1]] with values values[start[f]:start[f+1]].
    """
    cols, rows = np.nonzero(w.T)
    start = np.searchsorted(cols, np.arange(w.shape[1] + 1))
    return FcColumns(start=start.astype(np.int64), rows=rows.astype(np.int64),
                     values=w[rows, cols].astype(np.int32))


def conv_taps(w: np.ndarray) -> ConvTaps:
    """A conv weight (out, in, k, k) as its nonzero taps grouped by (out, in) channel.

    Returns ConvTaps(start (out*in+1,), i, j, w), int64: the taps of channels (o, c) are entries
    start[o*in + c] to start[o*in + c + 1] of i, j (kernel row, column) and w (+1 or -1).
    """
    o, c, i, j = np.nonzero(w)
    start = np.searchsorted(o * w.shape[1] + c, np.arange(w.shape[0] * w.shape[1] + 1))
    return ConvTaps(start=start.astype(np.int64), i=i.astype(np.int64), j=j.astype(np.int64),
                    w=w[o, c, i, j].astype(np.int64))


def _structure(net: Network) -> tuple:
    """(conv1, pool1, conv2, pool2, fc layers) of the paper's two networks, or a one-line error."""
    kinds = [type(m) for m in net.modules]
    head = [Conv2d, MaxPool2d, HardTanh, Conv2d, MaxPool2d, HardTanh, Flatten, Linear]
    if (kinds[:8] != head or kinds[8:] not in ([], [HardTanh, Linear])
            or net.modules[0].weight.shape[1] != 1 or net.num_classes > KEY):
        raise MinisenseError("delta evaluation needs the paper's layout (conv, pool, clip twice, "
                             "then one fc or fc-clip-fc, one input channel, <= 16 classes); got "
                             + ", ".join(k.__name__ for k in kinds))
    m = net.modules
    return m[0], m[1].k, m[3], m[4].k, [x for x in m[7:] if isinstance(x, Linear)]


class DeltaEvaluator:
    """The current binary network's integers on fixed images, and its neighbours' scores.

    Parameters
    ----------
    net : a binary ``Network`` (mnist or car layout); its weights and thresholds are copied
    images : ndarray of shape (n, h, w), uint8
    labels : ndarray of shape (n,), int in 0..classes-1
    margin_clip : int >= 0, each image's margin is clipped to [-margin_clip, margin_clip]

    Attributes
    ----------
    weights : dict name -> int8 array (the layer's layout), the current network
    thresholds : dict hidden layer name -> int
    cache_bytes : int, memory held by the cached integers
    """

    def __init__(self, net: Network, images: np.ndarray, labels: np.ndarray, margin_clip: int):
        conv1, self._q1, conv2, self._q2, fcs = _structure(net)
        self.weights = net.ternary_weights()
        self.thresholds = dict(net.thresholds)
        self.names = list(self.weights)
        self._template = net
        # Any neighbour's sums are bounded by (full fan-in) x (input limit); a change is at most
        # twice that and a logit's rank key KEY times that: all must fit int32.
        limit = INPUT_SCALE
        for name, w in self.weights.items():
            fan_in = w[0].size
            factor = KEY if name == self.names[-1] else 2
            if factor * fan_in * limit >= INT32_LIMIT:
                raise MinisenseError(f"layer {name}'s sums could reach {fan_in * limit} (fan-in "
                                     f"{fan_in} x limit {limit}), too large for int32 delta "
                                     "evaluation; lower the previous layer's threshold")
            limit = self.thresholds.get(name, 0)
            if name in self.thresholds and limit < 1:
                raise MinisenseError(f"threshold {limit} of layer {name} must be >= 1")
        images, labels = check_scored_set(net, images, labels, margin_clip)
        self.margin_clip = int(margin_clip)
        self.count, self.num_classes = len(images), net.num_classes
        self._label_list = labels.astype(np.int64)

        # Geometry. Layer 1: pooled hp1 x wp1 (pool q1); its input, the image padded by p1, is
        # stored as q1*q1 phases of hu x wu. Layer 2: pooled hp2 x wp2 (pool q2); its input, h1
        # padded by p2, as q2*q2 phases of hh x wh. Each phase plane has enough rows and columns
        # for the largest shift a tap makes, (q-1 + k-1) // q, zero beyond the padded input.
        h, w = net.input_shape
        q1, q2 = self._q1, self._q2
        p1, k1, p2, k2 = conv1.padding, conv1.kernel, conv2.padding, conv2.kernel
        hp1, wp1 = (h + 2 * p1 - k1 + 1) // q1, (w + 2 * p1 - k1 + 1) // q1
        hp2, wp2 = (hp1 + 2 * p2 - k2 + 1) // q2, (wp1 + 2 * p2 - k2 + 1) // q2
        hu, wu = (max(-(-(n + 2 * p1) // q1), m + (q1 + k1 - 2) // q1) for n, m in ((h, hp1),
                                                                                    (w, wp1)))
        hh, wh = (max(-(-(n + 2 * p2) // q2), m + (q2 + k2 - 2) // q2) for n, m in ((hp1, hp2),
                                                                                    (wp1, wp2)))
        c1, c2 = conv1.weight.shape[0], conv2.weight.shape[0]
        self._off2 = p2
        blocks = -(-self.count // LANES)

        self._phases = (p1, hu, wu)
        self._u, self._labels = self._blocked_images(images, labels)
        self._z1 = np.zeros((blocks, c1, q1 * q1, hp1, wp1 * LANES), np.int16)
        self._h1 = np.zeros((blocks, c1, q2 * q2, hh, wh * LANES), np.int32)
        self._z2 = np.zeros((blocks, c2, q2 * q2, hp2, wp2 * LANES), np.int32)
        self._h2 = np.zeros((blocks, c2 * hp2 * wp2, LANES), np.int32)
        self._h2v = self._h2.reshape(blocks, c2, hp2, wp2 * LANES)        # the same memory
        self._hidden = len(fcs) == 2
        units = fcs[0].weight.shape[0] if self._hidden else 1
        self._z3 = np.zeros((blocks if self._hidden else 1, units, LANES), np.int32)
        self._h3 = np.zeros(self._z3.shape, np.int32)
        self._logits = np.zeros((blocks, self.num_classes, LANES), np.int32)
        self._columns = {name: fc_columns(self.weights[name]) for name in self.names[2:]}
        self._conv2_taps = conv_taps(self.weights[self.names[1]])
        self.refresh()

    def _blocked_images(self, images, labels) -> tuple[np.ndarray, np.ndarray]:
        """The images as layer 1 reads them, (blocks, q1*q1, hu, wu*LANES) int16: padded by p1,
        stored as q1*q1 phase planes of hu x wu; and the labels (blocks, LANES), padding -1."""
        (p1, hu, wu), q1 = self._phases, self._q1
        blocks = -(-len(images) // LANES)

        def to_blocks(a):                   # (n, ...) -> (blocks, ..., LANES), padded with 0
            padded = np.zeros((blocks * LANES,) + a.shape[1:], dtype=a.dtype)
            padded[:len(a)] = a
            return np.ascontiguousarray(np.moveaxis(padded.reshape(blocks, LANES, *a.shape[1:]),
                                                    1, -1))

        padded = np.pad(images, ((0, 0), (p1, p1), (p1, p1)))
        phases = np.zeros((len(images), q1 * q1, hu, wu), np.int16)
        for ry in range(q1):
            for rx in range(q1):
                part = padded[:, ry::q1, rx::q1][:, :hu, :wu]
                phases[:, ry * q1 + rx, :part.shape[1], :part.shape[2]] = part
        return (to_blocks(phases).reshape(blocks, q1 * q1, hu, wu * LANES),
                to_blocks(labels.astype(np.int32) + 1) - 1)               # padding lanes: -1

    def set_images(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Score on other images, as many as before (a redraw of shifted fitness images): the
        cache is recomputed in place, exactly what a new evaluator on them would hold, without
        allocating its gigabytes again."""
        images, labels = check_scored_set(self._template, images, labels, self.margin_clip)
        if len(images) != self.count:
            raise MinisenseError(f"set_images needs {self.count} images, as before; got "
                                 f"{len(images)}: make a new evaluator for another count")
        self._u[...], self._labels[...] = self._blocked_images(images, labels)
        self._label_list = labels.astype(np.int64)
        self.refresh()

    # -- the cache ---------------------------------------------------------------------------
    def cache(self) -> dict[str, np.ndarray]:
        """The cached integer arrays, name -> (blocks, ..., LANES) (views, for tests and debug)."""
        arrays = {"z1": self._z1, "h1": self._h1, "z2": self._z2, "h2": self._h2,
                  "logits": self._logits}
        if self._hidden:
            arrays.update(z3=self._z3, h3=self._h3)
        return arrays

    @property
    def cache_bytes(self) -> int:
        return int(sum(a.nbytes for a in self.cache().values()) + self._u.nbytes
                   + self._labels.nbytes)

    def _tail(self) -> Tail:
        """What follows the fc layer after conv 2 (``Tail``: car fc1's cache and fc2)."""
        names = self.names
        if self._hidden:
            return Tail(hidden=True, z3=self._z3, h3=self._h3,
                        t3=np.int32(self.thresholds[names[2]]), out_columns=self._columns[names[3]])
        return Tail(hidden=False, z3=self._z3, h3=self._h3, t3=np.int32(1),
                    out_columns=fc_columns(np.zeros((1, 1), np.int8)))

    def _next(self) -> dict:
        """The fc layer after conv 2, as kernel arguments: its columns and number of units."""
        return {"next_columns": self._columns[self.names[2]],
                "next_units": self.weights[self.names[2]].shape[0]}

    def refresh(self) -> None:
        """Recompute every cached integer from ``weights`` with a full forward pass."""
        self._score = None
        names = self.names
        _over_blocks(_forward_blocks, self._u.shape[0], u=self._u, w1=self.weights[names[0]],
                     w2=self.weights[names[1]], **self._next(), tail=self._tail(),
                     t1=np.int32(self.thresholds[names[0]]),
                     t2=np.int32(self.thresholds[names[1]]), q1=self._q1, q2=self._q2,
                     off2=self._off2, z1=self._z1, h1=self._h1, z2=self._z2, h2v=self._h2v,
                     h2=self._h2, logits=self._logits)

    def _unblock(self, blocked: np.ndarray) -> np.ndarray:
        return blocked.transpose(0, 2, 1).reshape(-1, self.num_classes)[:self.count].astype(
            np.int64)

    def logits(self) -> np.ndarray:
        """The current network's integer logits Z, (n, classes) int64."""
        return self._unblock(self._logits)

    @property
    def blocks(self) -> int:
        """The number of image blocks (``LANES`` images each, the last padded)."""
        return self._u.shape[0]

    def current_score(self, blocks: list | None = None) -> tuple[int, int]:
        """(correct, margin) of the current network, as ``score`` counts them, on all images or
        on the (first, last) block ranges ``blocks``."""
        if blocks is None:
            if self._score is None:                 # kept until the network moves
                self._score = score_logits(self.logits(), self._label_list, self.margin_clip)
            return self._score
        index = np.concatenate([np.arange(first, last) for first, last in blocks])
        logits = self._logits[index].transpose(0, 2, 1).reshape(-1, self.num_classes)
        labels = self._labels[index].reshape(-1)
        real = labels >= 0
        return score_logits(logits[real], labels[real].astype(np.int64), self.margin_clip)

    # -- neighbours --------------------------------------------------------------------------
    def _run(self, layer, src, dst, commit=False, want_logits=False, blocks=None):
        """Dispatch K swaps of ``layer`` to its kernel on all blocks or the (first, last) ranges
        ``blocks``; returns (correct, margin, logits|None)."""
        src, dst = check_swaps(self.weights, layer, src, dst)
        names, w = self.names, self.weights[layer]
        sign = w.reshape(-1)[src].astype(np.int64)
        out = np.empty((self._logits.shape[0] if want_logits else 0, self.num_classes, LANES),
                       np.int32)
        t = [np.int32(self.thresholds[n]) for n in names[:2]]
        position = names.index(layer)
        blocks = self.blocks if blocks is None else blocks
        # Shared by every kernel: the swaps' signs, the scoring, and what to do with the result.
        common = dict(sign=sign, labels=self._labels, logits=self._logits,
                      margin_clip=self.margin_clip, commit=commit, out_logits=out)
        if position == 0:
            oa, _, ia, ja = np.unravel_index(src, w.shape)
            ob, _, ib, jb = np.unravel_index(dst, w.shape)
            correct, margin = _over_blocks(
                _first_conv_blocks, blocks, candidates=len(src), u=self._u, z1=self._z1,
                h1=self._h1, z2=self._z2, h2v=self._h2v, t1=t[0], t2=t[1], q1=self._q1,
                q2=self._q2, off2=self._off2, conv2_taps=self._conv2_taps, **self._next(),
                tail=self._tail(), oa=oa, ia=ia, ja=ja, ob=ob, ib=ib, jb=jb, **common)
        elif position == 1:
            oa, ca, ia, ja = np.unravel_index(src, w.shape)
            ob, cb, ib, jb = np.unravel_index(dst, w.shape)
            correct, margin = _over_blocks(
                _inner_conv_blocks, blocks, candidates=len(src), h1=self._h1, z2=self._z2,
                h2v=self._h2v, t2=t[1], q2=self._q2, **self._next(), tail=self._tail(),
                oa=oa, ca=ca, ia=ia, ja=ja, ob=ob, cb=cb, ib=ib, jb=jb, **common)
        else:
            a, i = np.unravel_index(src, w.shape)
            b, j = np.unravel_index(dst, w.shape)
            if position == len(names) - 1:
                correct, margin = _over_blocks(
                    _output_fc_blocks, blocks, candidates=len(src),
                    h=self._h3 if self._hidden else self._h2, a=a, i=i, b=b, j=j, **common)
            else:
                correct, margin = _over_blocks(
                    _hidden_fc_blocks, blocks, candidates=len(src), h2=self._h2, z3=self._z3,
                    h3=self._h3, t3=np.int32(self.thresholds[layer]),
                    w_out=self.weights[names[3]], a=a, i=i, b=b, j=j, **common)
        return correct, margin, (self._unblock(out) if want_logits else None)

    def score(self, layer: str, src: np.ndarray, dst: np.ndarray,
              blocks: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Score K candidate swaps of one layer, each applied alone to the current network.

        src, dst : (K,) int64 flat indices into ``weights[layer]`` (src nonzero, dst zero).
        blocks : None (every image) or a list of (first, last) block ranges: only their images
            count, read in place from the cache (``block_window`` makes a screening slice).
        Returns (correct, margin), (K,) int64: images classified correctly, and the sum of the
        clipped margins Z[y] - max_{k != y} Z[k] (see ``score_logits``). The state is unchanged.
        Sums over disjoint block ranges add up to the score on their union.
        """
        correct, margin, _ = self._run(layer, src, dst, blocks=blocks)
        return correct, margin

    def score_screened(self, layer: str, src: np.ndarray, dst: np.ndarray, screen_blocks: int,
                       confirm: int, start_block: int = 0, rank_by: str = "margin",
                       stages: int = 1):
        """Screened (racing) scores of K candidate swaps: all on a slice, the best on the rest.

        All K are scored on ``screen_blocks`` blocks from ``start_block`` (wrapping around,
        ``block_window``); the ``confirm`` best by that slice's ``rank_by`` ("margin" or
        "accuracy", the other breaking ties, then the lower index) go on to the remaining blocks.
        With ``stages`` > 1 (sequential early rejection) the rest is scored in that many pieces,
        and before each piece a candidate is dropped when it is worse than the current network
        on every image scored so far together (by ``rank_by``): a neighbour that cannot beat the
        incumbent on most of the set rarely beats it on all of it.

        Returns (correct, margin, confirmed): (K,) int64 whole-set scores where ``confirmed`` (K,)
        bool is True, partial scores elsewhere. A confirmed score is exactly the whole-set score
        ``score`` gives (the pieces add up), so the choice of move stays exact.
        """
        window, rest = block_window(start_block, screen_blocks, self.blocks)
        correct, margin = self.score(layer, src, dst, blocks=window)
        keys = (-correct, -margin) if rank_by == "margin" else (-margin, -correct)
        alive = np.sort(np.lexsort(keys)[:confirm])
        src, dst = np.asarray(src), np.asarray(dst)
        if stages > 1:                              # the incumbent's scores so far
            seen = np.array(self.current_score(blocks=window), np.int64)
        primary = 1 if rank_by == "margin" else 0
        for piece in _pieces(rest, stages):
            if stages > 1:
                mine = (correct, margin)[primary][alive]
                alive = alive[mine >= seen[primary]]
                if not len(alive):
                    break
                seen += self.current_score(blocks=piece)
            more = self.score(layer, src[alive], dst[alive], blocks=piece)
            correct[alive] += more[0]
            margin[alive] += more[1]
        confirmed = np.zeros(len(correct), bool)
        confirmed[alive] = True
        return correct, margin, confirmed

    def neighbour_logits(self, layer: str, src: int, dst: int) -> np.ndarray:
        """The integer logits (n, classes) int64 of the neighbour swapping src -> dst in layer."""
        return self._run(layer, [src], [dst], want_logits=True)[2]

    def accept(self, layer: str, src: int, dst: int) -> None:
        """Move to the neighbour: apply the swap to ``weights``, update the cache incrementally."""
        self._run(layer, [src], [dst], commit=True)
        self._score = None
        apply_swap(self.weights[layer], int(src), int(dst))
        if layer in self._columns:
            self._columns[layer] = fc_columns(self.weights[layer])
        if layer == self.names[1]:
            self._conv2_taps = conv_taps(self.weights[layer])

    def network(self) -> Network:
        """A binary ``Network`` with the current weights and thresholds."""
        return self._template.with_ternary(self.weights, self.thresholds)

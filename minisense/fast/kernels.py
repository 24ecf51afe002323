"""Numba kernels of delta evaluation (``minisense.fast.delta``): the hot loops, one per kind of
layer.

Each kernel does for one kind of layer what the functions of ``minisense.textbook.delta`` do
(tested equal, exactly), on blocks of images in polyphase planes. Split from
``minisense.fast.delta`` so the evaluator reads on its own; the layout, the phase trick
and the integer ranges are explained in that module's docstring. Every kernel works on a range of
image blocks ``first..last`` so the evaluator can run chunks on threads (they release the GIL).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

LANES = 64                 # images per block: every kernel's inner loop runs over them
KEY = 16                   # a logit's rank key is KEY * Z[k] + (KEY-1-k): ties go to the lower k
KEY_BITS = 4               # log2(KEY)
NO_KEY = -2 ** 31          # below every key
INT32_LIMIT = 2 ** 31


# ----------------------------------------------------------------------------------------------
# The grouped arguments of the kernels (Numba passes named tuples; fields are read by name).
# ----------------------------------------------------------------------------------------------

class FcColumns(NamedTuple):
    """A fc weight W (out, in) as its nonzeros column by column (``delta.fc_columns``): column
    f's nonzeros are the units rows[start[f]:start[f+1]], weights values[start[f]:start[f+1]]."""

    start: np.ndarray        # (in + 1,) int64
    rows: np.ndarray         # (nnz,) int64
    values: np.ndarray       # (nnz,) int32, +1 or -1


class ConvTaps(NamedTuple):
    """A conv weight (out, in, k, k) as its nonzero taps grouped by (out, in) channel
    (``delta.conv_taps``): the taps of channels (o, c) are entries start[o*in + c] to
    start[o*in + c + 1] of i, j (kernel row, column) and w (+1 or -1)."""

    start: np.ndarray        # (out * in + 1,) int64
    i: np.ndarray            # (taps,) int64
    j: np.ndarray            # (taps,) int64
    w: np.ndarray            # (taps,) int64


class Tail(NamedTuple):
    """What follows the fc layer after conv 2. With a hidden fc layer (car fc1): its cached sums
    z3 and activations h3, (blocks, units, LANES) int32, its threshold t3 and the output layer's
    columns. Without (mnist): hidden False and placeholders."""

    hidden: bool
    z3: np.ndarray
    h3: np.ndarray
    t3: np.int32
    out_columns: FcColumns


# ----------------------------------------------------------------------------------------------
# Building blocks. A plane is (rows, cols * LANES) int; a phase stack is (q*q, rows, cols*LANES).
# ----------------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _tap_source(t, i, j, q):
    """(input phase, row offset, col offset) that window offset t reads through tap (i, j)."""
    dy, dx = t // q, t % q
    return ((dy + i) % q) * q + (dx + j) % q, (dy + i) // q, (dx + j) // q


@njit(cache=True)
def _add_tap(acc, x, oy, ox, w):
    """acc (R, C*LANES) += w * x[oy + r, ox*LANES + m]: one conv tap read from one phase plane."""
    u64 = np.uint64
    oy, off, width = u64(oy), u64(ox * LANES), acc.shape[1]
    for r in range(acc.shape[0]):
        ur = u64(r)
        if w == 1:
            for m in range(width):
                acc[ur, u64(m)] = np.int32(acc[ur, u64(m)] + x[ur + oy, u64(m) + off])
        elif w == -1:
            for m in range(width):
                acc[ur, u64(m)] = np.int32(acc[ur, u64(m)] - x[ur + oy, u64(m) + off])
        else:
            for m in range(width):
                acc[ur, u64(m)] = np.int32(acc[ur, u64(m)] + w * x[ur + oy, u64(m) + off])


@njit(cache=True)
def _max_into(mx, z, first):
    """mx = z if first else max(mx, z), planes of the same shape: pooling over window offsets."""
    for r in range(mx.shape[0]):
        for m in range(mx.shape[1]):
            mx[r, m] = z[r, m] if first else max(mx[r, m], np.int32(z[r, m]))


@njit(cache=True)
def _swap_pool(z, xa, ia, ja, wa, xb, ib, jb, wb, q, mx, commit):
    """Pooled pre-activations of one output channel whose weights moved.

    The channel's window-offset planes z (q*q, Hp, Wp*LANES) gain wa * (input under tap ia, ja)
    + wb * (input under tap ib, jb); xa, xb are phase stacks of the layer's input, either weight
    may be 0. Writes mx (Hp, Wp*LANES), the max over the offsets; ``commit`` stores the new z.
    """
    u64 = np.uint64
    if wa == 0:
        xa, ia, ja, wa, wb = xb, ib, jb, wb, 0
    rows, width = mx.shape
    for t in range(q * q):
        sa, oya, oxa = _tap_source(t, ia, ja, q)
        sb, oyb, oxb = _tap_source(t, ib, jb, q)
        zt, pa, pb = z[t], xa[sa], xb[sb]
        oya, offa, oyb, offb = u64(oya), u64(oxa * LANES), u64(oyb), u64(oxb * LANES)
        for r in range(rows):
            ur = u64(r)
            if wb == 0 and wa == 1:
                for m in range(width):
                    um = u64(m)
                    v = np.int32(zt[ur, um] + pa[ur + oya, um + offa])
                    mx[ur, um] = v if t == 0 else max(mx[ur, um], v)
            elif wb == 0 and wa == -1:
                for m in range(width):
                    um = u64(m)
                    v = np.int32(zt[ur, um] - pa[ur + oya, um + offa])
                    mx[ur, um] = v if t == 0 else max(mx[ur, um], v)
            else:
                for m in range(width):
                    um = u64(m)
                    v = np.int32(zt[ur, um] + wa * pa[ur + oya, um + offa]
                                 + wb * pb[ur + oyb, um + offb])
                    mx[ur, um] = v if t == 0 else max(mx[ur, um], v)
            if commit:
                for m in range(width):
                    um = u64(m)
                    zt[ur, um] += wa * pa[ur + oya, um + offa] + wb * pb[ur + oyb, um + offb]


@njit(cache=True, inline="always")
def _push_column(columns, f, dh, base, acc, touched):
    """A changed input entry f with deltas dh[base:base+LANES] through a fc layer:
    acc[r] += W[r, f] * delta for every unit r it connects to (``columns``: ``FcColumns``)."""
    start, rows, values = columns.start, columns.rows, columns.values
    for p in range(start[f], start[f + 1]):
        r = rows[p]
        touched[r] = True
        if values[p] > 0:                                 # ternary: the weight is +1 or -1
            for n in range(LANES):
                acc[r, n] = np.int32(acc[r, n] + dh[base + n])
        else:
            for n in range(LANES):
                acc[r, n] = np.int32(acc[r, n] - dh[base + n])


@njit(cache=True)
def _clip_push(mx, t, h, dh, columns, f0, acc, touched, commit):
    """Layer 2's pooled sums mx (Hp, Wp*LANES) -> clip -> H2 changes dh against the cached plane
    h; every window (fc input f0 + py*Wp + px) that changed for any image is pushed through
    the next fc layer (its ``columns``) into acc. Returns whether any changed; ``commit``
    stores the new h."""
    changed = False
    cols = mx.shape[1] // LANES
    for py in range(mx.shape[0]):
        for px in range(cols):
            base = px * LANES
            anyd = np.int32(0)
            for n in range(LANES):
                d = np.int32(min(max(mx[py, base + n], -t), t) - h[py, base + n])
                dh[py, base + n] = d
                anyd |= d
            if anyd != 0:
                changed = True
                _push_column(columns, f0 + py * cols + px, dh[py], base, acc, touched)
                if commit:
                    for n in range(LANES):
                        h[py, base + n] += dh[py, base + n]
    return changed


@njit(cache=True)
def _clip_to_phases(mx, t, h, off, q, dh, rows, commit):
    """Layer 1's pooled sums mx (Hp, Wp*LANES) -> clip -> changes against the cached h1 channel
    h, a phase stack of the padded plane (position (py, px) sits at (py+off, px+off)). Writes dh
    in h's layout and rows[s, a] = whether phase row (s, a) changed; returns whether any did."""
    rows[:] = False
    changed = False
    for py in range(mx.shape[0]):
        ry, a = (py + off) % q, (py + off) // q
        for px in range(mx.shape[1] // LANES):
            s, b = ry * q + (px + off) % q, ((px + off) // q) * LANES
            anyd = np.int32(0)
            for n in range(LANES):
                d = np.int32(min(max(mx[py, px * LANES + n], -t), t) - h[s, a, b + n])
                dh[s, a, b + n] = d
                anyd |= d
            if anyd != 0:
                rows[s, a] = True
                changed = True
                if commit:
                    for n in range(LANES):
                        h[s, a, b + n] += dh[s, a, b + n]
    return changed


@njit(cache=True)
def _tally(z, dz, labels, margin_clip, keys):
    """Score one block whose logits are z + dz, (C, LANES) int32 each.

    Returns (correct, margin): images whose argmax (first index on ties) is their label, and the
    sum of clip(Z[y] - max_{k != y} Z[k], -margin_clip, margin_clip). ``keys`` is (2, LANES)
    scratch. Keys make "first index on ties" a plain comparison: k beats y iff key_k > key_y.
    """
    keyy, best = keys[0], keys[1]
    for n in range(LANES):
        keyy[n] = NO_KEY
        best[n] = NO_KEY
    for k in range(z.shape[0]):
        tie = np.int32(KEY - 1 - k)
        kk = np.int32(k)
        for n in range(LANES):
            key = np.int32(np.int32(z[k, n] + dz[k, n]) * KEY + tie)
            if labels[n] == kk:
                keyy[n] = key
            else:
                best[n] = max(best[n], key)
    correct, margin = 0, 0
    for n in range(LANES):
        if labels[n] >= 0:
            correct += keyy[n] > best[n]
            m = (keyy[n] >> KEY_BITS) - (best[n] >> KEY_BITS)
            margin += min(max(m, -margin_clip), margin_clip)
    return correct, margin


@njit(cache=True)
def _finish(blk, acc, touched, tail, dlog, dh, marks, commit):
    """Changes of the layer after conv 2 -> changes of the logits.

    ``tail`` is a ``Tail``. Without a hidden fc layer (mnist) acc already holds the logit
    changes. With one (car fc1), acc holds its pre-activation changes: clip them and push the
    units that changed through the output layer into dlog. dh, marks are scratch."""
    hidden, z3, h3, t3, out_columns = tail.hidden, tail.z3, tail.h3, tail.t3, tail.out_columns
    if not hidden:
        return acc
    dlog[:] = 0
    for u in range(acc.shape[0]):
        if not touched[u]:
            continue
        anyd = np.int32(0)
        for n in range(LANES):
            d = np.int32(min(max(np.int32(z3[blk, u, n] + acc[u, n]), -t3), t3) - h3[blk, u, n])
            dh[n] = d
            anyd |= d
        if commit:
            for n in range(LANES):
                z3[blk, u, n] += acc[u, n]
                h3[blk, u, n] += dh[n]
        if anyd != 0:
            _push_column(out_columns, u, dh, 0, dlog, marks)
    return dlog


@njit(cache=True)
def _emit(blk, kk, z, dlog, labels, margin_clip, keys, correct, margin, commit, out_logits):
    """Add the score of logits z + dlog (block blk) to candidate kk's correct and margin
    totals; optionally return the logits or apply them."""
    c, m = _tally(z, dlog, labels, margin_clip, keys)
    correct[kk] += c
    margin[kk] += m
    if out_logits.shape[0] > 0:
        for k in range(z.shape[0]):
            for n in range(LANES):
                out_logits[blk, k, n] = z[k, n] + dlog[k, n]
    if commit:
        for k in range(z.shape[0]):
            for n in range(LANES):
                z[k, n] += dlog[k, n]


# ----------------------------------------------------------------------------------------------
# The full forward (refresh): the cache from scratch, in the same integers.
# ----------------------------------------------------------------------------------------------

@njit(cache=True)
def _conv_phase(acc, x, w, c, t, q):
    """acc (Hp, Wp*LANES) += window offset t of the convolution of input channel c: x is the
    channel's phase stack, w (out-channel's) kernel (in, k, k)."""
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            if w[c, i, j] != 0:
                s, oy, ox = _tap_source(t, i, j, q)
                _add_tap(acc, x[s], oy, ox, np.int32(w[c, i, j]))


@njit(cache=True, nogil=True)
def _forward_blocks(first, last, u, w1, w2, next_columns, next_units, tail, t1, t2, q1, q2, off2,
                    z1, h1, z2, h2v, h2, logits):
    """H_0 = u, conv/pool/clip twice, fc (and clip, fc): every cached integer of blocks
    first..last-1, from the weights w1, w2 (conv layouts) and the fc layers' columns."""
    hidden, z3, h3, t3, out_columns = tail.hidden, tail.z3, tail.h3, tail.t3, tail.out_columns
    acc1 = np.empty(z1.shape[3:], np.int32)
    mx1 = np.empty(z1.shape[3:], np.int32)
    acc2 = np.empty(z2.shape[3:], np.int32)
    mx2 = np.empty(z2.shape[3:], np.int32)
    for blk in range(first, last):
        for o in range(w1.shape[0]):
            for t in range(q1 * q1):
                acc1[:] = 0
                _conv_phase(acc1, u[blk], w1[o], 0, t, q1)
                _max_into(z1[blk, o, t], acc1, True)                      # a copy
                _max_into(mx1, acc1, t == 0)
            ho = h1[blk, o]
            for py in range(mx1.shape[0]):
                ry, a = (py + off2) % q2, (py + off2) // q2
                for px in range(mx1.shape[1] // LANES):
                    s, b = ry * q2 + (px + off2) % q2, ((px + off2) // q2) * LANES
                    for n in range(LANES):
                        ho[s, a, b + n] = min(max(mx1[py, px * LANES + n], -t1), t1)
        for o in range(w2.shape[0]):
            for t in range(q2 * q2):
                acc2[:] = 0
                for c in range(w2.shape[1]):
                    _conv_phase(acc2, h1[blk, c], w2[o], c, t, q2)
                _max_into(z2[blk, o, t], acc2, True)
                _max_into(mx2, acc2, t == 0)
            for r in range(mx2.shape[0]):
                for m in range(mx2.shape[1]):
                    h2v[blk, o, r, m] = min(max(mx2[r, m], -t2), t2)
        acc = np.zeros((next_units, LANES), np.int32)
        touched = np.zeros(max(next_units, KEY), np.bool_)
        for f in range(h2.shape[1]):
            _push_column(next_columns, f, h2[blk, f], 0, acc, touched)
        if hidden:
            out = np.zeros((logits.shape[1], LANES), np.int32)
            for unit in range(acc.shape[0]):
                for n in range(LANES):
                    z3[blk, unit, n] = acc[unit, n]
                    h3[blk, unit, n] = min(max(acc[unit, n], -t3), t3)
                _push_column(out_columns, unit, h3[blk, unit], 0, out, touched)
            acc = out
        logits[blk] = acc


# ----------------------------------------------------------------------------------------------
# One kernel per kind of layer: it scores K candidate swaps of its layer on blocks first..last-1
# and adds the scores into correct, margin (K,) int64. commit=True (K = 1) applies the swap to
# the cache instead; out_logits (blocks, C, LANES), when not empty, receives the neighbour's
# logits (K = 1). ``_over_blocks`` runs a kernel on all blocks, split among threads; the
# evaluator passes every argument by name.
# ----------------------------------------------------------------------------------------------

@njit(cache=True)
def _sum_taps(mx, z, planes, taps, count, row, commit):
    """mx = max(mx, z + the sum of ``count`` shifted planes), row by row.

    taps[p] = (plane, row offset, column offset * LANES) into planes (P, Hx, Wx*LANES); mx, z
    are (R, C*LANES), row (C*LANES,) scratch. The taps are added four (then two, one) per pass,
    so the partial sums are read and written once per four taps. ``commit`` stores the new z.
    """
    u64 = np.uint64
    for r in range(mx.shape[0]):
        ur = u64(r)
        for m in range(row.shape[0]):
            row[m] = z[r, m]
        g = 0
        while g < count:
            p0, y0, f0 = u64(taps[g, 0]), ur + u64(taps[g, 1]), u64(taps[g, 2])
            if count - g >= 4:
                p1, y1, f1 = u64(taps[g + 1, 0]), ur + u64(taps[g + 1, 1]), u64(taps[g + 1, 2])
                p2, y2, f2 = u64(taps[g + 2, 0]), ur + u64(taps[g + 2, 1]), u64(taps[g + 2, 2])
                p3, y3, f3 = u64(taps[g + 3, 0]), ur + u64(taps[g + 3, 1]), u64(taps[g + 3, 2])
                for m in range(row.shape[0]):
                    um = u64(m)
                    row[um] = np.int32(row[um] + planes[p0, y0, um + f0]
                                       + planes[p1, y1, um + f1] + planes[p2, y2, um + f2]
                                       + planes[p3, y3, um + f3])
                g += 4
            elif count - g >= 2:
                p1, y1, f1 = u64(taps[g + 1, 0]), ur + u64(taps[g + 1, 1]), u64(taps[g + 1, 2])
                for m in range(row.shape[0]):
                    um = u64(m)
                    row[um] = np.int32(row[um] + planes[p0, y0, um + f0]
                                       + planes[p1, y1, um + f1])
                g += 2
            else:
                for m in range(row.shape[0]):
                    um = u64(m)
                    row[um] = np.int32(row[um] + planes[p0, y0, um + f0])
                g += 1
        for m in range(row.shape[0]):
            mx[r, m] = max(mx[r, m], row[m])
        if commit:
            for m in range(row.shape[0]):
                z[r, m] = row[m]


@njit(cache=True, nogil=True)
def _first_conv_blocks(first, last, u, z1, h1, z2, h2v, labels, logits, t1, t2, q1, q2, off2,
                       conv2_taps, next_columns, next_units, tail, oa, ia, ja, ob, ib, jb, sign,
                       margin_clip, commit, out_logits, correct, margin):
    """Swaps in layer 1 (input: the image). Output channel oa loses the weight at tap (ia, ja),
    channel ob gains it at (ib, jb); their changed H1 entries go through conv 2, one layer-2
    channel at a time, and the changed H2 entries through the fc layer(s).

    conv2_taps (a ``ConvTaps``) lists layer 2's nonzero taps by (out, in) channel. The H1
    changes of the two channels are kept as phase planes, each also negated, so that every tap
    of conv 2 is a plain add (``_sum_taps``)."""
    tap_start, tap_i, tap_j = conv2_taps.start, conv2_taps.i, conv2_taps.j
    tap_w = conv2_taps.w
    c1, qq, hp2, wp2 = z1.shape[1], q2 * q2, z2.shape[3], z2.shape[4] // LANES
    shifts = h1.shape[3] - hp2 + 1                               # row offsets a tap can have
    # Where each tap reads for each window offset t: (phase, row offset, column offset * LANES).
    reads = np.empty((tap_i.shape[0], qq, 3), np.int64)
    for p in range(tap_i.shape[0]):
        for t in range(qq):
            src, oy, ox = _tap_source(t, tap_i[p], tap_j[p], q2)
            reads[p, t, 0], reads[p, t, 1], reads[p, t, 2] = src, oy, ox * LANES
    most = 0
    for p in range(tap_start.shape[0] - 1):
        most = max(most, tap_start[p + 1] - tap_start[p])
    mx1 = np.empty(z1.shape[3:], np.int32)
    planes = np.zeros((4 * qq,) + h1.shape[3:], np.int32)      # (slot, sign, phase)
    rows1 = np.zeros((2, qq, h1.shape[3]), np.bool_)           # which phase rows changed
    live = np.zeros((2, qq, shifts), np.bool_)                 # ... within a tap's reach
    taps = np.empty((qq, 2 * most, 3), np.int64)
    counts = np.zeros(qq, np.int64)
    row = np.empty(z2.shape[4], np.int32)
    mx2 = np.empty(z2.shape[3:], np.int32)
    dh2 = np.empty(z2.shape[3:], np.int32)
    acc = np.empty((next_units, LANES), np.int32)
    touched = np.zeros(next_units, np.bool_)
    marks = np.zeros(KEY, np.bool_)
    dlog = np.empty((logits.shape[1], LANES), np.int32)
    vec = np.empty((4, LANES), np.int32)
    for blk in range(first, last):
        for kk in range(oa.shape[0]):
            s = np.int32(sign[kk])
            channels = (oa[kk], ob[kk])
            nslots = 1 if oa[kk] == ob[kk] else 2
            changed = False
            for slot in range(nslots):
                o = channels[slot]
                wa = -s if o == oa[kk] else np.int32(0)
                wb = s if o == ob[kk] else np.int32(0)
                _swap_pool(z=z1[blk, o], xa=u[blk], ia=ia[kk], ja=ja[kk], wa=wa, xb=u[blk],
                           ib=ib[kk], jb=jb[kk], wb=wb, q=q1, mx=mx1, commit=commit)
                plus = planes[2 * slot * qq:(2 * slot + 1) * qq]
                changed |= _clip_to_phases(mx=mx1, t=t1, h=h1[blk, o], off=off2, q=q2, dh=plus,
                                           rows=rows1[slot], commit=commit)
                minus = planes[(2 * slot + 1) * qq:(2 * slot + 2) * qq]
                for p in range(qq):
                    for r in range(plus.shape[1]):
                        for m in range(plus.shape[2]):
                            minus[p, r, m] = -plus[p, r, m]
                    for oy in range(shifts):
                        live[slot, p, oy] = False
                        for r in range(hp2):
                            live[slot, p, oy] |= rows1[slot, p, oy + r]
            acc[:] = 0
            touched[:] = False
            for o2 in range(z2.shape[1] if changed else 0):
                hit = False
                for t in range(qq):                    # the taps that read a changed row
                    count = 0
                    for slot in range(nslots):
                        c = channels[slot]
                        for p in range(tap_start[o2 * c1 + c], tap_start[o2 * c1 + c + 1]):
                            src, oy = reads[p, t, 0], reads[p, t, 1]
                            if live[slot, src, oy]:
                                taps[t, count, 0] = (2 * slot + (tap_w[p] < 0)) * qq + src
                                taps[t, count, 1] = oy
                                taps[t, count, 2] = reads[p, t, 2]
                                count += 1
                    hit |= count > 0
                    counts[t] = count
                if not hit:
                    continue
                mx2[:] = NO_KEY
                for t in range(qq):
                    if counts[t] > 0:
                        _sum_taps(mx2, z2[blk, o2, t], planes, taps[t], counts[t], row, commit)
                    else:
                        _max_into(mx2, z2[blk, o2, t], False)
                _clip_push(mx=mx2, t=t2, h=h2v[blk, o2], dh=dh2, columns=next_columns,
                           f0=o2 * hp2 * wp2, acc=acc, touched=touched, commit=commit)
            dl = _finish(blk=blk, acc=acc, touched=touched, tail=tail, dlog=dlog, dh=vec[1],
                         marks=marks, commit=commit)
            _emit(blk=blk, kk=kk, z=logits[blk], dlog=dl, labels=labels[blk],
                  margin_clip=margin_clip, keys=vec[2:], correct=correct, margin=margin,
                  commit=commit, out_logits=out_logits)


@njit(cache=True, nogil=True)
def _inner_conv_blocks(first, last, h1, z2, h2v, labels, logits, t2, q2, next_columns, next_units,
                       tail, oa, ca, ia, ja, ob, cb, ib, jb, sign, margin_clip, commit, out_logits,
                       correct, margin):
    """Swaps in layer 2: channel oa loses w * h1[ca] under tap (ia, ja), channel ob gains it
    under (cb, ib, jb); the changed H2 entries go through the fc layer(s)."""
    hp2, wp2 = z2.shape[3], z2.shape[4] // LANES
    mx2 = np.empty(z2.shape[3:], np.int32)
    dh2 = np.empty(z2.shape[3:], np.int32)
    acc = np.empty((next_units, LANES), np.int32)
    touched = np.zeros(next_units, np.bool_)
    marks = np.zeros(KEY, np.bool_)
    dlog = np.empty((logits.shape[1], LANES), np.int32)
    vec = np.empty((4, LANES), np.int32)
    for blk in range(first, last):
        for kk in range(oa.shape[0]):
            s = np.int32(sign[kk])
            channels = (oa[kk], ob[kk])
            acc[:] = 0
            touched[:] = False
            for slot in range(1 if oa[kk] == ob[kk] else 2):
                o = channels[slot]
                wa = -s if o == oa[kk] else np.int32(0)
                wb = s if o == ob[kk] else np.int32(0)
                _swap_pool(z=z2[blk, o], xa=h1[blk, ca[kk]], ia=ia[kk], ja=ja[kk], wa=wa,
                           xb=h1[blk, cb[kk]], ib=ib[kk], jb=jb[kk], wb=wb, q=q2, mx=mx2,
                           commit=commit)
                _clip_push(mx=mx2, t=t2, h=h2v[blk, o], dh=dh2, columns=next_columns,
                           f0=o * hp2 * wp2, acc=acc, touched=touched, commit=commit)
            dl = _finish(blk=blk, acc=acc, touched=touched, tail=tail, dlog=dlog, dh=vec[1],
                         marks=marks, commit=commit)
            _emit(blk=blk, kk=kk, z=logits[blk], dlog=dl, labels=labels[blk],
                  margin_clip=margin_clip, keys=vec[2:], correct=correct, margin=margin,
                  commit=commit, out_logits=out_logits)


@njit(cache=True, nogil=True)
def _hidden_fc_blocks(first, last, h2, z3, h3, t3, w_out, labels, logits, a, i, b, j, sign,
                      margin_clip, commit, out_logits, correct, margin):
    """Swaps in a hidden fc layer (car fc1): unit a loses w * h2[i], unit b gains w * h2[j]; the
    two clipped units go through the output layer w_out (C, units)."""
    dlog = np.empty((logits.shape[1], LANES), np.int32)
    vec = np.empty((4, LANES), np.int32)
    for blk in range(first, last):
        for kk in range(a.shape[0]):
            s = np.int32(sign[kk])
            aa, bb = a[kk], b[kk]
            for n in range(LANES):
                da = -s * np.int32(h2[blk, i[kk], n])
                db = s * np.int32(h2[blk, j[kk], n])
                za = np.int32(z3[blk, aa, n] + da + (db if aa == bb else 0))
                zb = np.int32(z3[blk, bb, n] + db)
                vec[0, n] = min(max(za, -t3), t3) - h3[blk, aa, n]
                vec[1, n] = 0 if aa == bb else min(max(zb, -t3), t3) - h3[blk, bb, n]
                if commit:
                    z3[blk, aa, n] = za
                    h3[blk, aa, n] += vec[0, n]
                    if aa != bb:
                        z3[blk, bb, n] = zb
                        h3[blk, bb, n] += vec[1, n]
            for k in range(dlog.shape[0]):
                wa, wb = np.int32(w_out[k, aa]), np.int32(w_out[k, bb])
                for n in range(LANES):
                    dlog[k, n] = wa * vec[0, n] + wb * vec[1, n]
            _emit(blk=blk, kk=kk, z=logits[blk], dlog=dlog, labels=labels[blk],
                  margin_clip=margin_clip, keys=vec[2:], correct=correct, margin=margin,
                  commit=commit, out_logits=out_logits)


@njit(cache=True, nogil=True)
def _output_fc_blocks(first, last, h, logits, labels, a, i, b, j, sign, margin_clip, commit,
                      out_logits, correct, margin):
    """Swaps in the output layer: logit a loses w * h[i], logit b gains w * h[j].

    Only two logits move, so each image's three strongest rivals of its label are found once per
    block; a candidate then needs the two moved logits and the first rival that did not move."""
    for blk in range(first, last):
        classes = logits.shape[1]
        z, lab = logits[blk], labels[blk]
        zy = np.empty(LANES, np.int32)
        rival = np.full((3, LANES), NO_KEY, np.int32)        # keys, strongest first
        rclass = np.full((3, LANES), -1, np.int32)
        for n in range(LANES):
            y = max(lab[n], 0)
            zy[n] = z[y, n]
            for k in range(classes):
                if k == y:
                    continue
                key = np.int32(z[k, n] * KEY + (KEY - 1 - k))
                cls = np.int32(k)
                for r in range(3):                           # insert into the top three
                    if key > rival[r, n]:
                        key, rival[r, n] = rival[r, n], key
                        cls, rclass[r, n] = rclass[r, n], cls
        for kk in range(a.shape[0]):
            s = np.int32(sign[kk])
            aa, bb, ii, jj = np.int32(a[kk]), np.int32(b[kk]), i[kk], j[kk]
            same = aa == bb
            hits, total = 0, 0
            for n in range(LANES):
                da = -s * np.int32(h[blk, ii, n])
                db = s * np.int32(h[blk, jj, n])
                za = np.int32(z[aa, n] + da + (db if same else 0))
                zb = za if same else np.int32(z[bb, n] + db)
                y = lab[n]
                zyn = za if aa == y else (zb if bb == y else zy[n])
                ka = np.int32(za * KEY + (KEY - 1 - aa)) if aa != y else np.int32(NO_KEY)
                kb = np.int32(zb * KEY + (KEY - 1 - bb)) if bb != y else np.int32(NO_KEY)
                c0, c1 = rclass[0, n], rclass[1, n]
                r = rival[0, n] if (c0 != aa and c0 != bb) else (
                    rival[1, n] if (c1 != aa and c1 != bb) else rival[2, n])
                r = max(r, max(ka, kb))
                keyy = np.int32(zyn * KEY + (KEY - 1 - y))
                m = min(max(zyn - (r >> KEY_BITS), -margin_clip), margin_clip)
                hits += (keyy > r) if y >= 0 else 0
                total += m if y >= 0 else 0
            correct[kk] += hits
            margin[kk] += total
            if out_logits.shape[0] > 0 or commit:
                for n in range(LANES):
                    da = -s * np.int32(h[blk, ii, n])
                    db = s * np.int32(h[blk, jj, n])
                    if out_logits.shape[0] > 0:
                        for k in range(classes):
                            out_logits[blk, k, n] = z[k, n]
                        out_logits[blk, aa, n] += da
                        out_logits[blk, bb, n] += db
                    if commit:
                        z[aa, n] += da
                        z[bb, n] += db

"""Delta evaluation of bit swaps: score many first neighbours without a full forward pass.

SENSE (Algorithm 2, Section 4.3) and the neighbourhood survey of Section 4.2 evaluate very many
first neighbours of one network: each differs from it by a single bit swap (Section 3.2), one
nonzero weight moved, sign and all, to a zero position of the same layer. The network's integer
arithmetic (``minisense.network``) makes a neighbour's outputs a small, exact correction of the
current network's. For fixed evaluation images we keep the current network's integers::

    z1  pre-pool conv sums of layer 1     h1  = clip(pool(z1), T1)   (zero-padded for layer 2)
    z2  pre-pool conv sums of layer 2     h2  = clip(pool(z2), T2)   (flattened, channel-major)
    z3, h3  the hidden fc layer (car)     logits Z

A swap in layer l changes only the pre-activations of the output channel(s) or unit(s) whose
weights moved: at most two, the one at ``src`` and the one at ``dst``. Their new sums are the old
ones minus w * (input under src) plus w * (input under dst). Only those are pushed through
pooling and clip; an entry of H_l that does not change (its window's winner still clips to the
same value, or it saturates) stops there; the entries that do change are pushed through the next
layer as "a list of changed entries with their deltas", and so on to the logits. A swap in the
output layer changes two logits by one product each.

Layout: images are processed in blocks of ``LANES`` and every cached array keeps the image index
last, ``(block, ..., LANES)``, so each kernel's innermost loop runs over the 32 images of a block
in SIMD, and a block's integers stay in cache while all K candidate swaps are scored on it
(``prange`` over blocks, the candidates inside). Padding lanes hold blank images labelled -1 and
are never counted. Everything is int16/int32 integer arithmetic (wrapped in np.int32 so Numba does
not widen it to int64), so the scores are exact and the same for any thread count.
``score_full_forward`` is the slow, obvious twin used as the oracle: apply the swap, run
``network.exact_logits``.
"""

from __future__ import annotations

import copy

import numpy as np
from numba import njit, prange

from minisense.errors import MinisenseError
from minisense.layers import Conv2d, Flatten, HardTanh, Linear, MaxPool2d
from minisense.network import Network, exact_logits

LANES = 32                 # images per block: the SIMD width of every kernel's inner loop
KEY = 16                   # a logit's rank key is KEY * Z[k] + (KEY - 1 - k): ties go to the lower k
KEY_BITS = 4               # log2(KEY)
NO_KEY = -2 ** 31          # below every key
MAX_THRESHOLD = 2 ** 15 - 1  # activations are int16; with fan-ins <= 1568 every sum fits int32


# ----------------------------------------------------------------------------------------------
# Small building blocks. Shapes are per block: a "plane" is (rows, cols, LANES).
# ----------------------------------------------------------------------------------------------

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
def _pool_clip(z, q, t, h, off):
    """Forward: h[off+py, off+px] = clip(max of z's q x q window (py, px), -t, t)."""
    for py in range(h.shape[0] - 2 * off):
        for px in range(h.shape[1] - 2 * off):
            for n in range(LANES):
                m = z[py * q, px * q, n]
                for dy in range(q):
                    for dx in range(q):
                        m = max(m, z[py * q + dy, px * q + dx, n])
                h[off + py, off + px, n] = min(max(np.int32(m), -t), t)


@njit(cache=True)
def _pool_swap(z, xa, ia, ja, wa, xb, ib, jb, wb, q, t, h, off, dh, win, mx, commit):
    """One output channel of a swapped conv layer, through pooling and clip.

    Its pre-pool sums become z + wa * xa[y+ia, x+ja] + wb * xb[y+ib, x+jb] (the weight leaving
    tap a, the weight arriving at tap b; either may be 0). z (Hq, Wq, LANES) is the channel's
    cached plane, xa/xb the layer's zero-padded input planes, h the cached output plane read at
    [off+py, off+px]. Writes dh (same geometry as h) = new H - old H and win[py, px] = whether any
    image changed there; returns whether any did. ``commit`` also writes z and h; mx is scratch.
    """
    if wa == 0:
        xa, ia, ja, wa, wb = xb, ib, jb, wb, 0
    changed = False
    for py in range(win.shape[0]):
        for px in range(win.shape[1]):
            for n in range(LANES):
                mx[n] = NO_KEY
            for dy in range(q):
                y = py * q + dy
                for dx in range(q):
                    x = px * q + dx
                    if wb == 0:
                        for n in range(LANES):
                            v = np.int32(z[y, x, n] + wa * xa[y + ia, x + ja, n])
                            mx[n] = max(mx[n], v)
                    else:
                        for n in range(LANES):
                            v = np.int32(z[y, x, n] + wa * xa[y + ia, x + ja, n]
                                         + wb * xb[y + ib, x + jb, n])
                            mx[n] = max(mx[n], v)
                    if commit:
                        for n in range(LANES):
                            z[y, x, n] = (z[y, x, n] + wa * xa[y + ia, x + ja, n]
                                          + wb * xb[y + ib, x + jb, n])
            anyd = np.int32(0)
            for n in range(LANES):
                d = np.int32(min(max(mx[n], -t), t) - h[off + py, off + px, n])
                dh[off + py, off + px, n] = d
                anyd |= d
            win[py, px] = anyd != 0
            if anyd != 0:
                changed = True
                if commit:
                    for n in range(LANES):
                        h[off + py, off + px, n] += dh[off + py, off + px, n]
    return changed


@njit(cache=True)
def _pool_add(z, dz, rows, q, t, h, dh, win, mx, commit):
    """Like _pool_swap for a channel whose pre-pool sums gained the plane dz (rows[y] says whether
    row y of dz was written; unwritten rows count as 0). h, dh are unpadded (Hp, Wp, LANES)."""
    changed = False
    for py in range(win.shape[0]):
        touched = False
        for dy in range(q):
            touched |= rows[py * q + dy]
        if not touched:
            for px in range(win.shape[1]):
                win[py, px] = False
            continue
        for px in range(win.shape[1]):
            for n in range(LANES):
                mx[n] = NO_KEY
            for dy in range(q):
                y = py * q + dy
                for dx in range(q):
                    x = px * q + dx
                    if rows[y]:
                        for n in range(LANES):
                            mx[n] = max(mx[n], np.int32(z[y, x, n] + dz[y, x, n]))
                        if commit:
                            for n in range(LANES):
                                z[y, x, n] += dz[y, x, n]
                    else:
                        for n in range(LANES):
                            mx[n] = max(mx[n], np.int32(z[y, x, n]))
            anyd = np.int32(0)
            for n in range(LANES):
                d = np.int32(min(max(mx[n], -t), t) - h[py, px, n])
                dh[py, px, n] = d
                anyd |= d
            win[py, px] = anyd != 0
            if anyd != 0:
                changed = True
                if commit:
                    for n in range(LANES):
                        h[py, px, n] += dh[py, px, n]
    return changed


@njit(cache=True)
def _push_column(w, f, dh, acc, touched):
    """A changed input entry f (deltas dh, (LANES,)) through a fc layer: acc[r] += w[r, f] * dh."""
    for r in range(w.shape[0]):
        wr = np.int32(w[r, f])
        if wr != 0:
            touched[r] = True
            for n in range(LANES):
                acc[r, n] = np.int32(acc[r, n] + wr * dh[n])


@njit(cache=True)
def _finish(blk, acc, touched, tail, dlog, dh, commit):
    """Changes of the layer after conv 2 -> changes of the logits.

    tail = (hidden, z3, h3, t3, w_out). Without a hidden fc layer (mnist) acc already holds the
    logit changes. With one (car fc1), acc holds its pre-activation changes: clip them and push
    the units that changed through w_out into dlog."""
    hidden, z3, h3, t3, w_out = tail
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
            _push_column(w_out, u, dh, dlog, touched)
    return dlog


@njit(cache=True)
def _emit(blk, kk, z, dlog, labels, margin_clip, keys, correct, margin, commit, out_logits):
    """Score logits z + dlog of block blk for candidate kk; optionally return or apply them."""
    c, m = _tally(z, dlog, labels, margin_clip, keys)
    correct[blk, kk] = c
    margin[blk, kk] = m
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
def _conv_accumulate(acc, x, w, c):
    """acc (Ho, Wo, LANES) += conv of input plane x (padded) with kernel w[:, :] of channel c."""
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            wij = np.int32(w[i, j])
            if wij == 0:
                continue
            for y in range(acc.shape[0]):
                for x_ in range(acc.shape[1]):
                    for n in range(LANES):
                        acc[y, x_, n] = np.int32(acc[y, x_, n] + wij * x[c][y + i, x_ + j, n])


@njit(cache=True, parallel=True)
def _forward_kernel(u, w1, w2, w_next, tail, t1, t2, q1, q2, z1, h1, z2, h2v, h2, logits):
    """H_0 = u, conv/pool/clip twice, fc (and clip, fc): every cached integer of every block."""
    hidden, z3, h3, t3, w_out = tail
    off = (h1.shape[3] - z1.shape[3] // q1) // 2          # layer 2's zero padding
    for blk in prange(u.shape[0]):
        plane1 = np.empty(z1.shape[2:], np.int32)
        for o in range(w1.shape[0]):
            plane1[:] = 0
            _conv_accumulate(plane1, u[blk:blk + 1], w1[o, 0], 0)
            z1[blk, o] = plane1
            _pool_clip(z1[blk, o], q1, t1, h1[blk, o], off)
        plane2 = np.empty(z2.shape[2:], np.int32)
        for o in range(w2.shape[0]):
            plane2[:] = 0
            for c in range(w2.shape[1]):
                _conv_accumulate(plane2, h1[blk], w2[o, c], c)
            z2[blk, o] = plane2
            _pool_clip(z2[blk, o], q2, t2, h2v[blk, o], 0)
        acc = np.zeros((w_next.shape[0], LANES), np.int32)
        touched = np.zeros(w_next.shape[0], np.bool_)
        for f in range(w_next.shape[1]):
            _push_column(w_next, f, h2[blk, f], acc, touched)
        if hidden:
            out = np.zeros((w_out.shape[0], LANES), np.int32)
            for unit in range(acc.shape[0]):
                for n in range(LANES):
                    z3[blk, unit, n] = acc[unit, n]
                    h3[blk, unit, n] = min(max(acc[unit, n], -t3), t3)
                _push_column(w_out, unit, h3[blk, unit], out, touched)
            acc = out
        logits[blk] = acc


# ----------------------------------------------------------------------------------------------
# One kernel per kind of layer. Each scores K candidate swaps of its layer on every block:
# correct, margin (blocks, K) int64. commit=True (K = 1) applies the swap to the cache instead;
# out_logits (blocks, C, LANES), when not empty, receives the neighbour's logits (K = 1).
# ----------------------------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def _first_conv_kernel(u, z1, h1, z2, h2v, labels, logits, t1, t2, q1, q2, w2, w_next, tail,
                       oa, ia, ja, ob, ib, jb, sign, margin_clip, commit, out_logits):
    """Swaps in layer 1 (input: the image). Output channels oa (loses the weight at tap ia, ja)
    and ob (gains it at ib, jb) change; their changed H1 entries go through conv 2 channel by
    channel, the changed H2 entries through the fc layer(s)."""
    nblocks, kcount = u.shape[0], oa.shape[0]
    off = (h1.shape[3] - z1.shape[3] // q1) // 2
    hq2, wq2 = z2.shape[2], z2.shape[3]
    k2 = w2.shape[2]
    correct = np.zeros((nblocks, kcount), np.int64)
    margin = np.zeros((nblocks, kcount), np.int64)
    for blk in prange(nblocks):
        dh1 = np.zeros((2,) + h1.shape[2:], np.int32)     # deltas of the two channels, padded
        win1 = np.zeros((2, z1.shape[2] // q1, z1.shape[3] // q1), np.bool_)
        rows1 = np.zeros((2, h1.shape[2]), np.bool_)
        dz2 = np.empty(z2.shape[2:], np.int32)
        rows2 = np.zeros(hq2, np.bool_)
        dh2 = np.empty(h2v.shape[2:], np.int32)
        win2 = np.zeros(h2v.shape[2:4], np.bool_)
        acc = np.empty((w_next.shape[0], LANES), np.int32)
        touched = np.zeros(w_next.shape[0], np.bool_)
        dlog = np.empty((logits.shape[1], LANES), np.int32)
        vec = np.empty((4, LANES), np.int32)
        for kk in range(kcount):
            s = np.int32(sign[kk])
            channels = (oa[kk], ob[kk])
            nslots = 1 if oa[kk] == ob[kk] else 2
            changed = False
            for slot in range(nslots):
                o = channels[slot]
                wa = -s if o == oa[kk] else np.int32(0)
                wb = s if o == ob[kk] else np.int32(0)
                changed |= _pool_swap(z1[blk, o], u[blk], ia[kk], ja[kk], wa, u[blk], ib[kk],
                                      jb[kk], wb, q1, t1, h1[blk, o], off, dh1[slot],
                                      win1[slot], vec[0], commit)
                for py in range(win1.shape[1]):
                    r = False
                    for px in range(win1.shape[2]):
                        r |= win1[slot, py, px]
                    rows1[slot, off + py] = r
            acc[:] = 0
            touched[:] = False
            if changed:
                for o2 in range(w2.shape[0]):
                    rows2[:] = False
                    for slot in range(nslots):
                        c = channels[slot]
                        for i in range(k2):
                            for j in range(k2):
                                w = w2[o2, c, i, j]
                                if w == 0:
                                    continue
                                for y in range(hq2):
                                    if not rows1[slot, y + i]:
                                        continue
                                    if not rows2[y]:
                                        rows2[y] = True
                                        dz2[y] = 0
                                    src = dh1[slot, y + i]
                                    if w > 0:
                                        for x in range(wq2):
                                            for n in range(LANES):
                                                dz2[y, x, n] += src[x + j, n]
                                    else:
                                        for x in range(wq2):
                                            for n in range(LANES):
                                                dz2[y, x, n] -= src[x + j, n]
                    if _pool_add(z2[blk, o2], dz2, rows2, q2, t2, h2v[blk, o2], dh2, win2,
                                 vec[0], commit):
                        for py in range(win2.shape[0]):
                            for px in range(win2.shape[1]):
                                if win2[py, px]:
                                    f = (o2 * win2.shape[0] + py) * win2.shape[1] + px
                                    _push_column(w_next, f, dh2[py, px], acc, touched)
            dl = _finish(blk, acc, touched, tail, dlog, vec[1], commit)
            _emit(blk, kk, logits[blk], dl, labels[blk], margin_clip, vec[2:], correct, margin,
                  commit, out_logits)
    return correct, margin


@njit(cache=True, parallel=True)
def _inner_conv_kernel(h1, z2, h2v, labels, logits, t2, q2, w_next, tail,
                       oa, ca, ia, ja, ob, cb, ib, jb, sign, margin_clip, commit, out_logits):
    """Swaps in layer 2: channel oa loses w * h1[ca] under tap (ia, ja), channel ob gains it
    under (cb, ib, jb); the changed H2 entries go through the fc layer(s)."""
    nblocks, kcount = h1.shape[0], oa.shape[0]
    correct = np.zeros((nblocks, kcount), np.int64)
    margin = np.zeros((nblocks, kcount), np.int64)
    for blk in prange(nblocks):
        dh2 = np.empty(h2v.shape[2:], np.int32)
        win2 = np.zeros(h2v.shape[2:4], np.bool_)
        acc = np.empty((w_next.shape[0], LANES), np.int32)
        touched = np.zeros(w_next.shape[0], np.bool_)
        dlog = np.empty((logits.shape[1], LANES), np.int32)
        vec = np.empty((4, LANES), np.int32)
        for kk in range(kcount):
            s = np.int32(sign[kk])
            channels = (oa[kk], ob[kk])
            acc[:] = 0
            touched[:] = False
            for slot in range(1 if oa[kk] == ob[kk] else 2):
                o = channels[slot]
                wa = -s if o == oa[kk] else np.int32(0)
                wb = s if o == ob[kk] else np.int32(0)
                if _pool_swap(z2[blk, o], h1[blk, ca[kk]], ia[kk], ja[kk], wa, h1[blk, cb[kk]],
                              ib[kk], jb[kk], wb, q2, t2, h2v[blk, o], 0, dh2, win2, vec[0],
                              commit):
                    for py in range(win2.shape[0]):
                        for px in range(win2.shape[1]):
                            if win2[py, px]:
                                f = (o * win2.shape[0] + py) * win2.shape[1] + px
                                _push_column(w_next, f, dh2[py, px], acc, touched)
            dl = _finish(blk, acc, touched, tail, dlog, vec[1], commit)
            _emit(blk, kk, logits[blk], dl, labels[blk], margin_clip, vec[2:], correct, margin,
                  commit, out_logits)
    return correct, margin


@njit(cache=True, parallel=True)
def _hidden_fc_kernel(h2, z3, h3, t3, w_out, labels, logits, a, i, b, j, sign, margin_clip,
                      commit, out_logits):
    """Swaps in a hidden fc layer (car fc1): unit a loses w * h2[i], unit b gains w * h2[j]; the
    two clipped units go through w_out."""
    nblocks, kcount = h2.shape[0], a.shape[0]
    correct = np.zeros((nblocks, kcount), np.int64)
    margin = np.zeros((nblocks, kcount), np.int64)
    for blk in prange(nblocks):
        dlog = np.empty((logits.shape[1], LANES), np.int32)
        vec = np.empty((4, LANES), np.int32)
        for kk in range(kcount):
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
            _emit(blk, kk, logits[blk], dlog, labels[blk], margin_clip, vec[2:], correct, margin,
                  commit, out_logits)
    return correct, margin


@njit(cache=True, parallel=True)
def _output_fc_kernel(h, logits, labels, a, i, b, j, sign, margin_clip, commit, out_logits):
    """Swaps in the output layer: logit a loses w * h[i], logit b gains w * h[j].

    Only two logits move, so each image's three strongest rivals of its label are found once per
    block; a candidate then needs the two moved logits and the first rival that did not move."""
    nblocks, kcount, classes = h.shape[0], a.shape[0], logits.shape[1]
    correct = np.zeros((nblocks, kcount), np.int64)
    margin = np.zeros((nblocks, kcount), np.int64)
    for blk in prange(nblocks):
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
        for kk in range(kcount):
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
            correct[blk, kk] = hits
            margin[blk, kk] = total
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
    return correct, margin

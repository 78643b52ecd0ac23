"""Exact path-dependent TreeSHAP for LightGBM boosters, faster than ``pred_contrib``.

The values are the ones LightGBM's own ``booster.predict(X, pred_contrib=True)``
computes (Lundberg et al. 2020, Algorithm 2, with data counts as covers), equal up
to float rounding (tests: max abs difference below 1e-9), but computed the Fast
TreeSHAP v2 way (Yang 2021, arXiv:2109.09847): most of the work is done once per
model instead of once per row.

Why it is exact. For a leaf ``l`` with value ``v`` whose path from the root splits on
the unique features ``P`` (``d = |P|``; a feature split twice on the path counts once),
let ``z_j`` be the share of training rows that follow the path at the splits on ``j``
(product of child count / parent count) and ``o_j`` whether the row ``x`` follows them
all (0 or 1). Path-dependent TreeSHAP takes ``E[f | x_S]`` of that leaf to be
``v * prod_{j in P} (o_j if j in S else z_j)``, so the leaf's Shapley values only depend
on the set ``A = {j : o_j = 1}``. With ``B = P \\ A`` and
``K(T) = sum_{S subset of T} |S|! (d-|S|-1)! / d! * prod_{k in T \\ S} z_k``:

* ``phi_j = v * (1 - z_j) * prod_B z * K(A \\ {j})`` for ``j`` in ``A``;
* ``phi_j = -v * prod_B z * K(A)`` for ``j`` in ``B``.

``K`` is tabulated once per leaf for all ``2^d`` subsets (``d`` at most
``max_table_depth``), so a row costs, per tree, one pass over the split nodes and
``O(d)`` table reads per leaf; rows go in blocks, tree by tree, so a leaf's table
stays in cache for the whole block. Deeper leaves (or beyond the memory cap) use
``K(T) = integral_0^1 (1-t)^(d-1-|T|) prod_{k in T} (t + z_k (1-t)) dt`` (the Shapley
weight is a Beta integral), a degree ``d - 1`` polynomial that ``ceil(d/2)``-point
Gauss-Legendre quadrature integrates exactly: ``O(d^2)`` per row, no table, still
exact. The bias column is the sum of every tree's expected value, summed in
LightGBM's order.

The decision rule reproduces LightGBM's (``tree.h``): values with ``|v| <= 1e-35f``
count as 0 (the predictor's dense-row conversion drops them); numerical splits send
NaN to 0 unless the split's missing type is NaN, and route missing values (zero or
NaN, by missing type) to the default side; categorical splits send NaN and negative
values right and the listed categories left.

The same flattened trees also give raw margins (:meth:`TreeExplainer.margin`),
bit-identical to ``booster.predict(X, raw_score=True)``: LightGBM's ``PredictRaw`` sums
the trees' leaf values from 0.0 in tree order in float64, and so do we, so equality only
needs the same leaf per row and tree. The leaf is found QuickScorer-style (Lucchese et
al., SIGIR 2015) for trees of at most 64 leaves, by a walk for larger ones.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
from numba import get_num_threads, njit

from postloan.errors import DataValidationError, PostloanError

log = logging.getLogger(__name__)

# LightGBM's kZeroThreshold (meta.h): the float 1e-35f, widened to double.
ZERO_THRESHOLD = float(np.float32(1e-35))
AVOID_INF = 1e300
MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}
# Leaves with more unique path features than this compute K per row instead of
# reading a table (2**12 doubles = 32 KiB per leaf at most).
MAX_TABLE_DEPTH = 12
# Upper bound for all tables of one model; leaves beyond it use the per-row path.
MAX_TABLE_BYTES = 256 * 2**20
# Below this many rows per thread, extra threads cost more than they save.
MIN_ROWS_PER_THREAD = 64
# Rows per block in the kernel: one block's outputs and decisions stay in L2.
ROW_BLOCK = 128
# Margins: a row costs well under a microsecond per model, so a thread needs more rows
# to pay for itself. Each split is evaluated once per block, so larger blocks amortise
# it over more rows; 256 rows x 65 features (133 KiB) stay in L2 and measured faster
# than 32, 64 or 128.
MIN_MARGIN_ROWS_PER_THREAD = 2048
MARGIN_BLOCK = 256
# Fewer rows than this walk every tree: the masks evaluate every split, which only pays
# off once several rows share it (one row: ~9 us instead of ~13 us for 165 trees).
WALK_BELOW = 4
# A 64-bit de Bruijn sequence and its table: the index of a 64-bit word's lowest set
# bit from one multiplication (Leiserson, Prokop and Randall 1998).
DEBRUIJN = 0x03F79D71B4CB0A89
DEBRUIJN_TABLE = np.zeros(64, dtype=np.int64)
for _i in range(64):
    DEBRUIJN_TABLE[((DEBRUIJN << _i) & (2**64 - 1)) >> 58] = _i
del _i
# Flags of a split node for the margin kernel: categorical, zero as missing, NaN goes
# left, default left, then the missing type (bits 4-5).
_CAT, _ZERO, _NAN_LEFT, _DEFAULT_LEFT = 1, 2, 4, 8


class UnsupportedModelError(PostloanError):
    """The booster is of a kind this TreeSHAP does not explain (multiclass, linear trees,
    random-forest averaging)."""


# ---------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, inline="always")
def _goes_left(v, kind, thr, missing, default_left, cat_bits, cat_start, cat_len):
    """LightGBM's NumericalDecision / CategoricalDecision on one value."""
    if kind == 0:
        if np.isnan(v):
            if missing != 2:
                v = 0.0
            else:
                return default_left
        if missing == 1 and -ZERO_THRESHOLD <= v <= ZERO_THRESHOLD:
            return default_left
        return v <= thr
    # Categorical: NaN and static_cast<int>(v) < 0 go right; truncation toward zero
    # keeps (-1, 0) at category 0; values beyond int32 become INT_MIN on x86 (right).
    if np.isnan(v) or v <= -1.0 or v >= 2147483648.0:
        return False
    iv = int(v)
    word = iv >> 5
    if word >= cat_len:
        return False
    return ((cat_bits[cat_start + word] >> np.uint32(iv & 31)) & np.uint32(1)) == 1


@njit(cache=True, nogil=True)
def _margin_rows(X, out, tree_root, tree_node_start, tree_leaf_start, tree_qs, node_feature,
                 node_threshold, node_flags, node_kill, node_left, node_right, node_cat_start,
                 node_cat_len, cat_bits, leaf_value, leaf_at, debruijn_table, block,
                 walk_below):
    """Raw margins of rows ``X`` (n, n_features) into ``out`` (n,).

    LightGBM's ``GBDT::PredictRaw``: per row, 0.0 plus each tree's leaf value in tree
    order, in float64 (the same additions in the same order, hence the same bits).

    Rows go in blocks of `block`, copied feature-major with ``|v| <= 1e-35`` set to 0
    (as the predictor's dense-row conversion does). A tree of at most 64 leaves finds
    each row's leaf the QuickScorer way (Lucchese et al., SIGIR 2015) instead of
    walking it: every leaf is a bit of a mask (left-to-right order), every split
    evaluated for the whole block at once, and a split a row does not take left clears
    the bits of the leaves of its left subtree; the row's leaf is the lowest bit left.
    That is branch-free, vectorisable work instead of unpredictable branches. Larger
    trees, and blocks of fewer than `walk_below` rows, are walked row by row.
    """
    n = X.shape[0]
    n_features = X.shape[1]
    block = max(1, min(block, n))
    xb = np.empty((n_features, block), dtype=np.float64)
    acc = np.empty(block, dtype=np.float64)
    mask = np.empty(block, dtype=np.uint64)
    ones = ~np.uint64(0)
    zero = np.uint64(0)
    debruijn = np.uint64(DEBRUIJN)
    shift = np.uint64(58)
    for r0 in range(0, n, block):
        nb = min(block, n - r0)
        for r in range(nb):
            for f in range(n_features):
                v = X[r0 + r, f]
                xb[f, r] = 0.0 if -ZERO_THRESHOLD <= v <= ZERO_THRESHOLD else v
            acc[r] = 0.0
        for t in range(tree_root.shape[0]):
            root = tree_root[t]
            if root < 0:  # a single-leaf tree
                value = leaf_value[~root]
                for r in range(nb):
                    acc[r] += value
                continue
            if nb < walk_below or not tree_qs[t]:
                for r in range(nb):
                    nd = root
                    while nd >= 0:
                        fl = node_flags[nd]
                        if _goes_left(xb[node_feature[nd], r], fl & 1, node_threshold[nd],
                                      (fl >> 4) & 3, (fl & 8) != 0, cat_bits,
                                      node_cat_start[nd], node_cat_len[nd]):
                            nd = node_left[nd]
                        else:
                            nd = node_right[nd]
                    acc[r] += leaf_value[~nd]
                continue
            for r in range(nb):
                mask[r] = ones
            for nd in range(tree_node_start[t], tree_node_start[t + 1]):
                f = node_feature[nd]
                thr = node_threshold[nd]
                kill = node_kill[nd]
                fl = node_flags[nd]
                if fl & 1:  # categorical
                    cs = node_cat_start[nd]
                    cl = node_cat_len[nd]
                    for r in range(nb):
                        if not _goes_left(xb[f, r], 1, 0.0, 0, False, cat_bits, cs, cl):
                            mask[r] &= kill
                elif fl & 2:  # zero as missing: 0 (after the conversion) and NaN
                    dl = (fl & 8) != 0
                    for r in range(nb):
                        v = xb[f, r]
                        if v == 0.0 or np.isnan(v):
                            if not dl:
                                mask[r] &= kill
                        elif v > thr:
                            mask[r] &= kill
                elif fl & 4:  # NaN goes left: only v > thr goes right
                    for r in range(nb):
                        mask[r] &= kill if xb[f, r] > thr else ones
                else:  # NaN goes right, as does v > thr
                    for r in range(nb):
                        mask[r] &= ones if xb[f, r] <= thr else kill
            l0 = tree_leaf_start[t]
            for r in range(nb):
                m = mask[r]
                # Index of the lowest set bit (de Bruijn multiplication).
                leaf = leaf_at[l0 + debruijn_table[((m & (zero - m)) * debruijn) >> shift]]
                acc[r] += leaf_value[leaf]
        for r in range(nb):
            out[r0 + r] = acc[r]


@njit(cache=True, nogil=True)
def _explain_rows(X, out, n_features,
                  tree_node_start, tree_leaf_start,
                  node_feature, node_threshold, node_kind, node_missing, node_default_left,
                  node_cat_start, node_cat_len, cat_bits,
                  leaf_value, leaf_d, leaf_slot_start, leaf_path_start, leaf_table_start,
                  slot_feature, slot_z, slot_c,
                  path_node, path_slot, path_left,
                  tables, leaf_q, leaf_qc_start, leaf_qs_start,
                  quad_c, quad_g, quad_b, quad_h, max_nodes, max_d, block):
    """Contributions of rows ``X`` (n, n_features) into ``out`` (n, n_features + 1).

    ``out`` must hold zeros, or the bias column already, on entry. Rows go in blocks
    of `block`, tree by tree and leaf by leaf, so that a leaf's table stays in cache
    while every row of the block reads it.
    """
    n_trees = tree_node_start.shape[0] - 1
    n = X.shape[0]
    left = np.zeros((max(max_nodes, 1), block), dtype=np.uint8)
    masks = np.zeros(block, dtype=np.int64)
    sat = np.zeros(max_d + 1, dtype=np.uint8)
    rq = np.zeros(max_d + 1, dtype=np.float64)
    xb = np.zeros((block, n_features), dtype=np.float64)
    for r0 in range(0, n, block):
        nb = min(block, n - r0)
        for r in range(nb):
            for f in range(n_features):
                v = X[r0 + r, f]
                # The predictor's dense-row conversion drops |v| <= kZeroThreshold (-> 0).
                xb[r, f] = 0.0 if -ZERO_THRESHOLD <= v <= ZERO_THRESHOLD else v
        for t in range(n_trees):
            n0 = tree_node_start[t]
            for nd in range(n0, tree_node_start[t + 1]):
                feat = node_feature[nd]
                kind = node_kind[nd]
                thr = node_threshold[nd]
                miss = node_missing[nd]
                dl = node_default_left[nd]
                cs = node_cat_start[nd]
                cl = node_cat_len[nd]
                for r in range(nb):
                    left[nd - n0, r] = _goes_left(xb[r, feat], kind, thr, miss, dl, cat_bits,
                                                  cs, cl)
            for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
                d = leaf_d[leaf]
                if d == 0:
                    continue  # a single-leaf tree: only the bias
                v = leaf_value[leaf]
                s0 = leaf_slot_start[leaf]
                base = leaf_table_start[leaf]
                p0 = leaf_path_start[leaf]
                p1 = leaf_path_start[leaf + 1]
                if base >= 0:
                    full = (np.int64(1) << d) - 1
                    for r in range(nb):
                        masks[r] = full
                    for p in range(p0, p1):
                        pn = path_node[p]
                        pl = path_left[p]
                        clear = ~(np.int64(1) << path_slot[p])
                        for r in range(nb):
                            if left[pn, r] != pl:
                                masks[r] &= clear
                    for r in range(nb):
                        s = masks[r]
                        pb = 1.0
                        for k in range(d):
                            if not (s >> k) & 1:
                                pb *= slot_z[s0 + k]
                        neg = -v * pb * tables[base + s]
                        i = r0 + r
                        for k in range(d):
                            f = slot_feature[s0 + k]
                            if (s >> k) & 1:
                                out[i, f] += (slot_c[s0 + k] * pb
                                              * tables[base + (s ^ (np.int64(1) << k))])
                            else:
                                out[i, f] += neg
                    continue
                # Deep leaf without a table: K by Gauss-Legendre quadrature.
                nq = leaf_q[leaf]
                qc = leaf_qc_start[leaf]
                qs = leaf_qs_start[leaf]
                for r in range(nb):
                    for k in range(d):
                        sat[k] = 1
                    for p in range(p0, p1):
                        if left[path_node[p], r] != path_left[p]:
                            sat[path_slot[p]] = 0
                    for q in range(nq):
                        rq[q] = quad_c[qc + q]
                    for k in range(d):
                        src = quad_g if sat[k] else quad_b
                        o = qs + k * nq
                        for q in range(nq):
                            rq[q] *= src[o + q]
                    total = 0.0
                    for q in range(nq):
                        total += rq[q]
                    neg = -v * total
                    i = r0 + r
                    for k in range(d):
                        f = slot_feature[s0 + k]
                        if not sat[k]:
                            out[i, f] += neg
                            continue
                        o = qs + k * nq
                        acc = 0.0
                        for q in range(nq):
                            acc += rq[q] * quad_h[o + q]
                        out[i, f] += slot_c[s0 + k] * acc


@njit(cache=True, nogil=True)
def _build_quadrature(leaf_d, leaf_slot_start, leaf_q, leaf_qc_start, leaf_qs_start, slot_z,
                      nodes, weights, quad_c, quad_g, quad_b, quad_h):
    """Per leaf and quadrature node ``q`` (``t_q``, ``w_q`` on [0, 1]): ``w_q / (1 - t_q)``;
    per path feature ``k``: ``t_q + z_k (1 - t_q)``, ``(1 - t_q) z_k`` and
    ``(1 - t_q) / (t_q + z_k (1 - t_q))``."""
    for leaf in range(leaf_d.shape[0]):
        d = leaf_d[leaf]
        if d == 0:
            continue
        nq = leaf_q[leaf]
        qc = leaf_qc_start[leaf]
        qs = leaf_qs_start[leaf]
        s0 = leaf_slot_start[leaf]
        for q in range(nq):
            quad_c[qc + q] = weights[nq, q] / (1.0 - nodes[nq, q])
        for k in range(d):
            z = slot_z[s0 + k]
            for q in range(nq):
                t = nodes[nq, q]
                g = t + z * (1.0 - t)
                quad_g[qs + k * nq + q] = g
                quad_b[qs + k * nq + q] = (1.0 - t) * z
                quad_h[qs + k * nq + q] = (1.0 - t) / g


@njit(cache=True, nogil=True)
def _build_tables(leaf_d, leaf_slot_start, leaf_table_start, slot_z, weights, tables, max_d):
    """``K(T)`` for every subset ``T`` (bitmask) of every tabulated leaf's path features."""
    e = np.zeros((np.int64(1) << max_d, max_d + 1), dtype=np.float64)
    for leaf in range(leaf_d.shape[0]):
        base = leaf_table_start[leaf]
        d = leaf_d[leaf]
        if base < 0 or d == 0:
            continue
        s0 = leaf_slot_start[leaf]
        e[0, 0] = 1.0
        for m in range(1, d + 1):
            e[0, m] = 0.0
        tables[base] = weights[d, 0]
        for s in range(1, np.int64(1) << d):
            low = s & (-s)
            k = 0
            while (np.int64(1) << k) != low:
                k += 1
            prev = s ^ low
            z = slot_z[s0 + k]
            e[s, 0] = 1.0
            for m in range(1, d + 1):
                e[s, m] = e[prev, m] + z * e[prev, m - 1]
            size = 0
            t = s
            while t:
                t &= t - 1
                size += 1
            acc = 0.0
            for m in range(size + 1):
                acc += weights[d, size - m] * e[s, m]
            tables[base + s] = acc


# ---------------------------------------------------------------------------- model


def _shapley_weights(max_d: int) -> np.ndarray:
    """``w[d, s] = s! (d - s - 1)! / d! = 1 / (d * C(d - 1, s))``, correctly rounded."""
    w = np.zeros((max_d + 1, max_d + 1))
    for d in range(1, max_d + 1):
        for s in range(d):
            w[d, s] = 1 / (d * math.comb(d - 1, s))
    return w


def _gauss_legendre(max_q: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]; row ``q`` holds the ``q``-point rule.

    The ``q``-point rule integrates polynomials up to degree ``2q - 1`` exactly, and
    ``K`` is the integral over [0, 1] of a degree ``d - 1`` polynomial (the Shapley
    weight ``s! (d-s-1)! / d!`` is the Beta integral of ``t^s (1-t)^(d-s-1)``)."""
    nodes = np.zeros((max_q + 1, max_q))
    weights = np.zeros((max_q + 1, max_q))
    for q in range(1, max_q + 1):
        x, w = np.polynomial.legendre.leggauss(q)
        nodes[q, :q] = (x + 1) / 2
        weights[q, :q] = w / 2
    return nodes, weights


def _categories(threshold) -> list[int]:
    return [int(c) for c in str(threshold).split("||") if c != ""]


@dataclass
class _Arrays:
    """Flat, numba-friendly arrays of every tree (filled by :func:`_flatten`)."""

    tree_node_start: list = field(default_factory=list)
    tree_leaf_start: list = field(default_factory=list)
    node_feature: list = field(default_factory=list)
    node_threshold: list = field(default_factory=list)
    node_kind: list = field(default_factory=list)
    node_missing: list = field(default_factory=list)
    node_default_left: list = field(default_factory=list)
    node_cat_start: list = field(default_factory=list)
    node_cat_len: list = field(default_factory=list)
    cat_bits: list = field(default_factory=list)
    leaf_value: list = field(default_factory=list)
    leaf_d: list = field(default_factory=list)
    leaf_slot_start: list = field(default_factory=list)
    leaf_path_start: list = field(default_factory=list)
    slot_feature: list = field(default_factory=list)
    slot_z: list = field(default_factory=list)
    slot_c: list = field(default_factory=list)
    path_node: list = field(default_factory=list)
    path_slot: list = field(default_factory=list)
    path_left: list = field(default_factory=list)
    # Prediction: the root and the two children of every split node, as global node
    # indices, or ``~leaf`` (global leaf index, negative) for a leaf.
    tree_root: list = field(default_factory=list)
    node_left: list = field(default_factory=list)
    node_right: list = field(default_factory=list)


def _flatten(trees: list[dict]) -> tuple[_Arrays, float]:
    """Flatten ``dump_model()["tree_info"]`` into arrays; returns them and the bias."""
    a = _Arrays()
    a.tree_node_start.append(0)
    a.tree_leaf_start.append(0)
    a.leaf_slot_start.append(0)
    a.leaf_path_start.append(0)
    bias = 0.0
    for tree in trees:
        root = tree["tree_structure"]
        n0 = len(a.node_feature)
        l0 = len(a.leaf_value)
        a.tree_root.append(n0 if "leaf_value" not in root
                           else ~(l0 + int(root.get("leaf_index", 0))))
        leaves: dict[int, tuple[float, int, list]] = {}
        # Iterative walk; the path holds (local node, feature, goes left, cover ratio).
        stack = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "leaf_value" in node:
                if "leaf_coeff" in node or "leaf_const" in node:
                    raise UnsupportedModelError(
                        "linear trees (linear_tree=True) are not supported: their leaves "
                        "are linear models, which path-dependent TreeSHAP does not explain")
                leaves[int(node.get("leaf_index", 0))] = (float(node["leaf_value"]),
                                                          int(node.get("leaf_count", 0)), path)
                if path:
                    parent, _, is_left, _ = path[-1]
                    (a.node_left if is_left else a.node_right)[n0 + parent] = \
                        ~(l0 + int(node.get("leaf_index", 0)))
                continue
            local = len(a.node_feature) - n0
            if path:
                parent, _, is_left, _ = path[-1]
                (a.node_left if is_left else a.node_right)[n0 + parent] = n0 + local
            a.node_left.append(0)
            a.node_right.append(0)
            a.node_feature.append(int(node["split_feature"]))
            a.node_default_left.append(bool(node["default_left"]))
            a.node_missing.append(MISSING_TYPES[node["missing_type"]])
            if node["decision_type"] == "==":
                cats = _categories(node["threshold"])
                words = np.zeros(max(cats) // 32 + 1 if cats else 0, dtype=np.uint32)
                for c in cats:
                    words[c // 32] |= np.uint32(1 << (c % 32))
                a.node_kind.append(1)
                a.node_threshold.append(0.0)
                a.node_cat_start.append(len(a.cat_bits))
                a.node_cat_len.append(len(words))
                a.cat_bits.extend(words.tolist())
            elif node["decision_type"] == "<=":
                # dump_model clamps thresholds to +-1e300 (Common::AvoidInf) while the
                # booster keeps +-inf (a split isolating missing values): undo the clamp.
                thr = float(node["threshold"])
                if abs(thr) >= AVOID_INF:
                    thr = math.copysign(math.inf, thr)
                a.node_kind.append(0)
                a.node_threshold.append(thr)
                a.node_cat_start.append(0)
                a.node_cat_len.append(0)
            else:
                raise UnsupportedModelError(
                    f"unknown split decision type {node['decision_type']!r}")
            count = float(node["internal_count"])
            for child, goes_left in ((node["right_child"], False), (node["left_child"], True)):
                c = child.get("internal_count", child.get("leaf_count", 0))
                # LightGBM's zero fraction: child data count / parent data count.
                ratio = c / count if count > 0 else 0.0
                stack.append((child, [*path, (local, int(node["split_feature"]), goes_left,
                                              ratio)]))
        n_leaves = int(tree["num_leaves"])
        if sorted(leaves) != list(range(n_leaves)):
            raise UnsupportedModelError("tree leaves are not numbered 0..num_leaves-1")
        # Tree::ExpectedValue, in its own order (leaf index), then summed over trees.
        if n_leaves == 1:
            expected = leaves[0][0]
        else:
            total = float(root["internal_count"])
            expected = 0.0
            for i in range(n_leaves):
                value, count, _ = leaves[i]
                expected += (count / total) * value
        bias += expected
        for i in range(n_leaves):
            value, _, path = leaves[i]
            slots: dict[int, int] = {}
            zs: list[float] = []
            for local, feature, goes_left, ratio in path:
                if feature not in slots:
                    slots[feature] = len(zs)
                    zs.append(ratio)
                else:  # a repeated feature: its zero fraction multiplies
                    zs[slots[feature]] *= ratio
                a.path_node.append(local)
                a.path_slot.append(slots[feature])
                a.path_left.append(goes_left)
            a.slot_feature.extend(slots)
            a.slot_z.extend(zs)
            a.slot_c.extend(value * (1.0 - z) for z in zs)
            a.leaf_value.append(value)
            a.leaf_d.append(len(zs))
            a.leaf_slot_start.append(len(a.slot_feature))
            a.leaf_path_start.append(len(a.path_node))
        a.tree_node_start.append(len(a.node_feature))
        a.tree_leaf_start.append(len(a.leaf_value))
    return a, bias


def _leaf_masks(tree_root: np.ndarray, tree_leaf_start: np.ndarray, node_left: np.ndarray,
                node_right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QuickScorer masks for the margin kernel.

    Returns ``kill`` per split node (all bits but the leaves of its left subtree, leaves
    numbered left to right within the tree), ``leaf_at`` (global leaf at each tree's
    left-to-right position) and whether each tree fits a 64-bit mask.
    """
    kill = np.zeros(len(node_left), dtype=np.uint64)
    leaf_at = np.zeros(int(tree_leaf_start[-1]), dtype=np.int64)
    fits = np.zeros(len(tree_root), dtype=np.bool_)
    full = 2**64 - 1
    for t, root in enumerate(tree_root.tolist()):
        l0 = int(tree_leaf_start[t])
        if tree_leaf_start[t + 1] - l0 > 64:
            continue
        fits[t] = True
        if root < 0:
            leaf_at[l0] = ~root
            continue
        # Left-first preorder: leaves come out left to right, parents before children.
        order, stack, pos = [], [root], 0
        span: dict[int, tuple[int, int]] = {}  # node -> leaf positions [lo, hi)
        while stack:
            nd = stack.pop()
            if nd < 0:
                leaf_at[l0 + pos] = ~nd
                span[nd] = (pos, pos + 1)
                pos += 1
                continue
            order.append(nd)
            stack += [int(node_right[nd]), int(node_left[nd])]
        for nd in reversed(order):
            lo, mid = span[int(node_left[nd])]
            span[nd] = (lo, span[int(node_right[nd])][1])
            kill[nd] = full ^ (((1 << mid) - 1) ^ ((1 << lo) - 1))
    return kill, leaf_at, fits


class TreeExplainer:
    """Exact path-dependent TreeSHAP of one LightGBM booster (single output).

    Build once per model with :meth:`from_booster` (cached per booster object);
    :meth:`contributions` then equals ``booster.predict(X, pred_contrib=True)`` and
    :meth:`margin` ``booster.predict(X, raw_score=True)`` (bit for bit).

    Attributes:
        n_features: columns the booster expects.
        n_trees: trees explained (the ones ``booster.predict`` uses).
        expected_value: the bias column (sum of the trees' expected values).
        n_table_leaves: leaves answered from tables; ``n_leaves - n_table_leaves``
            compute per row.
        table_bytes: memory held by the tables.
        nbytes: memory held by all arrays (tables included).
        build_seconds: time to parse and tabulate the model.
    """

    def __init__(self, model: dict, num_iteration: int | None = None, *,
                 max_table_depth: int = MAX_TABLE_DEPTH,
                 max_table_bytes: int = MAX_TABLE_BYTES) -> None:
        """Build from ``booster.dump_model()`` output.

        Args:
            model: the dict of ``booster.dump_model(num_iteration)``.
            num_iteration: the iterations the dump holds (informational).
            max_table_depth: leaves with more unique path features skip the table.
            max_table_bytes: memory cap for all tables of the model.

        Raises:
            UnsupportedModelError: multiclass (more than one tree per iteration),
                random-forest averaging or linear trees.
        """
        t0 = time.perf_counter()
        if int(model.get("num_tree_per_iteration", 1)) != 1 or int(model.get("num_class", 1)) != 1:
            raise UnsupportedModelError(
                f"only single-output (e.g. binary) boosters are supported; this one has "
                f"num_class={model.get('num_class')} and "
                f"num_tree_per_iteration={model.get('num_tree_per_iteration')}")
        if model.get("average_output"):
            raise UnsupportedModelError(
                "random-forest boosters (average_output) are not supported")
        self.n_features = int(model["max_feature_idx"]) + 1
        self.feature_names = list(model.get("feature_names", []))
        self.num_iteration = num_iteration
        arrays, bias = _flatten(model["tree_info"])
        self.expected_value = bias
        self.n_trees = len(model["tree_info"])

        i32 = np.int32
        self._node_feature = np.asarray(arrays.node_feature, dtype=i32)
        self._node_threshold = np.asarray(arrays.node_threshold, dtype=np.float64)
        self._node_kind = np.asarray(arrays.node_kind, dtype=np.uint8)
        self._node_missing = np.asarray(arrays.node_missing, dtype=np.uint8)
        self._node_default_left = np.asarray(arrays.node_default_left, dtype=np.bool_)
        self._node_cat_start = np.asarray(arrays.node_cat_start, dtype=i32)
        self._node_cat_len = np.asarray(arrays.node_cat_len, dtype=i32)
        self._cat_bits = np.asarray(arrays.cat_bits, dtype=np.uint32)
        self._tree_node_start = np.asarray(arrays.tree_node_start, dtype=np.int64)
        self._tree_leaf_start = np.asarray(arrays.tree_leaf_start, dtype=np.int64)
        self._leaf_value = np.asarray(arrays.leaf_value, dtype=np.float64)
        self._leaf_d = np.asarray(arrays.leaf_d, dtype=i32)
        self._leaf_slot_start = np.asarray(arrays.leaf_slot_start, dtype=np.int64)
        self._leaf_path_start = np.asarray(arrays.leaf_path_start, dtype=np.int64)
        self._slot_feature = np.asarray(arrays.slot_feature, dtype=i32)
        self._slot_z = np.asarray(arrays.slot_z, dtype=np.float64)
        self._slot_c = np.asarray(arrays.slot_c, dtype=np.float64)
        self._path_node = np.asarray(arrays.path_node, dtype=i32)
        self._path_slot = np.asarray(arrays.path_slot, dtype=i32)
        self._path_left = np.asarray(arrays.path_left, dtype=np.uint8)
        self._tree_root = np.asarray(arrays.tree_root, dtype=np.int64)
        self._node_left = np.asarray(arrays.node_left, dtype=i32)
        self._node_right = np.asarray(arrays.node_right, dtype=i32)
        self._node_kill, self._leaf_at, self._tree_qs = _leaf_masks(
            self._tree_root, self._tree_leaf_start, self._node_left, self._node_right)
        # NaN goes where 0 goes unless the missing type is NaN (then: default side).
        nan_left = np.where(self._node_missing == 0, 0.0 <= self._node_threshold,
                            self._node_default_left)
        self._node_flags = (self._node_kind * _CAT + (self._node_missing == 1) * _ZERO
                            + nan_left * _NAN_LEFT + self._node_default_left * _DEFAULT_LEFT
                            + self._node_missing.astype(np.int64) * 16).astype(np.uint8)
        self._max_nodes = int(np.diff(self._tree_node_start).max(initial=0))
        self._max_d = int(self._leaf_d.max(initial=0))
        self._weights = _shapley_weights(max(self._max_d, 1))

        # Tables: smallest leaves first until the memory cap.
        table_start = np.full(len(self._leaf_d), -1, dtype=np.int64)
        budget = max_table_bytes // 8
        offset = 0
        table_d = 0
        for leaf in np.argsort(self._leaf_d, kind="stable"):
            d = int(self._leaf_d[leaf])
            if d == 0:
                continue
            if d > max_table_depth or offset + (1 << d) > budget:
                break
            table_start[leaf] = offset
            offset += 1 << d
            table_d = max(table_d, d)
        self._leaf_table_start = table_start
        self._tables = np.zeros(offset, dtype=np.float64)
        if offset:
            _build_tables(self._leaf_d, self._leaf_slot_start, table_start, self._slot_z,
                          self._weights, self._tables, table_d)
        # Quadrature (leaves without a table, and small calls): ceil(d / 2) nodes.
        self._leaf_q = np.maximum((self._leaf_d + 1) // 2, 1).astype(i32)
        self._leaf_q[self._leaf_d == 0] = 0
        self._leaf_qc_start = np.concatenate([[0], np.cumsum(self._leaf_q)[:-1]]).astype(np.int64)
        sizes = self._leaf_q.astype(np.int64) * self._leaf_d
        self._leaf_qs_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nodes, qweights = _gauss_legendre(int(self._leaf_q.max(initial=1)))
        self._quad_c = np.zeros(int(self._leaf_q.sum()))
        self._quad_g = np.zeros(int(sizes.sum()))
        self._quad_b = np.zeros_like(self._quad_g)
        self._quad_h = np.zeros_like(self._quad_g)
        if len(self._leaf_d):
            _build_quadrature(self._leaf_d, self._leaf_slot_start, self._leaf_q,
                              self._leaf_qc_start, self._leaf_qs_start, self._slot_z, nodes,
                              qweights, self._quad_c, self._quad_g, self._quad_b, self._quad_h)
        self.n_leaves = len(self._leaf_d)
        self.n_table_leaves = int((table_start >= 0).sum())
        self.table_bytes = int(self._tables.nbytes)
        self.nbytes = int(sum(v.nbytes for v in vars(self).values()
                              if isinstance(v, np.ndarray)))
        self.build_seconds = time.perf_counter() - t0
        log.debug("TreeSHAP explainer: %d trees, %d leaves (%d tabulated, %.1f MiB) in %.3fs",
                  self.n_trees, self.n_leaves, self.n_table_leaves, self.table_bytes / 2**20,
                  self.build_seconds)

    @classmethod
    def from_booster(cls, booster: lgb.Booster, num_iteration: int | None = None,
                     **kwargs) -> TreeExplainer:
        """Explainer of the trees ``booster.predict(..., num_iteration)`` uses.

        Cached per booster object (and iteration count): the second call is free.

        Args:
            booster: a trained single-output LightGBM booster.
            num_iteration: as in ``booster.predict``; None uses ``best_iteration`` when
                the booster has one, else every tree.
            **kwargs: ``max_table_depth`` / ``max_table_bytes`` (bypass the cache).

        Raises:
            UnsupportedModelError: see :class:`TreeExplainer`.
        """
        if num_iteration is None:
            num_iteration = booster.best_iteration if booster.best_iteration > 0 else -1
        if kwargs:
            return cls(booster.dump_model(num_iteration=num_iteration), num_iteration,
                       **kwargs)
        key = (num_iteration, booster.num_trees())
        with _CACHE_LOCK:
            entry = _CACHE.get(booster)
            if entry is not None and entry[0] == key:
                return entry[1]
        explainer = cls(booster.dump_model(num_iteration=num_iteration), num_iteration)
        with _CACHE_LOCK:
            _CACHE[booster] = (key, explainer)
        return explainer

    def contributions(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Per-row SHAP values in raw-score units, bias last.

        Args:
            X: (n, n_features) feature matrix (converted to float64).
            num_threads: threads to use; None uses numba's thread count (all cores by
                default). Small inputs run on the calling thread.

        Returns:
            (n, n_features + 1) array equal to ``booster.predict(X, pred_contrib=True)``.

        Raises:
            DataValidationError: `X` is not 2-D with ``n_features`` columns.
        """
        X = self._check(X)
        out = np.zeros((X.shape[0], self.n_features + 1), dtype=np.float64)
        out[:, -1] = self.expected_value
        _over_rows(self._run, X, out, num_threads, MIN_ROWS_PER_THREAD)
        return out

    def margin(self, X: np.ndarray, num_threads: int | None = None) -> np.ndarray:
        """Raw scores (log-odds for a binary booster) of the same trees.

        Args:
            X: (n, n_features) feature matrix (any layout; converted to float64).
            num_threads: threads to use; None uses numba's thread count (all cores by
                default). Small inputs run on the calling thread.

        Returns:
            (n,) array bit-identical to ``booster.predict(X, raw_score=True)``: the same
            float64 additions, in LightGBM's order.

        Raises:
            DataValidationError: `X` is not 2-D with ``n_features`` columns.
        """
        X = self._check(X, contiguous=False)
        out = np.empty(X.shape[0], dtype=np.float64)
        _over_rows(self._run_margin, X, out, num_threads, MIN_MARGIN_ROWS_PER_THREAD)
        return out

    def _check(self, X, contiguous: bool = True) -> np.ndarray:
        X = (np.ascontiguousarray(X, dtype=np.float64) if contiguous
             else np.asarray(X, dtype=np.float64))
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataValidationError(
                "features", f"expected a 2-D matrix with {self.n_features} columns, got "
                f"shape {X.shape}")
        return X

    def _run_margin(self, X: np.ndarray, out: np.ndarray) -> None:
        _margin_rows(X, out, self._tree_root, self._tree_node_start, self._tree_leaf_start,
                     self._tree_qs, self._node_feature, self._node_threshold,
                     self._node_flags, self._node_kill, self._node_left, self._node_right,
                     self._node_cat_start, self._node_cat_len, self._cat_bits,
                     self._leaf_value, self._leaf_at, DEBRUIJN_TABLE, MARGIN_BLOCK,
                     WALK_BELOW)

    def _run(self, X: np.ndarray, out: np.ndarray) -> None:
        _explain_rows(X, out, self.n_features,
                      self._tree_node_start, self._tree_leaf_start,
                      self._node_feature, self._node_threshold, self._node_kind,
                      self._node_missing, self._node_default_left,
                      self._node_cat_start, self._node_cat_len, self._cat_bits,
                      self._leaf_value, self._leaf_d, self._leaf_slot_start,
                      self._leaf_path_start, self._leaf_table_start,
                      self._slot_feature, self._slot_z, self._slot_c,
                      self._path_node, self._path_slot, self._path_left,
                      self._tables, self._leaf_q, self._leaf_qc_start,
                      self._leaf_qs_start, self._quad_c, self._quad_g, self._quad_b,
                      self._quad_h, self._max_nodes, max(self._max_d, 1), ROW_BLOCK)


def _over_rows(run, X: np.ndarray, out: np.ndarray, num_threads: int | None,
               min_rows: int) -> None:
    """``run(X, out)`` on row ranges, on up to `num_threads` threads.

    The serial kernels release the GIL: a plain thread pool over row ranges is
    thread-safe (unlike numba's workqueue layer) and honours the thread count."""
    n = X.shape[0]
    if n == 0:
        return
    threads = int(num_threads or get_num_threads())
    threads = max(1, min(threads, n // min_rows))
    if threads == 1:
        run(X, out)
        return
    bounds = np.linspace(0, n, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: run(X[bounds[b]:bounds[b + 1]], out[bounds[b]:bounds[b + 1]]),
                      range(threads)))


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def contributions(booster: lgb.Booster, X: np.ndarray,
                  num_threads: int | None = None) -> np.ndarray:
    """``booster.predict(X, pred_contrib=True)``, computed by a cached :class:`TreeExplainer`.

    Args:
        booster: a trained single-output LightGBM booster.
        X: (n, n_features) feature matrix.
        num_threads: threads (None: all).

    Returns:
        (n, n_features + 1) contributions in raw-score units, bias last.
    """
    return TreeExplainer.from_booster(booster).contributions(X, num_threads)

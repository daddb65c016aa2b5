"""Weight activation levels and important weights (paper section 5.3.1 B, Figure 3 B).

Definitions
-----------
For two consecutive analysed layers ``i -> j`` that one weight matrix joins (a *linked* pair,
:meth:`transferviz.graph.ModelGraph.link`: module ``j`` -- layer ``j`` itself, or the one conv or
linear layer inside block ``j`` -- receives layer ``i``'s output through per-channel operations
only) a *weight* ``n1 -> n2`` joins neuron ``n1`` of layer ``i`` (an output channel / unit of
layer ``i``) with neuron ``n2`` of layer ``j`` (an output channel / unit of module ``j``).
Its *activated level* on one instance is how much ``n1`` feeds ``n2`` through that weight,
measured on ``X``, the tensor module ``j`` actually receives (so the ReLU, pooling, dropout
in eval mode and flatten between the two modules are applied; ``X`` is captured with a
forward pre-hook on module ``j``):

* conv ``j``:   ``level[n2, n1] = max over output positions of (X[n1] * W[n2, n1])`` -- the
  single-channel convolution with module ``j``'s stride, padding, dilation and padding
  mode, without bias. The max mirrors the paper's "max over the map" for conv
  conductance. For grouped convolutions pairs in different groups are not connected and
  get ``-inf`` (never selected).
* linear ``j``: ``level[n2, n1] = W[n2, n1] * x[n1]`` -- the term unit ``n2`` receives.
* conv ``i`` -> linear ``j`` (flatten in between): the linear layer sees ``C*H*W`` features
  (channel-major, as ``torch.flatten(x, 1)`` lays them out). Neuron ``n1`` of layer ``i`` is
  a channel, so the features are grouped into ``in_groups = C`` contiguous blocks and
  **the level is the sum over the channel's positions**,
  ``level[n2, n1] = sum_{f in channel n1} W[n2, f] * x[f]`` -- exactly what unit ``n2``
  receives from channel ``n1`` (the channel's additive share of ``n2``'s pre-activation).
  A sum, not a max, because a linear unit adds up all its inputs; it is the linear
  analogue of the conv case, where the map position plays no role downstream.

The *weight value* drawn by the view (:func:`weight_value_matrix`) is a single number per
pair: ``W[n2, n1]`` for linear layers and **the mean of the slice** for a conv kernel
``W[n2, n1, :, :]`` or a conv->linear block ``W[n2, channel n1]``. The mean keeps the
sign (excitatory vs inhibitory), which an L2 norm would lose.

Important weights (:func:`important_weights`) follow the paper: on every instance the
``k_instance`` largest levels count 1 (ties by the lower flat index ``n2 * n_in + n1``);
the counts are summed over the class's instances, and the ``k_class`` weights with the
largest counts (ties: larger summed level, then lower flat index) are important.

Default ``k`` (:func:`default_weight_k`): ``k_instance = k_class = k_i * k_j`` where
``k_i = top_k(N_i)`` and ``k_j = top_k(N_j)`` are the numbers of important neurons of the
two layers (10 % each). The important-weight set then has exactly the size of the
view's Region (1) (important x important block), i.e. about 1 % of the weights, so the
share of important weights that fall inside Region (1) is directly readable, and ``k``
scales with the layer sizes like the neuron selection does.

Cost and memory
---------------
Levels are computed in chunks of output neurons (rows ``n2``) and instances, sized from
``memory_budget_mb`` (whole instances per chunk when one instance's levels fit, otherwise
one instance and a band of rows):

* conv: one chunk of ``R`` output rows is a depthwise convolution (``groups = C_in``) of
  ``X`` with the ``C_in * R`` single-channel kernels ``W[n2, n1]``, followed by an
  ``amax`` over the map. Memory ``B * C_in * R * H_out * W_out * 4`` bytes; FLOPs
  ``B * C_in * C_out * H_out * W_out * kh * kw`` -- the same as the layer's own forward
  pass, just without the reduction over ``n1``. AlexNet ``features.8`` (384 -> 256 at
  13x13, 3x3): 150 MMAC and 66 MB per instance; ~0.13 s CPU time per instance (one core).
* linear: ``W[rows] * x`` broadcast, ``B * R * n_in * 4`` bytes. AlexNet ``classifier.4``
  (4096 x 4096): 16.8 M levels (67 MB) per instance; ~0.11 s CPU time per instance (one
  core, 256 MB budget; 0.17 s at 64 MB) plus ~0.7 s once per call for the final matrices.
  Columns whose input is exactly 0 (after the ReLU) are skipped when that is provably
  exact (:func:`_linear_topk_active`).
* conv -> linear: ``einsum('bcs,rcs->brc')``, memory ``B * R * C`` plus the inputs.

The per-instance top-k never sorts all levels: long rows are prefiltered with a sampled
threshold and cut with ``kthvalue`` (:func:`_row_topk`), each chunk's top-k is kept and the
chunks are merged (the global top-k in the order (level desc, flat index asc) is a subset
of the union of each chunk's top-k in that order), so no instance's full level matrix is
needed at once. Accumulators: ``(n_out, n_in)`` int32 counts, and for conv layers float64
summed levels; linear levels are linear in ``x``, so their sum is computed once from the
summed input (``(n_out, n_in)`` float64, 134 MB for 4096 x 4096, at the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferviz.analysis.ranking import top_k
from transferviz.errors import TransferVizError

__all__ = [
    "WeightResult",
    "WeightRegions",
    "BoxStats",
    "connection_mask",
    "default_weight_k",
    "weight_levels",
    "weight_value_matrix",
    "layer_inputs",
    "layer_in_groups",
    "important_weights",
    "REDUCTIONS",
    "receiver_activity",
    "weight_regions",
]

_BYTES = 4  # float32 levels


# --------------------------------------------------------------------------- helpers


def _n_out(module: nn.Module) -> int:
    if isinstance(module, nn.Conv2d):
        return int(module.out_channels)
    if isinstance(module, nn.Linear):
        return int(module.out_features)
    raise TransferVizError(f"weights: layer of type {type(module).__name__} is not nn.Conv2d or nn.Linear")


def _n_in(module: nn.Module, in_groups: int | None) -> int:
    """Number of layer-i neurons feeding ``module`` (channels, units or channel groups)."""
    if isinstance(module, nn.Conv2d):
        if in_groups is not None and in_groups != module.in_channels:
            raise TransferVizError(f"weights: conv layer has {module.in_channels} input channels "
                                   f"but in_groups={in_groups}")
        return int(module.in_channels)
    if isinstance(module, nn.Linear):
        if in_groups is None:
            return int(module.in_features)
        if in_groups <= 0 or module.in_features % in_groups:
            raise TransferVizError(f"weights: linear layer has {module.in_features} input features, "
                                   f"not divisible into in_groups={in_groups} channel blocks")
        return int(in_groups)
    raise TransferVizError(f"weights: layer of type {type(module).__name__} is not nn.Conv2d or nn.Linear")


def connection_mask(module: nn.Module, in_groups: int | None = None) -> np.ndarray:
    """Which ``(n2, n1)`` pairs are joined by a weight at all.

    Everything is connected except across groups of a grouped convolution.

    Args:
        module: the layer-j module (``nn.Conv2d`` or ``nn.Linear``).
        in_groups: for a linear layer after a flatten, the number of layer-i channels.

    Returns:
        ``(n_out, n_in)`` bool.
    """
    n_out, n_in = _n_out(module), _n_in(module, in_groups)
    groups = int(getattr(module, "groups", 1)) if isinstance(module, nn.Conv2d) else 1
    if groups == 1:
        return np.ones((n_out, n_in), dtype=bool)
    out_group = np.arange(n_out) // (n_out // groups)
    in_group = np.arange(n_in) // (n_in // groups)
    return out_group[:, None] == in_group[None, :]


def default_weight_k(n_in: int, n_out: int, fraction: float = 0.1) -> int:
    """Default ``k_instance`` and ``k_class``: important neurons of layer i times of layer j.

    Args:
        n_in: neurons of layer i.
        n_out: neurons of layer j.
        fraction: the neuron-selection fraction (10 % in the paper).

    Returns:
        ``top_k(n_in, fraction) * top_k(n_out, fraction)`` (about ``fraction**2`` of the weights).
    """
    return top_k(n_in, fraction) * top_k(n_out, fraction)


def _dense_conv_weight(module: nn.Conv2d) -> torch.Tensor:
    """``(n_out, C_in, kh, kw)`` kernels with zeros between groups (dense view of a grouped conv)."""
    w = module.weight.detach()
    groups = int(module.groups)
    if groups == 1:
        return w
    n_out, cin_g = w.shape[0], w.shape[1]
    out_g = n_out // groups
    dense = w.new_zeros((n_out, cin_g * groups) + tuple(w.shape[2:]))
    for g in range(groups):
        dense[g * out_g:(g + 1) * out_g, g * cin_g:(g + 1) * cin_g] = w[g * out_g:(g + 1) * out_g]
    return dense


def weight_value_matrix(module: nn.Module, in_groups: int | None = None) -> np.ndarray:
    """The single value per weight that the network relation view draws.

    Args:
        module: the layer-j module.
        in_groups: for a linear layer after a flatten, the number of layer-i channels.

    Returns:
        ``(n_out, n_in)`` float32: ``W`` for linear layers; the mean of each kernel slice
        ``W[n2, n1, :, :]`` for conv layers (NaN across groups of a grouped conv); the mean
        of each channel block ``W[n2, channel n1]`` for a linear layer after a flatten.
    """
    n_in = _n_in(module, in_groups)
    if isinstance(module, nn.Conv2d):
        vals = _dense_conv_weight(module).float().mean(dim=(2, 3)).cpu().numpy()
        mask = connection_mask(module)
        return np.where(mask, vals, np.nan).astype(np.float32)
    assert isinstance(module, nn.Linear)  # _n_in raised for anything but conv and linear layers
    w = module.weight.detach().float()
    if in_groups is not None:
        w = w.reshape(w.shape[0], n_in, -1).mean(dim=2)
    return w.cpu().numpy().astype(np.float32)


#: ``analysis.weight_reduction``: how a conv weight's level reduces over the output map -- ``max`` (the paper's
#: "max over the map", as for a conv neuron's conductance) or ``sum`` (its total contribution to the map).
REDUCTIONS = ("max", "sum")


def _level_chunk(module: nn.Module, x: torch.Tensor, in_groups: int | None, r0: int, r1: int,
                 dense_w: torch.Tensor, reduction: str = "max") -> torch.Tensor:
    """Levels ``(B, r1 - r0, n_in)`` for output rows ``r0:r1``; ``dense_w`` is on ``x``'s device; a conv's
    levels are reduced over the output map by ``reduction`` (:data:`REDUCTIONS`)."""
    if isinstance(module, nn.Conv2d):
        b, cin = x.shape[0], x.shape[1]
        w = dense_w[r0:r1]  # (R, Cin, kh, kw)
        r = w.shape[0]
        # Depthwise kernels ordered so that output channel c*R + r is W[r0 + r, c] applied to X[c].
        wd = w.transpose(0, 1).reshape(cin * r, 1, *w.shape[2:])
        padding: str | int | tuple[int, ...]
        if module.padding_mode != "zeros":
            xin = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            padding = 0
        else:
            xin, padding = x, module.padding
        y = F.conv2d(xin, wd, None, module.stride, padding, module.dilation, groups=cin)
        per_position = y.reshape(b, cin, r, -1)
        lv = (per_position.sum(dim=3) if reduction == "sum" else per_position.amax(dim=3)).transpose(1, 2)
        if module.groups != 1:
            # Pairs across groups have no weight; -inf keeps them out of every top-k.
            mask = torch.as_tensor(connection_mask(module)[r0:r1], device=lv.device)
            lv = lv.masked_fill(~mask, float("-inf"))
        return lv.contiguous()
    w = dense_w[r0:r1]  # (R, in_features)
    if in_groups is None:
        return w.unsqueeze(0) * x.unsqueeze(1)
    b = x.shape[0]
    xs = x.reshape(b, in_groups, -1)
    ws = w.reshape(w.shape[0], in_groups, -1)
    return torch.einsum("bcs,rcs->brc", xs, ws)


def _prepare(module: nn.Module, layer_input: torch.Tensor, in_groups: int | None,
             device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    dev = torch.device(device) if device is not None else layer_input.device
    x = layer_input.detach().to(dev, torch.float32)
    if isinstance(module, nn.Conv2d):
        if x.ndim != 4 or x.shape[1] != module.in_channels:
            raise TransferVizError(f"weights: conv layer expects (B, {module.in_channels}, H, W) input, "
                                   f"got {tuple(x.shape)}")
        return x, _dense_conv_weight(module).to(dev, torch.float32)
    _n_in(module, in_groups)
    assert isinstance(module, nn.Linear)  # _n_in raised for anything but conv and linear layers
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != module.in_features:
        raise TransferVizError(f"weights: linear layer expects {module.in_features} input features, "
                               f"got {x.shape[1]}")
    return x, module.weight.detach().to(dev, torch.float32)


def _row_cost_bytes(module: nn.Module, x: torch.Tensor, n_in: int) -> int:
    """Bytes one instance needs for one output row of levels (including the conv's map)."""
    if isinstance(module, nn.Conv2d):
        h, w = x.shape[2], x.shape[3]
        kh, kw = module.kernel_size
        pad = module.padding
        if isinstance(pad, str):  # 'same' keeps the size, 'valid' shrinks it: bound by the input size
            ho, wo = h, w
        else:
            sh, sw = module.stride
            dh, dw = module.dilation
            ho = (h + 2 * pad[0] - dh * (kh - 1) - 1) // sh + 1
            wo = (w + 2 * pad[1] - dw * (kw - 1) - 1) // sw + 1
        return max(1, n_in * max(1, ho) * max(1, wo) * _BYTES)
    # Broadcast product plus the top-k's temporaries.
    return max(1, 2 * n_in * _BYTES)


def weight_levels(module: nn.Module, layer_input: torch.Tensor, in_groups: int | None = None, *,
                  rows: tuple[int, int] | None = None, device: torch.device | str | None = None,
                  memory_budget_mb: float = 256, reduction: str = "max") -> torch.Tensor:
    """Activated level of every weight ``n1 -> n2`` of ``module`` on every instance.

    Args:
        module: layer-j module (``nn.Conv2d`` or ``nn.Linear``).
        layer_input: what ``module`` receives in the forward pass: ``(B, C_in, H, W)`` for
            conv, ``(B, in_features)`` (or anything flattening to it) for linear.
        in_groups: ``None``, or for a linear layer after a flatten the number of layer-i
            channels: the ``in_features`` are split into that many contiguous blocks and each
            block's terms are summed (see module docstring).
        rows: optional ``(start, stop)`` range of output neurons ``n2`` to compute.
        device: where to compute; default ``layer_input``'s device.
        memory_budget_mb: bound for each internal chunk (rows are processed in chunks).

    Returns:
        ``(B, n_rows, n_in)`` float32 tensor (``-inf`` for pairs across conv groups).
    """
    n_out = _n_out(module)
    n_in = _n_in(module, in_groups)
    r0, r1 = rows if rows is not None else (0, n_out)
    if not 0 <= r0 <= r1 <= n_out:
        raise ValueError(f"rows {rows} outside [0, {n_out}]")
    x, dense_w = _prepare(module, layer_input, in_groups, device)
    b = max(1, x.shape[0])
    step = max(1, int(memory_budget_mb * 2**20) // (b * _row_cost_bytes(module, x, n_in)))
    with torch.no_grad():
        parts = [_level_chunk(module, x, in_groups, s, min(s + step, r1), dense_w, reduction)
                 for s in range(r0, r1, step)]
    if not parts:
        return x.new_zeros((x.shape[0], 0, n_in))
    return torch.cat(parts, dim=1)


# ------------------------------------------------------------------- layer inputs


class _StopForward(Exception):
    """Raised by the capture hook: nothing after module j is needed, so skip it."""


def layer_inputs(model: nn.Module, layer: str, inputs: torch.Tensor) -> torch.Tensor:
    """The tensor module ``layer`` receives for ``inputs`` (eval mode, no grad).

    The forward pass stops right after the capture, so later layers cost nothing.

    Args:
        model: the network; its training flag is restored afterwards.
        layer: module path (e.g. ``"features.3"``).
        inputs: ``(B, C, H, W)`` batch already on the model's device.

    Returns:
        The detached input tensor of the module.
    """
    modules = dict(model.named_modules())
    if layer not in modules:
        raise TransferVizError(f"weights: the model has no module {layer!r}")
    captured: list[torch.Tensor] = []

    def hook(_module, args):
        captured.append(args[0].detach().clone())
        raise _StopForward

    handle = modules[layer].register_forward_pre_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs)
    except _StopForward:
        pass
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise TransferVizError(f"weights: module {layer!r} was not called in the forward pass")
    return captured[0]


# -------------------------------------------------------------- important weights


@dataclass(frozen=True)
class WeightResult:
    """Important weights between two consecutive analysed layers for one set of instances.

    Attributes:
        layer_i, layer_j: module paths.
        n1, n2: ``(k,)`` int64 neuron indices in layer i / layer j, most important first.
        count: ``(k,)`` int32 how many instances had the weight in their top ``k_instance``.
        value: ``(k,)`` float32 weight value drawn by the view (:func:`weight_value_matrix`).
        level_sum: ``(k,)`` float64 summed activated level over the instances (tie-break).
        counts: ``(n_out, n_in)`` int32 counts of all weights (rows are layer-j neurons).
        values: ``(n_out, n_in)`` float32 weight values of all weights.
        n_instances: number of instances used.
        k_instance, k_class: the ``k`` values actually used.
    """

    layer_i: str
    layer_j: str
    n1: np.ndarray
    n2: np.ndarray
    count: np.ndarray
    value: np.ndarray
    level_sum: np.ndarray
    counts: np.ndarray
    values: np.ndarray
    n_instances: int
    k_instance: int
    k_class: int

    @property
    def pairs(self) -> np.ndarray:
        """``(k, 2)`` int64 ``(n1, n2)`` pairs, as :mod:`transferviz.analysis.similarity` takes them."""
        return np.stack([self.n1, self.n2], axis=1) if self.n1.size else np.zeros((0, 2), np.int64)


def _topk_keep(vals: torch.Tensor, pos: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of ``vals`` (1-D, ``pos`` ascending) in the order (value desc, position asc).

    Uses a k-th value selection and one pass of comparisons instead of a sort (a sort of
    ~200 k candidates is ~10x slower on CPU). Returns ``(positions ascending, values)``.
    """
    n = vals.numel()
    if n <= k:
        return pos, vals
    t = torch.kthvalue(vals, n - k + 1).values  # the k-th largest value
    gt = vals > t
    eq = vals == t
    need = k - int(gt.sum())
    if int(eq.sum()) > need:
        # Too many tied at the threshold: keep the lowest positions (deterministic).
        eq = eq & (eq.cumsum(0) <= need)
    keep = gt | eq
    return pos[keep], vals[keep]


_SAMPLE = 65536  # prefilter sample size; only speed depends on it, never the result


def _row_topk(row: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of a 1-D tensor in the order (value desc, index asc).

    Returns ``(positions ascending, values)``, both ``(k,)``. A full selection over the
    16.8 M levels of a 4096 x 4096 layer costs ~0.5-1 s on two CPU cores, so long rows are
    prefiltered: a fixed-seed random sample gives a threshold ``t0`` that leaves about
    1.25 k candidates; when at least ``k`` values are ``>= t0`` the k-th largest value is
    ``>= t0`` too, so every member of the top-k (ties included) is a candidate and the
    result is exact. Otherwise it falls back to the whole row.
    """
    n = row.numel()
    if n > 4 * k and n > 4 * _SAMPLE:
        g = torch.Generator(device=row.device).manual_seed(0)
        sample = row[torch.randint(n, (_SAMPLE,), generator=g, device=row.device)]
        ks = min(_SAMPLE, int(math.ceil(1.25 * k * _SAMPLE / n)) + 32)
        t0 = sample.topk(ks).values[-1]
        pos = (row >= t0).nonzero()[:, 0]
        if pos.numel() >= k:
            return _topk_keep(row.index_select(0, pos), pos, k)
    return _topk_keep(row, torch.arange(n, device=row.device), k)


def _linear_topk_active(w: torch.Tensor, xi: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Top-k of ``w * xi`` looking only at the columns where ``xi != 0``; ``None`` if not exact.

    After a ReLU (and more so in trained networks) many inputs are exactly 0, and all their
    levels are 0. If the k-th largest level among the active columns is > 0, those zeros
    cannot enter the top-k, so the shortcut is exact; otherwise the caller falls back to
    the full band. Positions are flat indices into the ``(R, n_in)`` band, ascending.
    """
    active = torch.nonzero(xi).squeeze(1)  # ascending
    n_in = xi.numel()
    n_a = active.numel()
    if n_a == n_in or w.shape[0] * n_a < k:
        return None
    lv = w.index_select(1, active) * xi.index_select(0, active)
    pos_a, vals = _row_topk(lv.reshape(-1), k)
    if not bool(vals.min() > 0):
        return None
    # Row-major over (row, active column) with ascending columns keeps flat order ascending.
    return torch.div(pos_a, n_a, rounding_mode="floor") * n_in + active[pos_a % n_a], vals


def _select_instance_topk(module: nn.Module, x: torch.Tensor, in_groups: int | None, dense_w: torch.Tensor,
                          k: int, row_step: int, n_in: int, n_out: int,
                          level_sum: torch.Tensor | None, active: torch.Tensor | None = None,
                          reduction: str = "max") -> torch.Tensor:
    """Flat indices (1-D, instance after instance) of each instance's top-k levels.

    When ``level_sum`` is given the levels are added to it (conv layers: the max over the
    map has no shortcut; linear levels are summed from the summed inputs instead).
    ``active`` (``(b, n_out)`` bool) keeps an instance's levels into inactive receivers out of its
    top-k (and out of ``level_sum``); such an instance may then count fewer than ``k`` weights.
    """
    b = x.shape[0]
    cand_vals: list[list[torch.Tensor]] = [[] for _ in range(b)]
    cand_idx: list[list[torch.Tensor]] = [[] for _ in range(b)]
    plain_linear = isinstance(module, nn.Linear) and in_groups is None and level_sum is None
    for r0 in range(0, n_out, row_step):
        r1 = min(r0 + row_step, n_out)
        if plain_linear:
            for i in range(b):
                band, rows = dense_w[r0:r1], None
                if active is not None and not bool(active[i, r0:r1].all()):
                    rows = torch.nonzero(active[i, r0:r1]).squeeze(1)  # ascending: flat order is kept
                    if rows.numel() == 0:
                        continue
                    band = band.index_select(0, rows)
                kk = min(k, band.shape[0] * n_in)
                found = _linear_topk_active(band, x[i], kk)
                if found is None:  # exact shortcut not applicable: all levels of this row band
                    found = _row_topk((band * x[i]).reshape(-1), kk)
                pos = found[0] if rows is None else rows[found[0] // n_in] * n_in + found[0] % n_in
                cand_idx[i].append(pos + r0 * n_in)
                cand_vals[i].append(found[1])
            continue
        lv = _level_chunk(module, x, in_groups, r0, r1, dense_w, reduction)  # (b, R, n_in)
        if active is not None:
            lv = lv.masked_fill(~active[:, r0:r1, None], float("-inf"))
        if level_sum is not None:
            if (isinstance(module, nn.Conv2d) and module.groups != 1) or active is not None:
                lv_sum = torch.where(torch.isfinite(lv), lv, torch.zeros((), dtype=lv.dtype, device=lv.device))
            else:
                lv_sum = lv
            level_sum[r0:r1] += lv_sum.sum(0).double()
        flat = lv.reshape(b, -1)
        kk = min(k, flat.shape[1])
        for i in range(b):
            pos, vals = _row_topk(flat[i], kk)
            cand_idx[i].append(pos + r0 * n_in)
            cand_vals[i].append(vals)
    out = []
    for i in range(b):
        if not cand_idx[i]:  # every receiver inactive on this instance
            continue
        vals = torch.cat(cand_vals[i])
        idx = torch.cat(cand_idx[i])  # ascending across chunks too
        # The global top-k is inside the union of the chunks' top-k (same total order).
        keep_idx, keep_vals = _topk_keep(vals, idx, k)
        # -inf marks no weight (across conv groups) or an inactive receiver: never counted
        out.append(keep_idx[keep_vals > float("-inf")] if active is not None else keep_idx)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def _active_linear_level_sum(module: nn.Module, x: torch.Tensor, active: torch.Tensor, in_groups: int | None,
                             budget: int) -> np.ndarray:
    """Summed levels of a linear layer counting each instance only where the receiver is active:
    ``sum_b a[b, n2] W[n2, f] x[b, f] = W[n2, f] (A^T X)[n2, f]`` (grouped per channel after a
    flatten), one matrix product per band of rows so that memory stays within ``budget``."""
    assert isinstance(module, nn.Linear)  # only linear layers take this path
    w64 = module.weight.detach().to(x.device, torch.float64)
    n_out, in_f = w64.shape
    n_in = in_f if in_groups is None else in_groups
    out = np.zeros((n_out, n_in), dtype=np.float64)
    x64, a64 = x.double(), active.double()
    step = max(1, budget // max(1, 16 * in_f))
    with torch.no_grad():
        for r0 in range(0, n_out, step):
            r1 = min(r0 + step, n_out)
            lv = (a64[:, r0:r1].T @ x64) * w64[r0:r1]
            if in_groups is not None:
                lv = lv.reshape(r1 - r0, in_groups, -1).sum(dim=2)
            out[r0:r1] = lv.cpu().numpy()
    return out


def receiver_activity(conductance: np.ndarray) -> np.ndarray:
    """The build's active-receiver rule: a neuron is active on an instance when its Layer Conductance
    there is non-zero (``analysis.active_receivers``).

    Why conductance rather than a positive pre-activation: (1) it is the quantity that made the neuron
    important (5.3.1 A), so "active" means "takes part in this instance's class score", which also rules
    out a unit that fires but whose output no later path carries to the class (max-pooled away, or behind
    dead units), where a positive pre-activation would still count it; (2) a ReLU unit that is off along
    the whole path from the baseline to the instance has exactly zero gradient, hence exactly zero
    conductance, so no threshold is needed; (3) it is already in the cache, for the analysed layer's own
    neurons, so no second forward pass or hook is needed. Conv neurons carry their max over the map: a
    channel counts as active when that max is non-zero.

    Args:
        conductance: ``(M, neurons)`` conductance of the receiving layer on the instances.

    Returns:
        ``(M, neurons)`` bool.
    """
    return np.asarray(np.asarray(conductance) != 0, dtype=bool)


def _infer_in_groups(mod_i: nn.Module, mod_j: nn.Module, layer_i: str, layer_j: str) -> tuple[int, int | None]:
    """Number of layer-i neurons and the ``in_groups`` for module j; validates the pairing."""
    n_i = _n_out(mod_i)
    if isinstance(mod_j, nn.Conv2d):
        if mod_j.in_channels != n_i:
            raise TransferVizError(f"weights: {layer_i} has {n_i} output channels but {layer_j} takes "
                                   f"{mod_j.in_channels}; the layers are not consecutive")
        return n_i, None
    if not isinstance(mod_j, nn.Linear):
        raise TransferVizError(f"weights: {layer_j} is {type(mod_j).__name__}, not nn.Conv2d or nn.Linear")
    if isinstance(mod_i, nn.Conv2d):
        if mod_j.in_features % n_i:
            raise TransferVizError(f"weights: {layer_j} takes {mod_j.in_features} features, not a multiple "
                                   f"of {layer_i}'s {n_i} channels; cannot group them per channel")
        return n_i, n_i
    if mod_j.in_features != n_i:
        raise TransferVizError(f"weights: {layer_i} has {n_i} units but {layer_j} takes "
                               f"{mod_j.in_features}; the layers are not consecutive")
    return n_i, None


def layer_in_groups(layer_i_shape: Sequence[int], mod_j: nn.Module, layer_i: str = "layer i",
                    layer_j: str = "layer j") -> tuple[int, int | None]:
    """Number of layer-i neurons and the ``in_groups`` of module j, from layer i's output shape
    (no batch dimension) -- for any layer i (a conv, a block, a linear layer) whose output reaches
    module j through per-channel operations only (:meth:`transferviz.graph.ModelGraph.link`).

    A linear module j after a 3-D (C, H, W) output that it takes flattened groups its ``C * H * W``
    features per channel (``in_groups = C``); after a global pooling it takes the C channels as they are.
    """
    shape = tuple(int(s) for s in layer_i_shape)
    if len(shape) not in (1, 3):
        raise TransferVizError(f"weights: {layer_i} has output shape {shape}, not (C, H, W) or (F,)")
    n_i = shape[0]
    if isinstance(mod_j, nn.Conv2d):
        if mod_j.in_channels != n_i:
            raise TransferVizError(f"weights: {layer_i} has {n_i} output channels but {layer_j} takes "
                                   f"{mod_j.in_channels}; they are not joined by its weights")
        return n_i, None
    if not isinstance(mod_j, nn.Linear):
        raise TransferVizError(f"weights: {layer_j} is {type(mod_j).__name__}, not nn.Conv2d or nn.Linear")
    if mod_j.in_features == n_i:
        return n_i, None
    if len(shape) == 3 and mod_j.in_features % n_i == 0:
        return n_i, n_i
    raise TransferVizError(f"weights: {layer_j} takes {mod_j.in_features} features, which do not split into "
                           f"{layer_i}'s {n_i} neurons")


def important_weights(model: nn.Module, layer_i: str, layer_j: str, inputs: torch.Tensor,
                      k_instance: int | None = None, k_class: int | None = None, *,
                      batch_size: int = 32, device: torch.device | str | None = None,
                      memory_budget_mb: float = 256, fraction: float = 0.1,
                      layer_i_shape: Sequence[int] | None = None,
                      receiver_active: np.ndarray | torch.Tensor | None = None,
                      reduction: str = "max") -> WeightResult:
    """Important weights between layers ``layer_i -> layer_j`` over the given instances.

    Args:
        model: the network (put in eval mode during the call, flag restored).
        layer_i: module path of layer i (``nn.Conv2d`` / ``nn.Linear``).
        layer_j: module path of the next analysed layer.
        inputs: ``(M, C, H, W)`` instances, usually one class's target instances (CPU or
            any device; batches are moved to the model's device for the forward pass).
        k_instance: per-instance top-k; default :func:`default_weight_k`.
        k_class: how many weights to return; default :func:`default_weight_k`.
        batch_size: instances per forward pass.
        device: where the levels are computed; default the model's device.
        memory_budget_mb: bound for one chunk of levels (rows and instances are chunked).
        fraction: neuron fraction for the default ``k``.
        layer_i_shape: layer i's output shape (no batch dimension) when the caller knows from the
            model's graph that module j's input comes from layer i's output through per-channel
            operations only (layer i may then be any module, a block too, and module j the conv or
            linear layer inside a block); without it layer i and j must be conv/linear modules that
            follow each other in registration order.
        receiver_active: optional ``(M, n_out)`` bool, whether receiving neuron ``n2`` is active on each
            instance. A weight then enters an instance's top ``k_instance`` (and its summed level) only
            when its receiving neuron is active there: a level W * x that a dead unit never passes on
            is no evidence that the weight matters (:func:`receiver_activity` is the build's rule).
        reduction: how a conv weight's level reduces over the output map (:data:`REDUCTIONS`; the
            paper's ``max``); linear layers have no map.

    Returns:
        :class:`WeightResult`; with ``M == 0`` the important-weight arrays are empty and the
        counts are zero.
    """
    modules = dict(model.named_modules())
    for name in (layer_i, layer_j):
        if name not in modules:
            raise TransferVizError(f"weights: the model has no module {name!r}")
    mod_i, mod_j = modules[layer_i], modules[layer_j]
    if layer_i_shape is not None:  # the graph says module j receives layer i's output, per channel
        n_in, in_groups = layer_in_groups(layer_i_shape, mod_j, layer_i, layer_j)
    else:
        # Without the graph: j must directly follow i in registration order, otherwise
        # "neuron n1 of layer i" would not be what module j receives.
        layer_order = [name for name, mod in model.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
        if (layer_i not in layer_order or layer_j not in layer_order
                or layer_order.index(layer_j) != layer_order.index(layer_i) + 1):
            raise TransferVizError(f"weights: {layer_i} -> {layer_j} are not consecutive conv/linear layers")
        n_in, in_groups = _infer_in_groups(mod_i, mod_j, layer_i, layer_j)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    n_out = _n_out(mod_j)
    mask = connection_mask(mod_j, in_groups)
    n_connected = int(mask.sum())
    k_default = default_weight_k(n_in, n_out, fraction)
    k_inst = min(int(k_instance if k_instance is not None else k_default), n_connected)
    k_cls = min(int(k_class if k_class is not None else k_default), n_connected)
    if k_inst < 1 or k_cls < 0:
        raise ValueError(f"k_instance must be >= 1 and k_class >= 0, got {k_instance}, {k_class}")

    model_device = next(model.parameters()).device
    dev = torch.device(device) if device is not None else model_device
    is_conv = isinstance(mod_j, nn.Conv2d)
    counts = torch.zeros(n_out * n_in, dtype=torch.int32, device=dev)
    # Conv levels (a max over the map) must be summed one by one; linear levels are linear in
    # x, so their sum over instances is the level of the summed input -- no (n_out, n_in)
    # accumulator pass over every instance is needed.
    level_sum = torch.zeros((n_out, n_in), dtype=torch.float64, device=dev) if is_conv else None
    x_sum: torch.Tensor | None = None
    m = int(inputs.shape[0])
    budget = int(memory_budget_mb * 2**20)
    active_all: torch.Tensor | None = None
    if receiver_active is not None:
        active_all = torch.as_tensor(np.asarray(receiver_active, dtype=bool), device=dev)
        if tuple(active_all.shape) != (m, n_out):
            raise ValueError(f"receiver_active must be (instances, {layer_j} neurons) = {(m, n_out)}, "
                             f"got {tuple(active_all.shape)}")
    kept: list[torch.Tensor] = []  # linear layers with receiver_active: the inputs, for the summed levels

    for s in range(0, m, max(1, batch_size)):
        xb = layer_inputs(model, layer_j, inputs[s:s + batch_size].to(model_device))
        x, dense_w = _prepare(mod_j, xb, in_groups, dev)
        if not is_conv and active_all is not None:
            kept.append(x)
        elif not is_conv:
            part = x.double().sum(0, keepdim=True)
            x_sum = part if x_sum is None else x_sum + part
        act = None if active_all is None else active_all[s:s + batch_size]
        row_cost = _row_cost_bytes(mod_j, x, n_in)
        per_instance = row_cost * n_out
        # Whole instances per chunk when they fit, otherwise one instance and a band of rows.
        sub_b = max(1, min(x.shape[0], budget // per_instance)) if per_instance <= budget else 1
        row_step = n_out if per_instance <= budget else max(1, budget // row_cost)
        with torch.no_grad():
            for t in range(0, x.shape[0], sub_b):
                idx = _select_instance_topk(mod_j, x[t:t + sub_b], in_groups, dense_w, k_inst, row_step,
                                            n_in, n_out, level_sum, None if act is None else act[t:t + sub_b],
                                            reduction)
                flat_idx = idx.reshape(-1)
                counts.index_add_(0, flat_idx, torch.ones(flat_idx.numel(), dtype=torch.int32, device=dev))

    counts_np = counts.reshape(n_out, n_in).cpu().numpy()
    if level_sum is not None:  # conv layers (is_conv)
        level_np = level_sum.cpu().numpy()
    elif kept and active_all is not None:
        level_np = _active_linear_level_sum(mod_j, torch.cat(kept), active_all, in_groups, budget)
    elif x_sum is not None:
        w64 = mod_j.weight.detach().to(dev, torch.float64)
        with torch.no_grad():
            level_np = _level_chunk(mod_j, x_sum, in_groups, 0, n_out, w64)[0].cpu().numpy()
    else:
        level_np = np.zeros((n_out, n_in), dtype=np.float64)
    values = weight_value_matrix(mod_j, in_groups)
    if m == 0 or k_cls == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return WeightResult(layer_i, layer_j, empty_i, empty_i.copy(), np.zeros(0, np.int32),
                            np.zeros(0, np.float32), np.zeros(0, np.float64), counts_np, values, m,
                            k_inst, k_cls)
    flat_counts = counts_np.reshape(-1)
    if not mask.all():
        flat_counts = np.where(mask.reshape(-1), flat_counts, -1)  # unconnected pairs sort last
    flat_levels = level_np.reshape(-1)
    # Only weights whose count reaches the k-th largest count can be selected. Counts are
    # small integers (<= M), so a bincount finds that threshold in one pass -- a partition or
    # a three-key lexsort over the 16.8 M weights of a 4096 x 4096 layer costs seconds.
    hist = np.bincount(flat_counts[flat_counts >= 0], minlength=m + 1)
    from_top = np.cumsum(hist[::-1])[::-1]  # from_top[c] = number of weights with count >= c
    c_star = int(np.flatnonzero(from_top >= k_cls).max())
    cand = np.flatnonzero(flat_counts >= c_star)
    order = cand[np.lexsort((cand, -flat_levels[cand], -flat_counts[cand].astype(np.int64)))][:k_cls]
    n2, n1 = np.divmod(order, n_in)
    return WeightResult(
        layer_i=layer_i, layer_j=layer_j,
        n1=n1.astype(np.int64), n2=n2.astype(np.int64),
        count=counts_np.reshape(-1)[order].astype(np.int32),
        value=values.reshape(-1)[order].astype(np.float32),
        level_sum=flat_levels[order].astype(np.float64),
        counts=counts_np, values=values, n_instances=m, k_instance=k_inst, k_class=k_cls,
    )


# --------------------------------------------------------------------- view regions


@dataclass(frozen=True)
class BoxStats:
    """Five-number summary of one box in Region (2)/(3), plus the raw values.

    Attributes:
        neuron: the important neuron the box belongs to.
        count: number of weights (the box's thickness); 0 gives NaN statistics.
        minimum, q1, median, q3, maximum: the five numbers (linear-interpolated quartiles).
        values: ``(count,)`` float32 weight values.
        non_corresponding: share of the box's weights without a source correspondence
            (the pie glyph), or ``None`` when no correspondence matrix was given.
    """

    neuron: int
    count: int
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    values: np.ndarray
    non_corresponding: float | None = None


@dataclass(frozen=True)
class WeightRegions:
    """The four weight regions of Figure 4 (C) for one layer pair.

    Attributes:
        block: Region (1), ``(len(important_out), len(important_in))`` values of weights joining
            important neurons on both sides, rows/cols in the given (rank) order.
        block_corresponds: ``bool`` like ``block`` (the red dots) or ``None``.
        by_out: Region (2), one :class:`BoxStats` per important layer-j neuron: its weights from
            the non-important layer-i neurons.
        by_in: Region (3), one per important layer-i neuron: its weights to the non-important
            layer-j neurons.
        hist_counts, bin_edges: Region (4), histogram of the weights between non-important
            neurons on both sides (``len(bin_edges) == len(hist_counts) + 1``).
    """

    block: np.ndarray
    block_corresponds: np.ndarray | None
    by_out: list[BoxStats]
    by_in: list[BoxStats]
    hist_counts: np.ndarray
    bin_edges: np.ndarray


def _box(neuron: int | np.integer, vals: np.ndarray, corr: np.ndarray | None) -> BoxStats:
    keep = np.isfinite(vals)  # NaN marks pairs across conv groups: no weight exists
    v = vals[keep].astype(np.float32)
    share = None
    if corr is not None:
        c = corr[keep]
        share = float(1.0 - c.mean()) if c.size else None
    if v.size == 0:
        nan = float("nan")
        return BoxStats(int(neuron), 0, nan, nan, nan, nan, nan, v, share)
    q = np.percentile(v.astype(np.float64), [0, 25, 50, 75, 100])
    return BoxStats(int(neuron), int(v.size), float(q[0]), float(q[1]), float(q[2]), float(q[3]), float(q[4]),
                    v, share)


def weight_regions(value_matrix: np.ndarray, important_in: Sequence[int], important_out: Sequence[int], *,
                   bins: int | np.ndarray = 20, correspondence: np.ndarray | None = None) -> WeightRegions:
    """Splits a layer pair's weights into the four regions the network relation view draws.

    Args:
        value_matrix: ``(n_out, n_in)`` weight values (:attr:`WeightResult.values`); NaN = no weight.
        important_in: important neurons of layer i, in rank order.
        important_out: important neurons of layer j, in rank order.
        bins: Region (4) histogram: a bin count (edges span the finite range of the *whole*
            matrix, so the source and target views can share a scale only if given explicit
            edges) or explicit edges.
        correspondence: optional ``(n_out, n_in)`` bool, True where the target weight has a
            corresponding important source weight
            (:func:`transferviz.analysis.similarity.correspondence_matrix`); fills the red
            dots and the pie shares.

    Returns:
        :class:`WeightRegions`.
    """
    vm = np.asarray(value_matrix, dtype=np.float64)
    if vm.ndim != 2:
        raise ValueError(f"value_matrix must be 2-D, got shape {vm.shape}")
    n_out, n_in = vm.shape
    imp_in = np.asarray(important_in, dtype=np.int64).reshape(-1)
    imp_out = np.asarray(important_out, dtype=np.int64).reshape(-1)
    if correspondence is not None:
        correspondence = np.asarray(correspondence, dtype=bool)
        if correspondence.shape != vm.shape:
            raise ValueError(f"correspondence shape {correspondence.shape} != value_matrix shape {vm.shape}")
    non_in = np.setdiff1d(np.arange(n_in), imp_in)
    non_out = np.setdiff1d(np.arange(n_out), imp_out)

    block = vm[np.ix_(imp_out, imp_in)].astype(np.float32)
    block_corr = correspondence[np.ix_(imp_out, imp_in)] if correspondence is not None else None
    by_out = [_box(n2, vm[n2, non_in], correspondence[n2, non_in] if correspondence is not None else None)
              for n2 in imp_out]
    by_in = [_box(n1, vm[non_out, n1], correspondence[non_out, n1] if correspondence is not None else None)
             for n1 in imp_in]

    rest = vm[np.ix_(non_out, non_in)].reshape(-1)
    rest = rest[np.isfinite(rest)]
    if np.ndim(bins) == 0:
        finite = vm[np.isfinite(vm)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    hist, edges = np.histogram(rest, bins=edges)
    return WeightRegions(block, block_corr, by_out, by_in, hist.astype(np.int64), edges.astype(np.float64))

"""PyTorch glue: the head's loss as an ``autograd.Function``.

Importable only where PyTorch is installed (it is never a dependency of this
package). The forward and the backward both run in the Rust library: the
forward computes the loss and both gradients at once, the backward scales
them by the incoming gradient. CPU tensors only.

>>> import torch, arcface.torch as at                      # doctest: +SKIP
>>> loss_mod = at.ArcFaceLoss(num_classes=10, in_channels=64)  # doctest: +SKIP
>>> loss = loss_mod(feats, labels); loss.backward()        # doctest: +SKIP

``ArcFaceLoss`` is an ``nn.Module`` whose parameter is
``norm_product.weight`` (shape ``(num_classes * num_subcenters,
in_channels)``), as in mmpretrain's head, so a ``torch.optim`` optimiser and
mmpretrain's checkpoints work with it unchanged.
"""

import numpy as np
import torch

from . import ArcFaceClsHead

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _numpy(t, name, dtype):
    if t.device.type != "cpu":
        raise ValueError(f"{name} must be a CPU tensor, got device {t.device}")
    if t.dtype != dtype:
        raise TypeError(f"{name} has dtype {t.dtype}, the head computes in {dtype}")
    return t.detach().contiguous().numpy()


class ArcFaceLossFunction(torch.autograd.Function):
    """``loss = ArcFaceLossFunction.apply(feats, weight, labels, head,
    soft_targets, sample_weight)``: the head's loss with the weight
    ``weight``; differentiable in ``feats`` and ``weight``. The loss must be
    a scalar (reduction ``'mean'`` or ``'sum'``)."""

    @staticmethod
    def forward(ctx, feats, weight, labels, head, soft_targets=None, sample_weight=None):
        dt = weight.dtype
        head.load_state_dict({"norm_product.weight": _numpy(weight, "weight", dt)})
        out = head.loss(
            _numpy(feats, "feats", dt),
            labels.detach().cpu().numpy().astype(np.int64, copy=False),
            None if soft_targets is None else _numpy(soft_targets, "soft_targets", dt),
            None if sample_weight is None else _numpy(sample_weight, "sample_weight", dt),
        )
        if not np.isscalar(out["loss"]):
            raise ValueError("ArcFaceLossFunction needs a scalar loss (reduction 'mean' or 'sum')")
        ctx.save_for_backward(
            torch.from_numpy(out["grad_feats"]), torch.from_numpy(out["grad_weight"])
        )
        return torch.tensor(out["loss"], dtype=dt)

    @staticmethod
    def backward(ctx, grad_out):
        grad_feats, grad_weight = ctx.saved_tensors
        return grad_out * grad_feats, grad_out * grad_weight, None, None, None, None


class ArcFaceLoss(torch.nn.Module):
    """mmpretrain's ``ArcFaceClsHead`` as a loss module: the constructor
    takes the head's arguments (``num_classes, in_channels, num_subcenters,
    scale, margins, easy_margin, loss``, and ``seed``, ``dtype`` a torch
    dtype); ``forward(feats, labels, soft_targets=None, weight=None)``
    returns the scalar loss; ``logits(feats)`` and ``predict(feats, topk)``
    run inference."""

    def __init__(self, num_classes, in_channels, *args, dtype=torch.float32, seed=0, **kwargs):
        super().__init__()
        if dtype not in _DTYPES:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.head = ArcFaceClsHead(
            num_classes, in_channels, *args, dtype=_DTYPES[dtype], seed=seed, **kwargs
        )
        w = self.head.state_dict()["norm_product.weight"]
        self.norm_product = torch.nn.Linear(in_channels, w.shape[0], bias=False, dtype=dtype)
        with torch.no_grad():
            self.norm_product.weight.copy_(torch.from_numpy(w))

    def forward(self, feats, labels, soft_targets=None, weight=None):
        return ArcFaceLossFunction.apply(
            feats, self.norm_product.weight, labels, self.head, soft_targets, weight
        )

    def _sync(self):
        w = self.norm_product.weight
        self.head.load_state_dict({"norm_product.weight": _numpy(w, "weight", w.dtype)})

    def logits(self, feats):
        self._sync()
        w = self.norm_product.weight
        return torch.from_numpy(self.head(_numpy(feats, "feats", w.dtype)))

    def predict(self, feats, topk=1):
        self._sync()
        w = self.norm_product.weight
        out = self.head.predict(_numpy(feats, "feats", w.dtype), topk=topk)
        return {k: torch.from_numpy(v) for k, v in out.items()}

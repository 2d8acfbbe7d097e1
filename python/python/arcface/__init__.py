"""mmpretrain's ArcFaceClsHead on the CPU, from the Rust crate ``arcface``.

>>> import numpy as np, arcface
>>> head = arcface.ArcFaceClsHead(num_classes=10, in_channels=64)
>>> x = np.random.default_rng(0).standard_normal((8, 64), dtype=np.float32)
>>> y = np.arange(8) % 10
>>> out = head.loss(x, y)
>>> sorted(out), out['grad_weight'].shape
(['grad_feats', 'grad_weight', 'loss'], (10, 64))

Arrays of floats are borrowed without a copy when they are C-contiguous and of
the head's dtype (``float32`` unless ``dtype=np.float64``); anything else is a
``TypeError`` or ``ValueError`` that says what to pass. Labels may be any
integer array or sequence (copied to int64 unless they already are a
C-contiguous int64 array). The GIL is released while the library computes.
Errors of the library are :class:`ArcFaceError`, a ``ValueError``.

``arcface.torch`` (importable when PyTorch is installed) wraps the head in an
``autograd.Function``.
"""

from ._native import (
    AdamW,
    ArcFaceClsHead,
    ArcFaceError,
    Optimizer,
    SGD,
    SplitMix64,
    Trainer,
    adaptive_margins,
    load_margins,
    simd_level,
)

__all__ = [
    "AdamW",
    "ArcFaceClsHead",
    "ArcFaceError",
    "Optimizer",
    "SGD",
    "SplitMix64",
    "Trainer",
    "adaptive_margins",
    "load_margins",
    "simd_level",
]
__version__ = "0.1.0"

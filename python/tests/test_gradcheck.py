"""The float64 head's gradients against central finite differences of its
own loss (numpy), for every loss option the head exposes."""

import numpy as np
import pytest

import arcface

CONFIGS = [
    dict(),
    dict(num_subcenters=3, margins=[0.1, 0.3, 0.5, 0.2]),
    dict(easy_margin=True, scale=16.0),
    dict(loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, mode="classy_vision")),
    dict(loss=dict(type="CrossEntropyLoss", class_weight=[0.5, 1.0, 2.0, 1.5], loss_weight=0.7)),
    dict(loss=dict(type="CrossEntropyLoss", reduction="sum")),
]


def fd_grad(f, a, h=1e-6):
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + h
        up = f()
        a[i] = old - h
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(kw) or "default")
@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_match_finite_differences(kw, weighted):
    rng = np.random.default_rng(7)
    c, d, n = 4, 6, 5
    head = arcface.ArcFaceClsHead(c, d, scale=kw.pop("scale", 8.0), dtype=np.float64, seed=3,
                                  **kw)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    w = head.state_dict()["norm_product.weight"].copy()
    out = head.loss(x, y, None, sw)

    def loss_at():
        head.load_state_dict({"norm_product.weight": w})
        return head.loss(x, y, None, sw, grad=False)["loss"]

    gx = fd_grad(loss_at, x)
    gw = fd_grad(loss_at, w)
    np.testing.assert_allclose(out["grad_feats"], gx, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["grad_weight"], gw, rtol=1e-5, atol=1e-7)


def test_soft_target_gradients():
    rng = np.random.default_rng(11)
    c, d, n = 3, 4, 4
    head = arcface.ArcFaceClsHead(c, d, scale=4.0, dtype=np.float64,
                                  loss=dict(type="CrossEntropyLoss", use_soft=True))
    x = rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    t = rng.dirichlet(np.ones(c), n)
    out = head.loss(x, y, t)
    gx = fd_grad(lambda: head.loss(x, y, t, grad=False)["loss"], x)
    np.testing.assert_allclose(out["grad_feats"], gx, rtol=1e-5, atol=1e-7)


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(2)
    h64 = arcface.ArcFaceClsHead(7, 16, 2, dtype=np.float64)
    h32 = arcface.ArcFaceClsHead(7, 16, 2, dtype=np.float32)
    h32.load_state_dict(h64.state_dict())
    x = rng.standard_normal((9, 16))
    y = rng.integers(0, 7, 9)
    a, b = h64.loss(x, y), h32.loss(x.astype(np.float32), y)
    assert b["grad_weight"].dtype == np.float32
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    for g in ("grad_feats", "grad_weight"):
        np.testing.assert_allclose(b[g], a[g], rtol=1e-3, atol=1e-5 * np.abs(a[g]).max())

"""arcface.torch: the autograd.Function against the head's own loss and
gradients, against mmpretrain's head written out in torch (torch's autograd
gives the reference gradients), and a torch.optim loop. Skipped where PyTorch is not installed
(the CI venv does not install it)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import arcface.torch as at  # noqa: E402


def test_autograd_matches_the_head():
    m = at.ArcFaceLoss(6, 16, 2, dtype=torch.float64, seed=1)
    assert list(m.state_dict()) == ["norm_product.weight"]
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((8, 16)), requires_grad=True)
    y = torch.tensor(rng.integers(0, 6, 8))
    loss = m(x, y)
    loss.backward()
    ref = m.head.loss(x.detach().numpy(), y.numpy())
    assert abs(loss.item() - ref["loss"]) < 1e-12
    np.testing.assert_allclose(x.grad.numpy(), ref["grad_feats"], rtol=1e-12)
    np.testing.assert_allclose(m.norm_product.weight.grad.numpy(), ref["grad_weight"], rtol=1e-12)


def test_gradcheck():
    m = at.ArcFaceLoss(4, 5, dtype=torch.float64, scale=4.0)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 3])
    f = lambda x, w: at.ArcFaceLossFunction.apply(x, w, y, m.head, None, None)
    assert torch.autograd.gradcheck(f, (x, m.norm_product.weight), eps=1e-6, atol=1e-6)


def test_torch_optim_loop_lowers_the_loss():
    m = at.ArcFaceLoss(5, 8, scale=16.0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.randn(32, 8)
    y = torch.arange(32) % 5
    first = m(x, y).item()
    for _ in range(20):
        opt.zero_grad()
        m(x, y).backward()
        opt.step()
    assert m(x, y).item() < first
    assert m.predict(x)["pred_label"].shape == (32,)


def _mmpretrain_loss(x, w, y, num_classes, k, scale, m, easy_margin):
    """mmpretrain 1.2.0's ArcFaceClsHead written out in torch (NormProduct,
    the margin with its th/mm fallback, CrossEntropyLoss with mean
    reduction), so torch's own autograd gives the reference gradients."""
    import math

    xn = torch.nn.functional.normalize(x, dim=1)
    wn = torch.nn.functional.normalize(w, dim=1)
    cos = xn @ wn.t()
    if k > 1:
        cos = cos.reshape(x.shape[0], num_classes, k).max(dim=2).values
    th, mm = math.cos(math.pi - m), math.sin(math.pi - m) * m
    cos_y = cos.gather(1, y[:, None])
    phi = torch.cos(torch.acos(cos_y) + m)
    if easy_margin:
        phi = torch.where(cos_y > 0, phi, cos_y)
    else:
        phi = torch.where(cos_y > th, phi, cos_y - mm)
    out = cos.scatter(1, y[:, None], phi) * scale
    return torch.nn.functional.cross_entropy(out, y)


@pytest.mark.parametrize("k,easy", [(1, False), (3, False), (2, True)])
def test_function_matches_mmpretrain_written_in_torch(k, easy):
    c, d, n, s, m = 7, 12, 10, 16.0, 0.5
    mod = at.ArcFaceLoss(c, d, k, scale=s, margins=m, easy_margin=easy, dtype=torch.float64, seed=3)
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(n, d, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randint(0, c, (n,), generator=gen)
    loss = mod(x, y)
    loss.backward()

    w_ref = mod.norm_product.weight.detach().clone().requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    ref = _mmpretrain_loss(x_ref, w_ref, y, c, k, s, m, easy)
    ref.backward()
    assert abs(loss.item() - ref.item()) < 1e-10 * max(1.0, abs(ref.item()))
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(mod.norm_product.weight.grad, w_ref.grad, rtol=1e-9, atol=1e-12)

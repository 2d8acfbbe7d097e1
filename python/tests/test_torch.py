"""arcface.torch: the autograd.Function against the head's own loss and
gradients, and a torch.optim loop. Skipped where PyTorch is not installed
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

"""The rest of the API: predict, margins, state_dict, checkpoints,
optimisers against their PyTorch update rules written in numpy, and the
GIL released during compute."""

import threading

import numpy as np
import pytest

import arcface


def batch(n=12, d=16, c=6, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, n)


def test_logits_and_predict_against_numpy():
    head = arcface.ArcFaceClsHead(6, 16, 2, scale=30.0, dtype=np.float64, seed=4)
    x, y = batch(dtype=np.float64)
    w = head.state_dict()["norm_product.weight"]
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        w / np.linalg.norm(w, axis=1, keepdims=True)).T
    want = 30.0 * cos.reshape(12, 6, 2).max(axis=2)
    np.testing.assert_allclose(head(x), want, rtol=1e-12, atol=1e-12)
    p = head.predict(x, topk=3)
    e = np.exp(want - want.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p["pred_score"], e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(p["pred_label"], want.argmax(axis=1))
    np.testing.assert_array_equal(p["topk_labels"], np.argsort(-want, axis=1, kind="stable")[:, :3])
    # training logits: the margin at the label only
    lt = head(x, y)
    mask = np.eye(6, dtype=bool)[y]
    np.testing.assert_allclose(lt[~mask], want[~mask], rtol=1e-12)
    c = np.clip(want[mask] / 30.0, -1, 1)
    np.testing.assert_allclose(lt[mask], 30.0 * np.where(
        c > -np.cos(0.5), np.cos(np.arccos(c) + 0.5), c - 0.5 * np.sin(0.5)), rtol=1e-10)


def test_margins_float_sequence_file_and_hook(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("0.1\n0.2\n0.3\n")
    a = arcface.ArcFaceClsHead(3, 4, margins=path)
    np.testing.assert_array_equal(a.margins, [0.1, 0.2, 0.3])
    a.set_margins(0.4)
    np.testing.assert_array_equal(a.margins, [0.4] * 3)
    a.set_margins((0.5, 0.6, 0.7))
    np.testing.assert_array_equal(a.margins, [0.5, 0.6, 0.7])
    a.set_margins(str(path))
    np.testing.assert_array_equal(a.margins, [0.1, 0.2, 0.3])
    labels = np.array([0] * 8 + [1] * 2 + [2])
    a.set_adaptive_margins(labels, margin_min=0.1, margin_max=0.5, power=-0.25)
    pf = np.array([8.0, 2.0, 1.0]) ** -0.25
    np.testing.assert_allclose(a.margins, (pf - pf.min()) / (pf.max() - pf.min()) * 0.4 + 0.1,
                               rtol=1e-12)
    with pytest.raises(arcface.ArcFaceError):
        a.set_margins([0.1, np.nan, 0.2])
    np.testing.assert_allclose(a.margins, (pf - pf.min()) / (pf.max() - pf.min()) * 0.4 + 0.1,
                               rtol=1e-12)


def test_state_dict_round_trip_and_strict():
    a = arcface.ArcFaceClsHead(6, 16, seed=1)
    b = arcface.ArcFaceClsHead(6, 16, seed=2)
    sd = a.state_dict()
    assert list(sd) == ["norm_product.weight"] and sd["norm_product.weight"].shape == (6, 16)
    b.load_state_dict(sd)
    x, _ = batch()
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(KeyError):
        b.load_state_dict({**sd, "extra": 1})
    b.load_state_dict({**sd, "extra": 1}, strict=False)
    with pytest.raises(ValueError):
        b.load_state_dict({"norm_product.weight": np.zeros((5, 16))})


def test_checkpoint_save_load(tmp_path):
    a = arcface.ArcFaceClsHead(6, 16, 2, scale=32.0, margins=[0.1] * 6, seed=5,
                               loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1))
    a.save(tmp_path / "h.safetensors")
    b = arcface.ArcFaceClsHead.load(tmp_path / "h.safetensors")
    assert (b.num_classes, b.num_subcenters, b.scale) == (6, 2, 32.0)
    assert b.loss_cfg["type"] == "LabelSmoothLoss"
    x, y = batch()
    np.testing.assert_array_equal(a(x), b(x))
    assert a.loss(x, y)["loss"] == b.loss(x, y)["loss"]
    with pytest.raises(arcface.ArcFaceError):
        arcface.ArcFaceClsHead.load(tmp_path / "missing.safetensors")


def test_sgd_matches_torch_rule():
    head = arcface.ArcFaceClsHead(6, 16, dtype=np.float64, seed=3)
    opt = arcface.SGD(head, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    w = head.state_dict()["norm_product.weight"].copy()
    buf = None
    for step in range(3):
        x, y = batch(seed=step, dtype=np.float64)
        g = head.loss(x, y)["grad_weight"] + 1e-3 * w
        buf = g if buf is None else 0.9 * buf + g
        w = w - 0.05 * (g + 0.9 * buf)
        opt.step()
    assert opt.steps == 3
    np.testing.assert_allclose(head.state_dict()["norm_product.weight"], w, rtol=1e-12)


def test_adamw_matches_torch_rule(tmp_path):
    head = arcface.ArcFaceClsHead(6, 16, dtype=np.float64, seed=3)
    opt = arcface.AdamW(head, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    w = head.state_dict()["norm_product.weight"].copy()
    m = v = 0
    for t in range(1, 4):
        x, y = batch(seed=t, dtype=np.float64)
        g = head.loss(x, y)["grad_weight"]
        opt.step()
        w = w * (1 - 1e-2 * 0.1)
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        w = w - 1e-2 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-6)
    np.testing.assert_allclose(head.state_dict()["norm_product.weight"], w, rtol=1e-10)
    # the state survives a save and load
    opt.save(tmp_path / "o.safetensors")
    other = arcface.AdamW(head)
    other.load(tmp_path / "o.safetensors")
    assert other.steps == 3
    x, y = batch(seed=9, dtype=np.float64)
    head.loss(x, y)
    opt.step()
    w1 = head.state_dict()["norm_product.weight"]
    head.load_state_dict({"norm_product.weight": w})
    head.loss(x, y)
    other.lr = opt.lr
    other.step()
    np.testing.assert_allclose(head.state_dict()["norm_product.weight"], w1, rtol=1e-12)


def test_step_with_explicit_gradient_and_dtype_check():
    head = arcface.ArcFaceClsHead(6, 16, seed=3)
    opt = arcface.SGD(head, lr=1.0, momentum=0.0, weight_decay=0.0)
    w = head.state_dict()["norm_product.weight"]
    g = np.full((6, 16), 0.5, dtype=np.float32)
    opt.step(g)
    np.testing.assert_allclose(head.state_dict()["norm_product.weight"], w - 0.5)
    with pytest.raises(TypeError):
        opt.step(g.astype(np.float64))


def test_gil_is_released_during_compute():
    """Two threads each drive their own head; with the GIL held during the
    step they would run one after the other, and the other thread's
    pure-Python counter would not move while a step runs."""
    head = arcface.ArcFaceClsHead(2000, 256, seed=0)
    x, y = batch(n=256, d=256, c=2000)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=count)
    t.start()
    before = len(ticks)
    for _ in range(3):
        head.loss(x, y)
    during = len(ticks) - before
    done.set()
    t.join()
    assert during > 1000


def test_concurrent_use_of_one_head_is_refused_not_racy():
    head = arcface.ArcFaceClsHead(4000, 256, seed=0)
    x, y = batch(n=256, d=256, c=4000)
    errors = []

    def run():
        try:
            for _ in range(3):
                head.loss(x, y)
        except RuntimeError as e:
            errors.append(e)

    ts = [threading.Thread(target=run) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all("borrow" in str(e).lower() for e in errors)


def test_split_mix64_is_the_library_generator():
    r = arcface.SplitMix64(0)
    # SplitMix64's published first output for seed 0
    assert r.next_u64() == 0xE220A8397B1DCDAF
    a = np.arange(10, dtype=np.int64)
    arcface.SplitMix64(1).shuffle(a)
    assert sorted(a.tolist()) == list(range(10)) and a.tolist() != list(range(10))


def test_loss_into_caller_buffers():
    head = arcface.ArcFaceClsHead(6, 16, seed=3)
    x, y = batch()
    want = head.loss(x, y)
    gf, gw = np.empty((12, 16), np.float32), np.empty((6, 16), np.float32)
    got = head.loss(x, y, out=(gf, gw))
    assert got["grad_feats"] is gf and got["grad_weight"] is gw
    np.testing.assert_array_equal(gf, want["grad_feats"])
    np.testing.assert_array_equal(gw, want["grad_weight"])
    with pytest.raises(ValueError):
        head.loss(x, y, out=(gf[:5], gw))
    gw.flags.writeable = False
    with pytest.raises(ValueError, match="cannot be written"):
        head.loss(x, y, out=(gf, gw))


def test_enrol_and_retire():
    head = arcface.ArcFaceClsHead(3, 8, margins=0.3, dtype=np.float64, seed=0)
    opt = arcface.SGD(head, lr=0.1)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 8)), np.array([0, 1, 2, 0, 1, 2])
    head.loss(x, y)
    opt.step()
    emb = rng.standard_normal((4, 8)) + 3.0
    new = head.enrol(emb)
    assert new == 3 and head.num_classes == 4
    # K = 1: the new row points along the mean of the normalised embeddings
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    row = head.state_dict()["norm_product.weight"][3]
    np.testing.assert_allclose(row / np.linalg.norm(row), u.mean(0) / np.linalg.norm(u.mean(0)),
                               rtol=1e-10)
    assert head.predict(u.mean(0, keepdims=True))["pred_label"][0] == 3
    assert head.enrol_many(rng.standard_normal((4, 8)), [0, 0, 1, 1]) == [4, 5]
    # training goes on with the grown head; the optimiser follows it
    y2 = np.array([0, 1, 2, 3, 4, 5])
    head.loss(x, y2)
    opt.step()
    head.retire([1, 4])
    assert head.retired == [1, 4] and head.is_retired(1) and not head.is_retired(0)
    z = head(x)
    assert np.isneginf(z[:, [1, 4]]).all()
    assert not np.isin(head.predict(x, topk=4)["topk_labels"], [1, 4]).any()
    with pytest.raises(arcface.ArcFaceError):
        head.loss(x, y2)  # a label names a retired class
    with pytest.raises(arcface.ArcFaceError):
        head.retire([1])  # already retired
    with pytest.raises(ValueError):
        head.enrol(np.zeros((2, 7)))

"""Bad arrays are refused with a clear exception, and nothing changes."""

import numpy as np
import pytest

import arcface


@pytest.fixture
def head():
    return arcface.ArcFaceClsHead(5, 8, seed=1)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 8), dtype=np.float32), np.array([0, 1, 2, 3, 4, 0])


def test_wrong_dtype(head, data):
    x, y = data
    with pytest.raises(TypeError, match="float64.*float32"):
        head.loss(x.astype(np.float64), y)
    with pytest.raises(TypeError, match="numpy array"):
        head.loss(x.tolist(), y)
    with pytest.raises(TypeError, match="integers"):
        head.loss(x, y.astype(np.float32))


def test_non_contiguous(head, data):
    x, y = data
    wide = np.zeros((6, 16), dtype=np.float32)
    wide[:, ::2] = x
    with pytest.raises(ValueError, match="C-contiguous"):
        head.loss(wide[:, ::2], y)
    with pytest.raises(ValueError, match="C-contiguous"):
        head(np.asfortranarray(x))


def test_wrong_shape(head, data):
    x, y = data
    with pytest.raises(ValueError, match=r"expected \(N, 8\)"):
        head.loss(x[:, :7].copy(), y)
    with pytest.raises(ValueError, match="shape"):
        head.loss(x.ravel(), y)
    with pytest.raises(ValueError, match="labels has 5 entries but feats has 6 rows"):
        head.loss(x, y[:5])
    with pytest.raises(ValueError, match="soft_targets"):
        head.loss(x, y, np.zeros((6, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="weight"):
        head.loss(x, y, None, np.ones(5, dtype=np.float32))


def test_nan_and_bad_labels_change_nothing(head, data):
    x, y = data
    before = head.state_dict()["norm_product.weight"]
    bad = x.copy()
    bad[2, 3] = np.nan
    with pytest.raises(arcface.ArcFaceError, match="row 2, column 3"):
        head.loss(bad, y)
    with pytest.raises(arcface.ArcFaceError):
        head.loss(x, np.array([0, 1, 2, 3, 9, 0]))
    with pytest.raises(arcface.ArcFaceError):
        head.loss(x, y, None, np.full(6, np.inf, dtype=np.float32))
    opt = arcface.SGD(head)
    with pytest.raises(arcface.ArcFaceError, match="no gradient"):
        opt.step()  # the failed calls left no gradient
    np.testing.assert_array_equal(head.state_dict()["norm_product.weight"], before)


def test_errors_are_value_errors_with_the_library_message():
    assert issubclass(arcface.ArcFaceError, ValueError)
    with pytest.raises(arcface.ArcFaceError, match="num_subcenters"):
        arcface.ArcFaceClsHead(5, 8, 0)
    with pytest.raises(arcface.ArcFaceError, match="margins"):
        arcface.ArcFaceClsHead(5, 8, margins=[0.1, 0.2])
    with pytest.raises(arcface.ArcFaceError, match="has no parameter"):
        arcface.ArcFaceClsHead(5, 8, loss=dict(type="CrossEntropyLoss", smoothing=0.1))
    with pytest.raises(arcface.ArcFaceError, match="not implemented"):
        arcface.ArcFaceClsHead(5, 8, loss=dict(type="FocalLoss"))
    with pytest.raises(TypeError, match=".txt"):
        arcface.ArcFaceClsHead(5, 8, margins="margins.csv")


def test_labels_may_be_any_integer_sequence(head, data):
    x, y = data
    a = head.loss(x, y)["loss"]
    assert head.loss(x, y.tolist())["loss"] == a
    assert head.loss(x, y.astype(np.int32))["loss"] == a
    assert head.loss(x, y[::-1].copy()[::-1])["loss"] == a  # strided int64: copied

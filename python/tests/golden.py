"""Reading the golden case files (tests/golden/FORMAT.md) and the comparison
rule: per row, |a - b| <= rtol * max(max |b| over the row's finite entries,
floor); entries whose expected value is not finite are not compared. The same
rule and tolerances as the Rust golden test (tests/common/golden/)."""

import json
import math
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden"


def case_files():
    return sorted(GOLDEN.glob("*.json"))


def load(path):
    return json.loads(Path(path).read_text())


def num(v):
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]
    return float(v)


def raises(v):
    return isinstance(v, str) and v.startswith("raises:")


def tensor(v):
    shape = v["shape"]
    data = np.array([num(x) for x in v["data"]], dtype=np.float64)
    return data.reshape(shape)


def flat(v):
    if isinstance(v, (int, float, str)):
        return np.array([num(v)])
    if isinstance(v, dict):
        return tensor(v).ravel()
    return np.array([num(x) for x in v], dtype=np.float64)


def labels_of(v):
    data = v["data"] if isinstance(v, dict) else v
    return np.array(data, dtype=np.int64)


def compare(field, got, want, floor, rtol, skip=()):
    """The worst normalised error; AssertionError naming the first failing
    entry. `floor(r)` is the row's floor; rows in `skip` are not compared."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.size == want.size, f"{field}: {got.size} values, expected {want.size}"
    if want.ndim < 2:
        got, want = got.reshape(1, -1), want.reshape(1, -1)
    worst = 0.0
    for r, (g, w) in enumerate(zip(got, want)):
        if r in skip:
            continue
        fin = np.isfinite(w)
        scale = max([floor(r)] + list(np.abs(w[fin])))
        err = np.abs(g[fin] - w[fin]) / scale
        bad = ~(err <= rtol)
        assert not bad.any(), (
            f"{field}[{r}]: got {g[fin][bad][0]!r}, expected {w[fin][bad][0]!r} "
            f"(normalised error {err[bad][0]:.3e} > {rtol:e})"
        )
        if err.size:
            worst = max(worst, float(err.max()))
    return worst


# ---------------------------------------------------------------- references
# Independent f64 transcriptions of the documented maths (the Rust test's
# tests/common/golden/reference.rs), for where a documented deviation decides.


def _normalize(v):
    n = np.maximum(np.sqrt((v * v).sum(axis=-1, keepdims=True)), 1e-12)
    return v / n


def ref_logits_train(x, w, labels, c, k, scale, easy, margins):
    """Training logits with the D1 policy: cosine clamped to [-1, 1] in the
    label's column, the margin only there."""
    cos = (_normalize(x) @ _normalize(w).T).reshape(len(x), c, k).max(axis=2)
    out = cos.copy()
    for i, y in enumerate(labels):
        cc = min(max(cos[i, y], -1.0), 1.0)
        m = margins[y]
        take = cc > 0.0 if easy else cc > -math.cos(m)
        if take:
            out[i, y] = math.cos(math.acos(cc) + m)
        else:
            out[i, y] = cc if easy else cc - m * math.sin(m)
    return scale * out


def target_rows(n, c, labels, soft, loss):
    t = np.array(soft, dtype=np.float64) if soft is not None else np.eye(c)[labels]
    if loss.get("type") == "LabelSmoothLoss":
        e = float(loss["label_smooth_val"])
        if loss.get("mode", "original") == "classy_vision":
            e = e / (1.0 + e)
        t = t * (1.0 - e) + e / c
    return t


def sample_ce(z, targets, class_weight):
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return (class_weight * targets * (lse - z)).sum(axis=1)


def hook_reference(labels, c, lo, hi, p):
    cnt = np.bincount(labels, minlength=c).astype(np.float64)
    pf = np.maximum(cnt, 1.0) ** p
    mn, mx = pf.min(), pf.max()
    if mx == mn:
        return np.full(c, hi)
    return (pf - mn) / (mx - mn) * (hi - lo) + lo

//! f64 oracles: plain loops that define what each kernel computes, one per
//! kernel (the kernel's name in each doc). The tests run every kernel at
//! every width, in f32 and f64, against these.
//!
//! Optional target weights ([`VRow`](super::VRow)) appear here as a full row
//! (zeros, or the uniform value repeated).

/// [`SumSq`](super::SumSq): $\sum_j x_j^2$.
pub fn sumsq(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// [`RowSumSq`](super::RowSumSq): [`sumsq`] of each of `rows` rows of `d`.
pub fn row_sumsq(x: &[f64], d: usize, rows: usize) -> Vec<f64> {
    (0..rows).map(|r| sumsq(&x[r * d..(r + 1) * d])).collect()
}

/// [`Dot`](super::Dot): $\sum_j a_j b_j$.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// [`DivInto`](super::rows::DivInto) and [`DivInPlace`](super::DivInPlace):
/// `x[j] / k`.
pub fn div(x: &[f64], k: f64) -> Vec<f64> {
    x.iter().map(|v| v / k).collect()
}

/// [`DivRows`](super::DivRows): row `i` of `d` divided by `k[i]`.
pub fn div_rows(x: &[f64], d: usize, k: &[f64]) -> Vec<f64> {
    k.iter()
        .enumerate()
        .flat_map(|(i, &k)| div(&x[i * d..(i + 1) * d], k))
        .collect()
}

/// [`ProjectOut`](super::ProjectOut): `a · (g − c² (v·g) v)`, and `a · g`
/// when `c = 0`.
pub fn project_out(g: &[f64], v: &[f64], a: f64, c: f64) -> Vec<f64> {
    let d = if c == 0.0 { 0.0 } else { c * c * dot(g, v) };
    g.iter().zip(v).map(|(g, v)| a * (g - d * v)).collect()
}

/// [`ProjectRows`](super::ProjectRows): [`project_out`] on each row of `d`,
/// with `a_i = 1` when `a` is `None`.
pub fn project_rows(g: &[f64], v: &[f64], d: usize, a: Option<&[f64]>, c: &[f64]) -> Vec<f64> {
    c.iter()
        .enumerate()
        .flat_map(|(i, &c)| {
            let rows = i * d..(i + 1) * d;
            project_out(&g[rows.clone()], &v[rows], a.map_or(1.0, |a| a[i]), c)
        })
        .collect()
}

/// [`RowMax`](super::RowMax): $\max_j x_j$, −∞ for an empty row.
pub fn row_max(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// [`ExpShiftSum`](super::ExpShiftSum): `exp(x[j] − shift)` and their sum.
pub fn exp_shift(x: &[f64], shift: f64) -> (Vec<f64>, f64) {
    let e: Vec<f64> = x.iter().map(|v| (v - shift).exp()).collect();
    let s = e.iter().sum();
    (e, s)
}

/// [`ExpSumInto`](super::ExpSumInto): `z' = exp(z − m)` and `sum + z'`, lane
/// by lane.
pub fn exp_sum_into(z: &[f64], m: &[f64], sum: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let e: Vec<f64> = z.iter().zip(m).map(|(z, m)| (z - m).exp()).collect();
    let s = sum.iter().zip(&e).map(|(s, e)| s + e).collect();
    (e, s)
}

/// [`ScaleDiv`](super::ScaleDiv): `(x[j] / n) · k` (its running maximum is
/// [`max_into`]).
pub fn scale_div(x: &[f64], n: f64, k: f64) -> Vec<f64> {
    x.iter().map(|v| (v / n) * k).collect()
}

/// [`MaxInto`](super::MaxInto): `max(m[j], x[j])`.
pub fn max_into(m: &[f64], x: &[f64]) -> Vec<f64> {
    m.iter().zip(x).map(|(m, x)| m.max(*x)).collect()
}

/// [`GapInto`](super::GapInto): `gap + v · (m − z)`, lane by lane.
pub fn gap_into(gap: &[f64], v: &[f64], m: &[f64], z: &[f64]) -> Vec<f64> {
    (0..gap.len())
        .map(|j| gap[j] + v[j] * (m[j] - z[j]))
        .collect()
}

/// [`ColGrad`](super::ColGrad): `(pc · e − q · v) · w`, lane by lane.
pub fn col_grad(e: &[f64], pc: &[f64], q: &[f64], v: &[f64], w: f64) -> Vec<f64> {
    (0..e.len())
        .map(|j| (pc[j] * e[j] - q[j] * v[j]) * w)
        .collect()
}

/// [`SubcentreMax`](super::SubcentreMax): for each sample `i`, the quotients
/// `rows_j[i] / norms[j]` as the element type rounds them (`round`), their
/// maximum times `k`, and the lowest `j` that reaches it.
pub fn subcentre_max(
    rows: &[f64],
    norms: &[f64],
    k: f64,
    round: impl Fn(f64) -> f64,
) -> (Vec<f64>, Vec<usize>) {
    let len = rows.len() / norms.len();
    (0..len)
        .map(|i| {
            let q = |j: usize| round(rows[j * len + i] / norms[j]);
            let arg = (1..norms.len()).fold(0, |best, j| if q(j) > q(best) { j } else { best });
            (q(arg) * k, arg)
        })
        .unzip()
}

/// [`Expand`](super::Expand): `g · w` where `kidx == j`, else 0.
pub fn expand(g: &[f64], kidx: &[usize], j: usize, w: f64) -> Vec<f64> {
    g.iter()
        .zip(kidx)
        .map(|(g, &k)| if k == j { g * w } else { 0.0 })
        .collect()
}

/// [`SmallForward`](super::SmallForward): `pt[r·n + i] = w_r · x_i` for
/// every row `w_r` of `w` and sample `x_i` of `xs` (rows of `d`).
pub fn small_forward(w: &[f64], xs: &[f64], d: usize, n: usize) -> Vec<f64> {
    let rows = w.len() / d;
    let mut pt = Vec::with_capacity(rows * n);
    for r in 0..rows {
        for i in 0..n {
            pt.push(dot(&w[r * d..(r + 1) * d], &xs[i * d..(i + 1) * d]));
        }
    }
    pt
}

/// [`SmallBackward`](super::SmallBackward) over the rows of `w` (rows of
/// `d`), with `g` the block's rows of G'ᵀ (`n` factors per row): the weight
/// gradient rows `project_out(Σ_i g_ri x_i, w_r, 1, proj_r)`, and
/// `acc_i + Σ_r g_ri w_r`.
pub fn small_backward(
    w: &[f64],
    proj: &[f64],
    g: &[f64],
    xs: &[f64],
    d: usize,
    n: usize,
    acc: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let rows = proj.len();
    let gw = (0..rows)
        .flat_map(|r| {
            let q: Vec<f64> = (0..d)
                .map(|j| (0..n).map(|i| g[r * n + i] * xs[i * d + j]).sum())
                .collect();
            project_out(&q, &w[r * d..(r + 1) * d], 1.0, proj[r])
        })
        .collect();
    let acc = (0..n * d)
        .map(|ij| {
            let (i, j) = (ij / d, ij % d);
            acc[ij] + (0..rows).map(|r| g[r * n + i] * w[r * d + j]).sum::<f64>()
        })
        .collect();
    (gw, acc)
}

/// [`HalfForward`](super::HalfForward)'s products `scale_r · (w_r · x_i)`, at
/// `r·n + i` (rows × n; the kernel stores them n × rows),
/// over rows of `d` values (the halves' exact values).
pub fn half_forward(w: &[f64], xs: &[f64], scale: &[f64], d: usize, n: usize) -> Vec<f64> {
    let rows = scale.len();
    let mut out = vec![0.0; rows * n];
    for r in 0..rows {
        for i in 0..n {
            out[r * n + i] = scale[r] * dot(&w[r * d..(r + 1) * d], &xs[i * d..(i + 1) * d]);
        }
    }
    out
}

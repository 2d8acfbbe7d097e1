//! Seeded, deterministic spherical k-means of unit vectors (the sub-centres
//! of a class enrolled into a head with K > 1); the rules are in
//! [`spherical_kmeans`]'s documentation.

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// The result of [`spherical_kmeans`].
///
/// ```
/// let u = [1.0, 0.0, 0.0, 1.0];
/// let km = arcface::spherical_kmeans(&u, 2, 2, 0, 10).unwrap();
/// assert_eq!(km.sizes(), vec![1, 1]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SphericalKMeans {
    /// The k unit centres, k×D row-major, ordered by cluster size
    /// (largest first, then by first member).
    pub centres: Vec<f64>,
    /// The centre of each row (an index into `centres`).
    pub assignment: Vec<usize>,
    /// The objective $J$ of each assignment step: after seeding, then after
    /// each update of the centres (the last entry is that of `centres` and
    /// `assignment`).
    pub objective: Vec<f64>,
    /// D, the row length of `centres`.
    pub dim: usize,
}

impl SphericalKMeans {
    /// The number of rows assigned to each centre (largest first).
    ///
    /// ```
    /// let u = [1.0, 0.0, 0.99, 0.141, 0.0, 1.0];
    /// let km = arcface::spherical_kmeans(&u, 2, 2, 3, 10).unwrap();
    /// assert_eq!(km.sizes(), vec![2, 1]);
    /// ```
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![0; self.centres.len() / self.dim.max(1)];
        for &a in &self.assignment {
            s[a] += 1;
        }
        s
    }
}

/// Spherical k-means of the `n` rows of `unit` (n×`d`, each of norm 1) into
/// `k` clusters (1 ≤ k ≤ n), seeded with `seed`, for at most `iters` Lloyd
/// iterations. Errors: a shape that does not fit, k = 0 or k > n, a row
/// that is not finite.
///
/// The algorithm is Dhillon & Modha's (2001), in f64.
///
/// For unit rows $u_i$ and unit centres $c_j$ the objective is
/// $$J = \sum_i \bigl(1 - u_i \cdot c_{a(i)}\bigr),$$
/// the cosine distance to the assigned centre. Each Lloyd iteration lowers it
/// or leaves it: the assignment step gives every row its most similar centre
/// (the lowest index on ties), and the update step sets each centre to the
/// normalised mean of its rows, the unit vector that maximises
/// $\sum_{i \in j} u_i \cdot c$ (Cauchy–Schwarz). A centre whose cluster is
/// empty, or whose rows sum to zero, keeps its value. The loop stops when no
/// assignment changes, or after the given number of iterations.
///
/// Seeding is k-means++ (Arthur & Vassilvitskii, 2007) on the squared chord
/// distance $\lVert u - c\rVert^2 = 2 - 2\,u\cdot c$: the first centre is a
/// row drawn uniformly, each next one a row drawn with probability
/// proportional to its distance to the nearest centre chosen so far (a row
/// not yet chosen, uniformly, when every distance is 0), all from
/// [`SplitMix64`] with the given seed. Same input and seed, same bits.
///
/// ```
/// // two tight groups on the circle
/// let u: Vec<f64> = [0.0f64, 0.1, 0.05, 3.0, 3.1]
///     .iter()
///     .flat_map(|a| [a.cos(), a.sin()])
///     .collect();
/// let km = arcface::spherical_kmeans(&u, 2, 2, 7, 20).unwrap();
/// assert_eq!(km.assignment[0], km.assignment[1]);
/// assert_ne!(km.assignment[0], km.assignment[3]);
/// assert!(km.objective.windows(2).all(|w| w[1] <= w[0]));
/// ```
pub fn spherical_kmeans(
    unit: &[f64],
    d: usize,
    k: usize,
    seed: u64,
    iters: usize,
) -> Result<SphericalKMeans> {
    if d == 0 || !unit.len().is_multiple_of(d) {
        return Err(Error::Shape {
            what: "unit rows",
            expected: unit.len().div_ceil(d.max(1)) * d.max(1),
            got: unit.len(),
        });
    }
    let n = unit.len() / d;
    if k == 0 || k > n {
        return Err(crate::config::invalid(
            "k",
            format!("is {k}; spherical k-means of {n} rows needs 1 ≤ k ≤ {n}"),
        ));
    }
    crate::error::check_finite("unit rows", unit, d)?;
    let rows = |i: usize| &unit[i * d..(i + 1) * d];
    let mut centres = seed_centres(unit, d, k, seed);
    let mut assignment = vec![usize::MAX; n];
    let mut objective = Vec::new();
    let mut sums = vec![0.0; k * d];
    for it in 0..=iters {
        let (changed, j) = assign(unit, d, &centres, &mut assignment);
        objective.push(j);
        if (it > 0 && !changed) || it == iters {
            break;
        }
        sums.fill(0.0);
        for (i, &a) in assignment.iter().enumerate() {
            for (s, &v) in sums[a * d..(a + 1) * d].iter_mut().zip(rows(i)) {
                *s += v;
            }
        }
        for (c, s) in centres.chunks_exact_mut(d).zip(sums.chunks_exact(d)) {
            // empty or cancelling cluster: the centre stays
            if let Some(u) = normalised(s) {
                c.copy_from_slice(&u);
            }
        }
    }
    Ok(order_by_size(centres, assignment, objective, d, k))
}

/// k-means++ seeding on the squared chord distance (see the module docs).
fn seed_centres(unit: &[f64], d: usize, k: usize, seed: u64) -> Vec<f64> {
    let n = unit.len() / d;
    let row = |i: usize| &unit[i * d..(i + 1) * d];
    let mut rng = SplitMix64::new(seed);
    let mut chosen = Vec::with_capacity(k);
    chosen.push(rng.below(n));
    // distance of each row to its nearest chosen centre
    let mut dist: Vec<f64> = (0..n).map(|i| chord2(row(i), row(chosen[0]))).collect();
    while chosen.len() < k {
        let total: f64 = dist.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            let mut pick = None;
            for (i, &w) in dist.iter().enumerate() {
                if w > 0.0 {
                    pick = Some(i);
                    if target < w {
                        break;
                    }
                    target -= w;
                }
            }
            pick.unwrap_or(0)
        } else {
            // every row sits on a chosen centre: a row not chosen yet
            let free: Vec<usize> = (0..n).filter(|i| !chosen.contains(i)).collect();
            free[rng.below(free.len())]
        };
        chosen.push(next);
        for (i, di) in dist.iter_mut().enumerate() {
            *di = di.min(chord2(row(i), row(next)));
        }
    }
    chosen
        .iter()
        .flat_map(|&i| row(i).iter().copied())
        .collect()
}

/// Assigns each row its most similar centre (lowest index on ties); returns
/// whether any assignment changed and the objective $J$.
fn assign(unit: &[f64], d: usize, centres: &[f64], assignment: &mut [usize]) -> (bool, f64) {
    let mut changed = false;
    let mut j = 0.0;
    for (u, a) in unit.chunks_exact(d).zip(assignment.iter_mut()) {
        let (mut best, mut best_dot) = (0, f64::NEG_INFINITY);
        for (c, centre) in centres.chunks_exact(d).enumerate() {
            let dot = dot(u, centre);
            if dot > best_dot {
                (best, best_dot) = (c, dot);
            }
        }
        changed |= *a != best;
        *a = best;
        j += 1.0 - best_dot;
    }
    (changed, j)
}

/// Renumbers the centres by cluster size, largest first (ties: the cluster
/// whose first member comes first, then the old index).
fn order_by_size(
    centres: Vec<f64>,
    assignment: Vec<usize>,
    objective: Vec<f64>,
    d: usize,
    k: usize,
) -> SphericalKMeans {
    let mut size = vec![0usize; k];
    let mut first = vec![usize::MAX; k];
    for (i, &a) in assignment.iter().enumerate() {
        size[a] += 1;
        first[a] = first[a].min(i);
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (core::cmp::Reverse(size[c]), first[c], c));
    let mut rank = vec![0; k];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r;
    }
    SphericalKMeans {
        centres: order
            .iter()
            .flat_map(|&c| centres[c * d..(c + 1) * d].iter().copied())
            .collect(),
        assignment: assignment.iter().map(|&a| rank[a]).collect(),
        objective,
        dim: d,
    }
}

/// $a \cdot b$ in f64.
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// $\lVert a - b\rVert^2 = 2 - 2\,a\cdot b$ for unit vectors, never negative.
fn chord2(a: &[f64], b: &[f64]) -> f64 {
    (2.0 - 2.0 * dot(a, b)).max(0.0)
}

/// $s / \lVert s\rVert$, or `None` when $\lVert s\rVert$ is 0 (or not finite).
pub(super) fn normalised(s: &[f64]) -> Option<Vec<f64>> {
    let norm = dot(s, s).sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| s.iter().map(|v| v / norm).collect())
}

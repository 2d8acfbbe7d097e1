//! Enrolment by weight imprinting: [`ArcFaceHead::enrol`] and
//! [`ArcFaceHead::enrol_many`] (the rule is in `enrol`'s documentation).

use super::kmeans::{dot, normalised, spherical_kmeans};
use super::Enrolment;
use crate::error::{Error, Result};
use crate::head::{ArcFaceHead, NewClasses};
use crate::real::Real;

impl<T: Real> ArcFaceHead<T> {
    /// Adds one class imprinted from `embeddings` (n ≥ 1 rows of D,
    /// row-major) and returns its index, the old `num_classes`.
    ///
    /// The exemplars $x_1..x_n$ of a new class are normalised,
    /// $u_i = x_i / \lVert x_i\rVert$ (in f64). Its weight rows are unit
    /// directions $\hat w_k$ scaled to $r$, the mean norm of the head's existing
    /// weight rows (classes not retired), so that the new rows see the same
    /// effective step size as the old ones when fine-tuned (the gradient of a
    /// normalised row scales as $1/\lVert w\rVert$); the head's cosines do not
    /// depend on $r$.
    ///
    /// - K = 1: $\hat w = \bar u / \lVert \bar u\rVert$ with $\bar u = \frac1n\sum_i u_i$,
    ///   the imprinted weight of Qi, Brown & Lowe (*Low-Shot Learning with
    ///   Imprinted Weights*, CVPR 2018).
    /// - K > 1 and n ≥ K: the K centres of a seeded spherical k-means of the
    ///   $u_i$ ([`crate::spherical_kmeans`] with `how.seed`), largest cluster
    ///   first, so that sub-centre 0 of the new class is its dominant one.
    /// - K > 1 and n < K: sub-centres $0..n$ are the exemplars themselves (the
    ///   k-means optimum with n clusters, objective 0) and the remaining K − n are
    ///   the K = 1 imprint $\bar u / \lVert\bar u\rVert$: the best single estimate
    ///   of the class, which adds no direction the exemplars do not support; the
    ///   sub-centre maximum at inference is then that of the n exemplars and
    ///   their mean. (If the exemplars cancel, $\bar u = 0$, the exemplars are
    ///   repeated instead.)
    ///
    /// The new class's margin is `how.margin`, or the
    /// head's margin when every class has the same one (an error
    /// otherwise). With adaptive margins, recompute them afterwards from
    /// labels that include the new class:
    /// [`Self::set_adaptive_margins`] counts all `num_classes` classes.
    ///
    /// Capacity grows geometrically (see [`Self::class_capacity`]): no full
    /// copy of W per enrolment. Workspaces and optimisers follow with
    /// [`crate::Workspace::fit`] and [`crate::Optimizer::fit`].
    ///
    /// Errors (the head unchanged): a length that is not a multiple of D,
    /// no embedding, a NaN or infinity, an embedding of zero norm, exemplars
    /// whose directions cancel (K = 1), per-class margins that differ with
    /// no `how.margin`, a bad [`Enrolment`].
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Enrolment, HeadConfig};
    /// let mut head = ArcFaceHead::<f64>::from_weight(HeadConfig::new(1, 2), &[2.0, 0.0]).unwrap();
    /// let new = head.enrol(&[0.0, 3.0, 1.0, 1.0], &Enrolment::default()).unwrap();
    /// assert_eq!(new, 1);
    /// // the normalised mean of (0, 1) and (1, 1)/√2, scaled to the old row's norm 2
    /// let h = 0.5f64.sqrt();
    /// let m = [h / 2.0, (1.0 + h) / 2.0];
    /// let norm = (m[0] * m[0] + m[1] * m[1]).sqrt();
    /// assert!((head.weight()[2] - 2.0 * m[0] / norm).abs() < 1e-12);
    /// assert!((head.weight()[3] - 2.0 * m[1] / norm).abs() < 1e-12);
    /// assert_eq!(head.predict(&[0.1, 1.0]).unwrap().labels, vec![1]);
    /// assert!(head.enrol(&[0.0, 0.0], &Enrolment::default()).is_err());
    /// ```
    pub fn enrol(&mut self, embeddings: &[T], how: &Enrolment) -> Result<usize> {
        let d = self.config().in_channels;
        let n = embeddings.len() / d;
        let labels = crate::memory::try_filled(n, 0i64, "enrolment labels")?;
        if n * d != embeddings.len() {
            return Err(Error::Shape {
                what: "embeddings",
                expected: embeddings.len().div_ceil(d) * d,
                got: embeddings.len(),
            });
        }
        Ok(self.enrol_many(embeddings, &labels, how)?[0])
    }

    /// Adds m classes at once, one growth: row i of `embeddings` (N×D) is
    /// an exemplar of new class `labels[i]`, labels `0..m` each used at
    /// least once. Returns the new indices (old `num_classes` + j). Class
    /// j is clustered with seed `how.seed + j` (wrapping), so a class
    /// enrolled alone with seed `s + j` gets the same rows. The rules and
    /// errors are [`Self::enrol`]'s, plus: a label count other
    /// than N, a negative label, a label in `0..m` with no exemplar.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Enrolment, HeadConfig};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2).with_subcenters(2), 0).unwrap();
    /// let x = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0];
    /// let ids = head.enrol_many(&x, &[0, 0, 1], &Enrolment::default()).unwrap();
    /// assert_eq!(ids, vec![3, 4]);
    /// assert_eq!(head.config().num_classes, 5);
    /// assert_eq!(head.predict(&[0.95, 0.05]).unwrap().labels, vec![3]);
    /// assert!(head.enrol_many(&x, &[0, 2, 2], &Enrolment::default()).is_err()); // class 1 empty
    /// ```
    pub fn enrol_many(
        &mut self,
        embeddings: &[T],
        labels: &[i64],
        how: &Enrolment,
    ) -> Result<Vec<usize>> {
        how.validate()?;
        let cfg = self.config();
        let (d, k) = (cfg.in_channels, cfg.num_subcenters);
        let n = labels.len();
        crate::error::check_len("embeddings", embeddings.len(), n * d)?;
        if n == 0 {
            return Err(Error::NoEmbeddings { class: 0 });
        }
        let m = new_class_count(labels)?;
        let margin = match how.margin {
            Some(mg) => mg,
            None => self.uniform_margin()?,
        };
        let unit = unit_rows(embeddings, d)?;
        let r = self.mean_row_norm();
        let mut weight = crate::memory::try_filled(m * k * d, T::ZERO, "new weights")?;
        let mut members = Vec::with_capacity(n * d);
        for (j, rows) in weight.chunks_exact_mut(k * d).enumerate() {
            members.clear();
            for (i, _) in labels.iter().enumerate().filter(|(_, &l)| l as usize == j) {
                members.extend_from_slice(&unit[i * d..(i + 1) * d]);
            }
            let seed = how.seed.wrapping_add(j as u64);
            let dirs = imprint(&members, d, k, seed, how.kmeans_iters).map_err(|e| match e {
                Error::CancellingEmbeddings { .. } => Error::CancellingEmbeddings { class: j },
                e => e,
            })?;
            for (w, u) in rows.iter_mut().zip(&dirs) {
                *w = T::from_f64(r * u);
            }
        }
        self.check_new_rows(&weight)?;
        let margins = crate::memory::try_filled(m, margin, "margins")?;
        let first = self.append_classes(&NewClasses {
            weight: &weight,
            margins: &margins,
            class_weight: how.class_weight,
        })?;
        Ok((first..first + m).collect())
    }

    /// The margin every class shares, or an error naming the way out.
    fn uniform_margin(&self) -> Result<f64> {
        let m = self.margins();
        if m.iter().all(|&v| v == m[0]) {
            return Ok(m[0]);
        }
        Err(crate::config::invalid(
            "margin",
            "of the new class is needed: the head's per-class margins differ (give \
             Enrolment::margin, or recompute adaptive margins after enrolling)"
                .into(),
        ))
    }
}

/// m for labels that must cover `0..m`; the error names the first problem.
fn new_class_count(labels: &[i64]) -> Result<usize> {
    let max = labels.iter().copied().max().unwrap_or(0).max(0);
    let m = usize::try_from(max).map_err(|_| Error::NoEmbeddings { class: 0 })? + 1;
    // labels are in 0..m once none is negative; each class needs one, so m ≤ N
    if m > labels.len() {
        let mut seen = crate::memory::try_filled(labels.len() + 1, false, "enrolment labels")?;
        let len = seen.len();
        for &l in labels.iter().filter(|&&l| l >= 0 && (l as usize) < len) {
            seen[l as usize] = true;
        }
        let class = seen.iter().position(|&s| !s).unwrap_or(0);
        return Err(Error::NoEmbeddings { class });
    }
    crate::error::check_labels(labels, m)?;
    let mut seen = crate::memory::try_filled(m, false, "enrolment labels")?;
    for &l in labels {
        seen[l as usize] = true;
    }
    match seen.iter().position(|&s| !s) {
        Some(class) => Err(Error::NoEmbeddings { class }),
        None => Ok(m),
    }
}

/// The rows of `x` (N×D) normalised in f64; errors name the first row that
/// is not finite or has zero norm.
fn unit_rows<T: Real>(x: &[T], d: usize) -> Result<Vec<f64>> {
    crate::error::check_finite("embeddings", x, d)?;
    let mut out = crate::memory::try_filled(x.len(), 0.0, "normalised embeddings")?;
    for (row, (o, xi)) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)).enumerate() {
        // scaled by the largest entry first: no overflow for any finite row
        let amax = xi.iter().fold(0.0f64, |a, v| a.max(v.to_f64().abs()));
        if amax == 0.0 {
            return Err(Error::ZeroEmbedding { row });
        }
        for (o, v) in o.iter_mut().zip(xi) {
            *o = v.to_f64() / amax;
        }
        let norm = dot(o, o).sqrt();
        o.iter_mut().for_each(|v| *v /= norm);
    }
    Ok(out)
}

/// The K unit sub-centres of one class from its unit exemplars `u` (n×D).
fn imprint(u: &[f64], d: usize, k: usize, seed: u64, iters: usize) -> Result<Vec<f64>> {
    let n = u.len() / d;
    let mean = mean_direction(u, d);
    if k == 1 {
        return mean.ok_or(Error::CancellingEmbeddings { class: 0 });
    }
    if n >= k {
        return Ok(spherical_kmeans(u, d, k, seed, iters)?.centres);
    }
    let mut out = Vec::with_capacity(k * d);
    out.extend_from_slice(u);
    for j in n..k {
        match &mean {
            Some(m) => out.extend_from_slice(m),
            None => out.extend_from_slice(&u[(j % n) * d..(j % n + 1) * d]),
        }
    }
    Ok(out)
}

/// $\bar u / \lVert\bar u\rVert$, or `None` when the rows cancel: the norm of
/// their sum is within rounding (n·1e-12) of zero.
fn mean_direction(u: &[f64], d: usize) -> Option<Vec<f64>> {
    let n = u.len() / d;
    let mut sum = vec![0.0; d];
    for row in u.chunks_exact(d) {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v;
        }
    }
    if dot(&sum, &sum).sqrt() <= n as f64 * 1e-12 {
        return None;
    }
    normalised(&sum)
}

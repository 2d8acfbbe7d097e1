//! Independent f64 references, written from the documented maths rather
//! than from the crate's code. They decide the crate's answer where the
//! golden reference is NaN or raises and a documented deviation defines
//! what the crate does instead: the Sum reduction (D3), the
//! rounding-sensitive constructed rows (D1/D2) and the adaptive margins
//! that upstream makes NaN or refuses (D5/D6).

use arcface::HeadConfig;

/// The head's training logits in f64: features and weight rows normalised
/// (norm floor 1e-12), the best sub-centre cosine per class, and in the
/// label's column only the margin, on the cosine clamped to [−1, 1] (D1):
/// cos(θ + m) above the threshold −cos m (above 0 with `easy`), else
/// c − m sin m (c itself with `easy`); all times the scale.
pub struct RefCase {
    pub c: usize,
    pub k: usize,
    pub d: usize,
    pub scale: f64,
    pub easy: bool,
    pub margins: Vec<f64>,
}

impl RefCase {
    fn normalize(v: &[f64]) -> Vec<f64> {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter().map(|x| x / n).collect()
    }

    pub fn logits_train(&self, x: &[f64], w: &[f64], labels: &[i64]) -> Vec<f64> {
        let wn: Vec<Vec<f64>> = w.chunks(self.d).map(Self::normalize).collect();
        let mut out = Vec::new();
        for (i, xi) in x.chunks(self.d).enumerate() {
            let xh = Self::normalize(xi);
            for c in 0..self.c {
                let cos = (0..self.k)
                    .map(|k| {
                        xh.iter()
                            .zip(&wn[c * self.k + k])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                    })
                    .fold(f64::NEG_INFINITY, f64::max);
                let v = if c as i64 == labels[i] {
                    let cc = cos.clamp(-1.0, 1.0);
                    let m = self.margins[c];
                    let take = if self.easy { cc > 0.0 } else { cc > -m.cos() };
                    if take {
                        (cc.acos() + m).cos()
                    } else if self.easy {
                        cc
                    } else {
                        cc - m * m.sin()
                    }
                } else {
                    cos
                };
                out.push(self.scale * v);
            }
        }
        out
    }
}

/// ℓ_i = −Σ_c w_c t_ic log softmax(z_i)_c for every sample, from logits.
pub fn sample_ce(z: &[f64], c: usize, targets: &[Vec<f64>], class_weight: &[f64]) -> Vec<f64> {
    z.chunks(c)
        .zip(targets)
        .map(|(row, t)| {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            (0..c)
                .map(|j| class_weight[j] * t[j] * (lse - row[j]))
                .sum()
        })
        .collect()
}

/// The target rows (one-hot from `labels`, or the soft targets; then label
/// smoothing as configured), in f64: one row of `c` per sample.
pub fn target_rows(
    n: usize,
    c: usize,
    labels: &[i64],
    soft: Option<&[f64]>,
    cfg: &HeadConfig,
) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let mut t: Vec<f64> = match soft {
                Some(s) => s[i * c..(i + 1) * c].to_vec(),
                None => (0..c)
                    .map(|j| (j as i64 == labels[i]) as u8 as f64)
                    .collect(),
            };
            if let Some(ls) = &cfg.loss.label_smooth {
                let e = ls.effective_eps();
                t.iter_mut()
                    .for_each(|v| *v = *v * (1.0 - e) + e / c as f64);
            }
            t
        })
        .collect()
}

/// Independent transcription of the hook with D5 (equal counts give
/// margin_max) and D6 (counts over all classes, absent counts as 1).
pub fn hook_reference(labels: &[i64], c: usize, lo: f64, hi: f64, p: f64) -> Vec<f64> {
    let mut cnt = vec![0.0f64; c];
    for &l in labels {
        cnt[l as usize] += 1.0;
    }
    let pf: Vec<f64> = cnt.iter().map(|&n| n.max(1.0).powf(p)).collect();
    let mn = pf.iter().copied().fold(f64::INFINITY, f64::min);
    let mx = pf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if mx == mn {
        return vec![hi; c];
    }
    pf.iter()
        .map(|v| (v - mn) / (mx - mn) * (hi - lo) + lo)
        .collect()
}

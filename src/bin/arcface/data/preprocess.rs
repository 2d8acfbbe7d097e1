//! Per-column standardisation (`--standardize`, always on for the digits):
//! computed on the training split, kept in the checkpoint's metadata and
//! applied again by `eval` and `predict`.

use super::Split;
use crate::memory::try_vec;
use crate::CliError;
use arcface::{Checkpoint, Real};

/// Checkpoint metadata keys of the transform (JSON lists of numbers).
const MEAN_KEY: &str = "preprocess.mean";
const STD_KEY: &str = "preprocess.std";

/// Columns whose standard deviation is below this are only centred.
const CONSTANT_COLUMN_STD: f64 = 1e-12;

/// `x ← (x − mean) / std`, column by column.
#[derive(Debug, Clone)]
pub struct Standardize {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Standardize {
    /// Per-column mean and standard deviation of `s` (std 1 where a column
    /// is constant).
    pub fn fit<T: Real>(s: &Split<T>) -> Result<Self, CliError> {
        let d = s.d;
        let n = s.len().max(1) as f64;
        let mut mean = try_vec(d, "the standardisation")?;
        mean.resize(d, 0.0);
        for row in s.x.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v.to_f64();
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = try_vec(d, "the standardisation")?;
        var.resize(d, 0.0);
        for row in s.x.chunks_exact(d) {
            for ((v2, v), m) in var.iter_mut().zip(row).zip(&mean) {
                let t = v.to_f64() - m;
                *v2 += t * t;
            }
        }
        // the standard deviations replace the variances in place
        let mut std = var;
        for v in std.iter_mut() {
            let s = (*v / n).sqrt();
            *v = if s > CONSTANT_COLUMN_STD { s } else { 1.0 };
        }
        Ok(Self { mean, std })
    }

    /// The transform stored in `ck` (read from `path`), if any.
    pub fn from_checkpoint(ck: &Checkpoint, path: &str) -> Result<Option<Self>, CliError> {
        let (Some(m), Some(s)) = (ck.extra().get(MEAN_KEY), ck.extra().get(STD_KEY)) else {
            return Ok(None);
        };
        let bad =
            |reason: &str| CliError::input(path, format!("metadata preprocess.mean/std {reason}"));
        let parse = |t: &str| -> Result<Vec<f64>, CliError> {
            let v: Vec<f64> =
                serde_json::from_str(t).map_err(|_| bad("is not a list of numbers"))?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad("holds a non-finite value"));
            }
            Ok(v)
        };
        let (mean, std) = (parse(m)?, parse(s)?);
        if mean.len() != std.len() || std.iter().any(|&x| x <= 0.0) {
            return Err(bad("are inconsistent"));
        }
        Ok(Some(Self { mean, std }))
    }

    /// Stores the transform in `ck`'s metadata.
    pub fn store(&self, ck: &mut Checkpoint) {
        let json = |v: &[f64]| serde_json::Value::from(v.to_vec()).to_string();
        ck.set_extra(MEAN_KEY, json(&self.mean));
        ck.set_extra(STD_KEY, json(&self.std));
    }

    /// Applies the transform to `s`, whose features came from `path`; the
    /// transform came from the checkpoint `from` (else it was fitted here).
    pub fn apply<T: Real>(
        &self,
        s: &mut Split<T>,
        path: &str,
        from: Option<&str>,
    ) -> Result<(), CliError> {
        if s.d != self.mean.len() {
            let whose = match from {
                Some(ck) => format!("the standardisation stored in {ck}"),
                None => "the standardisation".into(),
            };
            return Err(CliError::input(
                path,
                format!(
                    "has {} feature columns, {whose} has {}",
                    s.d,
                    self.mean.len()
                ),
            ));
        }
        for row in s.x.chunks_exact_mut(s.d) {
            for ((v, m), sd) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = T::from_f64((v.to_f64() - m) / sd);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_columns_have_zero_mean_and_unit_std() {
        let mut s = Split {
            x: vec![1.0f64, 5.0, 3.0, 5.0],
            y: vec![0, 1],
            d: 2,
        };
        let st = Standardize::fit(&s).unwrap();
        assert_eq!(
            (st.mean.clone(), st.std.clone()),
            (vec![2.0, 5.0], vec![1.0, 1.0])
        );
        st.apply(&mut s, "x", None).unwrap();
        assert_eq!(s.x, vec![-1.0, 0.0, 1.0, 0.0]);
        let mut wide = Split {
            x: vec![0.0f64; 3],
            y: vec![0],
            d: 3,
        };
        assert_eq!(
            st.apply(&mut wide, "w.npy", Some("h.safetensors"))
                .unwrap_err()
                .to_string(),
            "w.npy: has 3 feature columns, the standardisation stored in h.safetensors has 2"
        );
    }
}

//! The comparison rule of `tests/golden/FORMAT.md`: per row,
//! |a − b| ≤ rtol · max(max |b| over the row's finite entries, floor);
//! entries whose expected value is not finite are not compared.

use std::collections::BTreeSet;

/// Per-row comparison of FORMAT.md. Returns the worst normalised error, or
/// a message naming the first failing entry. `skip` rows are not compared.
pub fn compare(
    field: &str,
    got: &[f64],
    want: &[f64],
    ncols: usize,
    floor: &dyn Fn(usize) -> f64,
    rtol: f64,
    skip: &BTreeSet<usize>,
) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!(
            "{field}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    let mut worst = 0.0f64;
    for (r, (g, w)) in got
        .chunks(ncols.max(1))
        .zip(want.chunks(ncols.max(1)))
        .enumerate()
    {
        if skip.contains(&r) {
            continue;
        }
        let scale = w
            .iter()
            .filter(|b| b.is_finite())
            .fold(floor(r), |m, b| m.max(b.abs()));
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            if !b.is_finite() {
                continue;
            }
            let err = (a - b).abs() / scale;
            if err.is_nan() || err > rtol {
                return Err(format!(
                    "{field}[{r},{j}]: got {a:e}, expected {b:e} (normalised error {err:.3e} > {rtol:e})"
                ));
            }
            worst = worst.max(err);
        }
    }
    Ok(worst)
}

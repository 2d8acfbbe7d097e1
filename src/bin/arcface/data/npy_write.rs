//! `.npy` files written by the program (version 1.0, little-endian, C
//! order): `clean`'s keep mask (NumPy `bool`, `|b1`: one byte, 0 or 1, so
//! `x[np.load("keep.npy")]` selects the kept rows) and the kept samples
//! (features in the run's `--dtype`, labels as `int64`).

use arcface::Real;

/// The header of an array of `descr` and `shape`, padded with spaces and a
/// newline so that the data starts on a multiple of 64 bytes.
fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = super::npy::MAGIC.len() + 4 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = super::npy::MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A boolean vector (`|b1`).
pub fn bools(v: &[bool]) -> Vec<u8> {
    let mut out = header("|b1", &[v.len()]);
    out.extend(v.iter().map(|&b| u8::from(b)));
    out
}

/// An `int64` vector (`<i8`).
pub fn int64(v: &[i64]) -> Vec<u8> {
    let mut out = header("<i8", &[v.len()]);
    out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    out
}

/// An `n`×`d` matrix of T (`<f4` for f32, `<f8` for f64), exactly.
pub fn matrix<T: Real>(x: &[T], d: usize) -> Vec<u8> {
    let n = x.len() / d.max(1);
    if core::mem::size_of::<T>() == 4 {
        let mut out = header("<f4", &[n, d]);
        out.extend(x.iter().flat_map(|v| (v.to_f64() as f32).to_le_bytes()));
        out
    } else {
        let mut out = header("<f8", &[n, d]);
        out.extend(x.iter().flat_map(|v| v.to_f64().to_le_bytes()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_arrays_read_back_through_the_program_s_reader() {
        let b = bools(&[true, false, true]);
        assert_eq!(b.len() % 64, 3);
        let parsed = crate::data::npy::parse(&b).unwrap();
        assert_eq!(
            (parsed.descr.as_str(), parsed.shape.as_slice()),
            ("|b1", &[3][..])
        );
        assert_eq!(parsed.data, &[1, 0, 1]);
        let l = int64(&[5, -1, 7]);
        assert_eq!(crate::data::npy::labels(&l).unwrap(), vec![5, -1, 7]);
        let m = matrix(&[1.5f32, -2.0, 0.25, 3.0, 4.0, 5.0], 3);
        let (x, d) = crate::data::npy::features::<f32>(&m).unwrap();
        assert_eq!((x, d), (vec![1.5, -2.0, 0.25, 3.0, 4.0, 5.0], 3));
        let m = matrix(&[0.1f64, 0.2], 1);
        assert_eq!(
            crate::data::npy::features::<f64>(&m).unwrap(),
            (vec![0.1, 0.2], 1)
        );
    }
}

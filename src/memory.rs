//! Fallible allocation, and the memory a head, a workspace or an optimiser
//! needs before it is built.
//!
//! Every buffer whose size comes from a configuration or from data grows
//! through a [`Sizer`]: [`Allocate`] grows it with `try_reserve`, so that a
//! size that cannot be had is an [`Error::OutOfMemory`] naming the buffer,
//! never an abort; [`Count`] adds up the bytes the same calls would take,
//! without allocating. The workspace's buffers are sized by one function per
//! group, run with either sizer, so the estimate and the allocation cannot
//! disagree.

use crate::aligned::AVec;
use crate::error::{Error, Result};
use std::collections::TryReserveError;

/// A buffer that can grow (never shrink) to a length, filling with zeros.
pub(crate) trait Grow {
    /// The element type.
    type Elem;
    /// The current length.
    fn length(&self) -> usize;
    /// Grows to `len` elements if shorter, keeping the contents.
    fn try_grow(&mut self, len: usize) -> core::result::Result<(), TryReserveError>;
}

impl<E: Clone + Default> Grow for Vec<E> {
    type Elem = E;
    fn length(&self) -> usize {
        self.len()
    }
    fn try_grow(&mut self, len: usize) -> core::result::Result<(), TryReserveError> {
        if len > self.len() {
            self.try_reserve_exact(len - self.len())?;
            self.resize(len, E::default());
        }
        Ok(())
    }
}

impl<E: Clone + Default> Grow for AVec<E> {
    type Elem = E;
    fn length(&self) -> usize {
        self.len()
    }
    fn try_grow(&mut self, len: usize) -> core::result::Result<(), TryReserveError> {
        if len > self.len() {
            self.try_resize(len, E::default())?;
        }
        Ok(())
    }
}

/// What to do with a buffer of a wanted length (in elements, as `u128` so
/// that products of dimensions cannot overflow before they are checked).
pub(crate) trait Sizer {
    /// Grows `buf` to `len` elements, or counts what that takes.
    fn grow<B: Grow>(&mut self, buf: &mut B, len: u128, what: &'static str) -> Result<()>;
}

/// Grows buffers for real, with `try_reserve`.
pub(crate) struct Allocate;

impl Sizer for Allocate {
    fn grow<B: Grow>(&mut self, buf: &mut B, len: u128, what: &'static str) -> Result<()> {
        let too_big = || out_of_memory::<B::Elem>(what, len);
        let len = usize::try_from(len).map_err(|_| too_big())?;
        buf.try_grow(len).map_err(|_| too_big())
    }
}

/// Adds up the bytes that [`Allocate`] would hold after the same calls.
#[derive(Debug, Default)]
pub(crate) struct Count {
    /// Bytes so far.
    pub(crate) bytes: u128,
}

impl Sizer for Count {
    fn grow<B: Grow>(&mut self, buf: &mut B, len: u128, _: &'static str) -> Result<()> {
        let len = len.max(buf.length() as u128);
        self.bytes = self.bytes.saturating_add(bytes_of::<B::Elem>(len));
        Ok(())
    }
}

/// `len` elements of `E`, in bytes.
pub(crate) fn bytes_of<E>(len: u128) -> u128 {
    len.saturating_mul(core::mem::size_of::<E>() as u128)
}

/// The error for `len` elements of `E` that cannot be had.
pub(crate) fn out_of_memory<E>(what: &'static str, len: u128) -> Error {
    Error::OutOfMemory {
        what,
        bytes: bytes_of::<E>(len),
    }
}

/// A vector of `len` copies of `v`, or [`Error::OutOfMemory`].
pub(crate) fn try_filled<E: Clone>(len: usize, v: E, what: &'static str) -> Result<Vec<E>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| out_of_memory::<E>(what, len as u128))?;
    out.resize(len, v);
    Ok(out)
}

/// A byte count for people: `1536` reads `1.5 KiB`.
pub(crate) fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_as_people_write_sizes() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(
            human_bytes(u128::MAX),
            format!("{:.1} PiB", u128::MAX as f64 / (1u128 << 50) as f64)
        );
    }

    #[test]
    fn allocate_refuses_what_cannot_be_had_and_count_matches_what_it_holds() {
        let mut v: Vec<f32> = Vec::new();
        let e = Allocate
            .grow(&mut v, u128::MAX / 2, "products")
            .unwrap_err();
        assert!(matches!(
            e,
            Error::OutOfMemory {
                what: "products",
                ..
            }
        ));
        let e = Allocate
            .grow(&mut v, (isize::MAX as u128) / 2, "products")
            .unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { .. }));
        assert!(v.is_empty());
        let mut a: AVec<f64> = AVec::new();
        Allocate.grow(&mut a, 10, "x").unwrap();
        Allocate.grow(&mut v, 7, "y").unwrap();
        let mut c = Count::default();
        c.grow(&mut a, 4, "x").unwrap();
        c.grow(&mut Vec::<f32>::new(), 7, "y").unwrap();
        assert_eq!(c.bytes, 10 * 8 + 7 * 4);
        assert_eq!((a.len(), v.len()), (10, 7));
    }
}

//! A growable buffer whose first element sits on a 64-byte boundary (a
//! cache line, and one AVX-512 register), without `unsafe`.
//!
//! Large `Vec` allocations come from the system allocator 16 bytes past a
//! page boundary, so every 64-byte register load of a weight row would
//! straddle two cache lines (measured in `docs/perf.md`). [`AVec`]
//! over-allocates one cache line and starts its slice at the first aligned
//! element.

use core::ops::{Deref, DerefMut};
use std::collections::TryReserveError;

/// Elements of padding: one cache line's worth.
const fn pad<T>() -> usize {
    let s = core::mem::size_of::<T>();
    if s == 0 || s >= 64 {
        0
    } else {
        64 / s
    }
}

/// A `Vec<T>` whose slice starts 64-byte aligned (for element sizes that
/// divide 64; others keep the allocator's alignment).
pub(crate) struct AVec<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T> AVec<T> {
    /// Empty; allocates nothing.
    pub(crate) const fn new() -> Self {
        Self {
            buf: Vec::new(),
            off: 0,
            len: 0,
        }
    }
}

impl<T: Clone> AVec<T> {
    /// `len` copies of `v`.
    pub(crate) fn filled(len: usize, v: T) -> Self {
        Self::try_filled(len, v).unwrap_or_else(|e| panic!("AVec of {len} elements: {e}"))
    }

    /// A copy of `x`.
    pub(crate) fn from_slice(x: &[T]) -> Self {
        match x.first() {
            None => Self::new(),
            Some(v) => {
                let mut a = Self::filled(x.len(), v.clone());
                a.clone_from_slice(x);
                a
            }
        }
    }

    /// The first element of an allocation starting at `start` on a 64-byte
    /// boundary (0 if none within the padding).
    fn offset(start: *const T) -> usize {
        let size = core::mem::size_of::<T>();
        if size == 0 || pad::<T>() == 0 {
            return 0;
        }
        let mis = start as usize % 64;
        let bytes = (64 - mis) % 64;
        if bytes.is_multiple_of(size) && bytes / size <= pad::<T>() {
            bytes / size
        } else {
            0
        }
    }

    /// `len` copies of `v`, or the allocator's refusal.
    pub(crate) fn try_filled(len: usize, v: T) -> Result<Self, TryReserveError> {
        Self::try_with_room(len, len, v)
    }

    /// `len` copies of `v` in an allocation with room for `room ≥ len`
    /// elements; only the padding and the `len` elements are written, so
    /// the pages of the rest are not touched until the buffer grows into
    /// them.
    fn try_with_room(len: usize, room: usize, v: T) -> Result<Self, TryReserveError> {
        let total = room.max(len).saturating_add(pad::<T>());
        let mut buf = Vec::new();
        buf.try_reserve_exact(total)?;
        // the allocation's address decides the offset; `buf` holds the
        // padding before it and the elements, never more
        let off = Self::offset(buf.as_ptr());
        buf.resize(off + len, v);
        Ok(Self { buf, off, len })
    }

    /// Grows (filling with `v`) or shrinks to `len` elements, keeping the
    /// contents and the alignment; reallocates only past the capacity.
    pub(crate) fn resize(&mut self, len: usize, v: T) {
        if let Err(e) = self.try_resize(len, v) {
            panic!("AVec::resize to {len} elements: {e}");
        }
    }

    /// [`Self::resize`], returning the allocator's refusal (and changing
    /// nothing) instead of aborting.
    pub(crate) fn try_resize(&mut self, len: usize, v: T) -> Result<(), TryReserveError> {
        if len <= self.capacity() {
            // within the allocation: never reallocates (`buf` holds the
            // padding and the elements, so this writes only new elements)
            self.buf.resize(self.off + len, v);
            self.len = len;
            return Ok(());
        }
        let mut grown = Self::try_filled(len, v)?;
        grown[..self.len].clone_from_slice(self);
        *self = grown;
        Ok(())
    }

    /// The elements it holds without reallocating.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity().saturating_sub(self.off)
    }

    /// [`Self::try_resize`] with geometric growth, as `Vec::reserve` does:
    /// past the capacity the new allocation holds `max(len, 2·capacity)`
    /// elements, so that growing one row at a time copies each element
    /// O(1) times on average. Shrinking keeps the capacity.
    pub(crate) fn try_grow_amortised(&mut self, len: usize, v: T) -> Result<(), TryReserveError> {
        let cap = self.capacity();
        if len <= cap {
            return self.try_resize(len, v);
        }
        let mut grown = Self::try_with_room(self.len, len.max(cap.saturating_mul(2)), v.clone())?;
        grown.clone_from_slice(self);
        grown.try_resize(len, v)?;
        *self = grown;
        Ok(())
    }

    /// Room for `total` elements (exactly, up to the alignment padding),
    /// the length and contents unchanged; nothing to do when it fits.
    pub(crate) fn try_reserve_total(&mut self, total: usize, v: T) -> Result<(), TryReserveError> {
        if total <= self.capacity() {
            return Ok(());
        }
        let mut grown = Self::try_with_room(self.len, total, v)?;
        grown.clone_from_slice(self);
        *self = grown;
        Ok(())
    }

    /// Replaces the contents with a copy of `x`.
    pub(crate) fn assign(&mut self, x: &[T]) {
        if let Some(v) = x.first() {
            self.resize(x.len(), v.clone());
            self.clone_from_slice(x);
        } else {
            self.len = 0;
        }
    }
}

impl<T> Deref for AVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl<T> DerefMut for AVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

impl<T: Clone> Clone for AVec<T> {
    /// A fresh allocation, aligned in its own right.
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for AVec<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T> Default for AVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned<T>(x: &[T]) -> bool {
        (x.as_ptr() as usize).is_multiple_of(64)
    }

    #[test]
    fn starts_on_a_cache_line_and_keeps_contents() {
        for len in [1usize, 3, 16, 1000, 100_000] {
            let a = AVec::filled(len, 1.5f32);
            assert!(aligned(&a) && a.len() == len && a.iter().all(|&v| v == 1.5));
            let src: Vec<f64> = (0..len).map(|i| i as f64).collect();
            let mut b = AVec::from_slice(&src);
            assert!(aligned(&b) && *b == *src);
            // growing past the capacity reallocates, aligned, contents kept
            b.resize(len * 3 + 40, -1.0);
            assert!(aligned(&b));
            assert_eq!(&b[..len], &src[..]);
            assert!(b[len..].iter().all(|&v| v == -1.0));
            // shrinking then growing within the capacity refills
            b.resize(1, 0.0);
            b.resize(len, 7.0);
            assert_eq!(b[0], 0.0);
            assert!(b[1..].iter().all(|&v| v == 7.0));
            // geometric growth: capacity at least doubles, contents kept
            let cap = b.capacity();
            b.try_grow_amortised(cap + 1, 2.0).unwrap();
            assert!(aligned(&b) && b.capacity() >= 2 * cap && b[cap] == 2.0);
            assert_eq!(b[0], 0.0);
            b.resize(len, 7.0);
            let c = b.clone();
            assert!(aligned(&c) && *c == *b);
            let mut e = AVec::<f32>::new();
            assert!(e.is_empty());
            e.assign(&[1.0, 2.0]);
            assert!(aligned(&e) && *e == [1.0, 2.0]);
            e.assign(&[]);
            assert!(e.is_empty());
        }
    }
}

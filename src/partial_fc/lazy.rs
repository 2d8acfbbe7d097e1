//! When each class's rows were last written, and the products of the
//! zero-gradient maps since then, so that a row catches up exactly when it
//! is next sampled (or at a flush).
//!
//! The steps since the last flush form a window of at most `window` steps.
//! `suffix[s]` is the product $A_{L-1} \cdots A_s$ of the maps of window
//! steps $s, …, L-1$ ($L$ the steps so far; `suffix[L]` = I). A row last
//! written before window step $s$ (its `last` is $s$) catches up with
//! `suffix[s]`. A step appends its map by multiplying every suffix from the
//! left, O(window) 2×2 products, which is negligible beside the rows.

use crate::error::Result;
use crate::memory::try_filled;

/// A 2×2 map on (w, b): `[w', b'] = [[m[0], m[1]], [m[2], m[3]]] · [w, b]`.
pub(crate) type Map2 = [f64; 4];

/// The identity map.
pub(crate) const IDENTITY: Map2 = [1.0, 0.0, 0.0, 1.0];

/// `a · b`: first `b`, then `a`.
pub(crate) fn compose(a: &Map2, b: &Map2) -> Map2 {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
    ]
}

/// Per class, the window step from which its rows lag behind, and the
/// products that catch them up.
#[derive(Debug, Clone)]
pub(crate) struct LazyRows {
    last: Vec<u32>,
    suffix: Vec<Map2>,
    /// Steps in the window so far.
    len: usize,
    /// The optimiser's step count at the window's start.
    base: u64,
}

impl LazyRows {
    /// The state of `num_classes` classes, all current, with a window of
    /// `window` ≥ 1 steps.
    pub(crate) fn new(num_classes: usize, window: usize) -> Result<Self> {
        let window = window.max(1);
        Ok(Self {
            last: try_filled(num_classes, 0, "lazy update state")?,
            suffix: try_filled(window + 1, IDENTITY, "lazy update state")?,
            len: 0,
            base: 0,
        })
    }

    /// The map that brings class `c`'s rows up to date, `None` if they are.
    pub(crate) fn pending(&self, c: u32) -> Option<&Map2> {
        let s = self.last[c as usize] as usize;
        (s < self.len).then(|| &self.suffix[s])
    }

    /// Notes that class `c`'s rows are up to date: after its catch-up
    /// (before the step), and again once the step is pushed (the rows took
    /// it with their real gradient).
    pub(crate) fn mark_current(&mut self, c: u32) {
        self.last[c as usize] = self.len as u32;
    }

    /// Appends the map of the step just taken; the rows it updated are
    /// marked current afterwards.
    pub(crate) fn push(&mut self, m: &Map2) {
        let len = self.len;
        for s in &mut self.suffix[..=len] {
            *s = compose(m, s);
        }
        self.len = len + 1;
        self.suffix[self.len] = IDENTITY;
    }

    /// Whether the window is full (the caller flushes).
    pub(crate) fn is_full(&self) -> bool {
        self.len + 1 >= self.suffix.len()
    }

    /// Steps in the window.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The optimiser's step count at the window's start.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Moves an empty window (every row current: every `last` is 0) to
    /// start at optimiser step `base`, in O(1).
    pub(crate) fn rebase(&mut self, base: u64) {
        if self.len == 0 {
            self.base = base;
        }
    }

    /// Starts a new window with every row current, at optimiser step `base`.
    pub(crate) fn restart(&mut self, base: u64) {
        self.last.fill(0);
        self.suffix[0] = IDENTITY;
        self.len = 0;
        self.base = base;
    }
}

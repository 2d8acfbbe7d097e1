//! The class lifecycle as the lazy update sees it: which classes were
//! trainable (neither retired nor frozen, the rule of `head/classes.rs`)
//! during the steps of the pending window.
//!
//! The dense optimiser never touches a retired or frozen row (no decay, no
//! momentum), so a row of such a class must not be caught up with the
//! window's maps. The flags are those in force when the window's steps were
//! taken: if the head's flags change between steps, the pending window is
//! flushed under the old flags before the new ones are taken, so no catch-up
//! ever spans a change (a class frozen for part of a window would otherwise
//! take the decay of its frozen steps when next caught up).

use crate::error::Result;
use crate::head::ArcFaceHead;
use crate::memory::try_filled;
use crate::real::Real;

/// A copy of a head's retired and frozen flags, sized once (C bytes each).
#[derive(Debug, Clone)]
pub(crate) struct ClassFlags {
    retired: Vec<bool>,
    frozen: Vec<bool>,
    any_retired: bool,
    any_frozen: bool,
}

impl ClassFlags {
    /// Every one of `num_classes` classes trainable.
    pub(crate) fn new(num_classes: usize) -> Result<Self> {
        Ok(Self {
            retired: try_filled(num_classes, false, "sampled class flags")?,
            frozen: try_filled(num_classes, false, "sampled class flags")?,
            any_retired: false,
            any_frozen: false,
        })
    }

    /// Whether these are `head`'s flags (O(1) when neither has any set,
    /// one comparison of C bytes per mask otherwise).
    pub(crate) fn matches<T: Real>(&self, head: &ArcFaceHead<T>) -> bool {
        let (r, f) = head.class_flags();
        let same = |now: Option<&[bool]>, any: bool, kept: &[bool]| match now {
            None => !any,
            Some(now) => any && now == kept,
        };
        same(r, self.any_retired, &self.retired) && same(f, self.any_frozen, &self.frozen)
    }

    /// Copies `head`'s flags (the head has the class count these were made
    /// for: nothing is allocated).
    pub(crate) fn take<T: Real>(&mut self, head: &ArcFaceHead<T>) {
        let (r, f) = head.class_flags();
        for (now, any, kept) in [
            (r, &mut self.any_retired, &mut self.retired),
            (f, &mut self.any_frozen, &mut self.frozen),
        ] {
            match now {
                Some(now) => kept.copy_from_slice(now),
                None if *any => kept.fill(false),
                None => {}
            }
            *any = now.is_some();
        }
    }

    /// Whether the rows of class `c` were trainable during the window.
    #[inline]
    pub(crate) fn trainable(&self, c: u32) -> bool {
        let c = c as usize;
        !((self.any_retired && self.retired[c]) || (self.any_frozen && self.frozen[c]))
    }
}

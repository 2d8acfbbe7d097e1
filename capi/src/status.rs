//! Status codes, the thread-local last error message, and the guard every
//! exported function runs its body in (no panic crosses the boundary).

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call returned. `ARCFACE_OK` (0) is success; every other value is
/// an error whose message `arcface_last_error()` gives.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArcfaceStatus {
    /// Success.
    ArcfaceOk = 0,
    /// A required pointer was NULL (or not aligned for its type).
    ArcfaceNullPointer = 1,
    /// A length does not match the shapes (or a batch is empty).
    ArcfaceBadLength = 2,
    /// A configuration value is out of its domain (also a bad margin,
    /// margins file or adaptive-margin parameter).
    ArcfaceBadConfig = 3,
    /// A label outside `0..num_classes`.
    ArcfaceBadLabel = 4,
    /// A NaN or infinite value in the input, or a result too large to carry.
    ArcfaceNonFinite = 5,
    /// A file could not be read or written.
    ArcfaceIo = 6,
    /// A checkpoint is malformed or does not fit.
    ArcfaceCheckpoint = 7,
    /// A buffer could not be allocated.
    ArcfaceOutOfMemory = 8,
    /// Training stopped: the loss or an updated weight was not finite (the
    /// head and optimiser are as they were before that step).
    ArcfaceDiverged = 9,
    /// An internal error (a caught panic); please report it.
    ArcfaceInternal = 10,
    /// A class index outside `0..num_classes`, listed twice, or already
    /// retired (retire, enrol).
    ArcfaceBadClass = 11,
    /// Enrolment embeddings without a direction (zero norm, or a class
    /// whose normalised exemplars cancel).
    ArcfaceBadEmbedding = 12,
}

/// A failed call: its status and message.
#[derive(Debug)]
pub struct Fail {
    pub status: ArcfaceStatus,
    pub message: String,
}

impl Fail {
    pub fn new(status: ArcfaceStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A NULL (or misaligned) pointer passed as `what`.
    pub fn null(what: &str) -> Self {
        Self::new(
            ArcfaceStatus::ArcfaceNullPointer,
            format!("{what} is NULL or not aligned for its type"),
        )
    }

    /// `what` has `got` elements where `expected` were needed.
    pub fn length(what: &str, expected: usize, got: usize) -> Self {
        Self::new(
            ArcfaceStatus::ArcfaceBadLength,
            format!("{what} has length {got}, expected {expected}"),
        )
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ArcfaceStatus::ArcfaceBadConfig, message)
    }
}

impl From<arcface::Error> for Fail {
    fn from(e: arcface::Error) -> Self {
        use arcface::Error as E;
        use ArcfaceStatus as S;
        let status = match &e {
            E::InvalidConfig { .. }
            | E::NonFiniteMargin { .. }
            | E::MarginsFile { .. }
            | E::AdaptiveMargins { .. }
            | E::MissingSoftTargets
            | E::ResumeMismatch { .. } => S::ArcfaceBadConfig,
            E::Shape { .. } | E::EmptyBatch | E::NoEmbeddings { .. } => S::ArcfaceBadLength,
            E::LabelOutOfRange { .. } | E::RetiredLabel { .. } => S::ArcfaceBadLabel,
            E::UnknownClass { .. } | E::DuplicateClass { .. } | E::AlreadyRetired { .. } => {
                S::ArcfaceBadClass
            }
            E::ZeroEmbedding { .. } | E::CancellingEmbeddings { .. } => S::ArcfaceBadEmbedding,
            E::NonFinite { .. } | E::Overflow { .. } => S::ArcfaceNonFinite,
            E::Io { .. } => S::ArcfaceIo,
            E::Checkpoint { .. } => S::ArcfaceCheckpoint,
            E::OutOfMemory { .. } => S::ArcfaceOutOfMemory,
            E::Diverged { .. } => S::ArcfaceDiverged,
            _ => S::ArcfaceInternal,
        };
        Self::new(status, e.to_string())
    }
}

pub type Res<T = ()> = std::result::Result<T, Fail>;

thread_local! {
    /// The message of this thread's last failed call ("" before any).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // an interior NUL would end the C string early: show it as U+FFFD
    let clean = CString::new(message.replace('\0', "\u{fffd}")).unwrap_or_default();
    LAST_ERROR.with(|cell| *cell.borrow_mut() = clean);
}

/// The current thread's last message; the pointer stays valid until the
/// next failing call on this thread (which replaces the string).
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|cell| cell.borrow().as_ptr())
}

/// The current thread's last message as a Rust string (for tests).
#[cfg(test)]
pub fn last_error_string() -> String {
    LAST_ERROR.with(|cell| cell.borrow().to_string_lossy().into_owned())
}

/// Runs `body`, turning its error or panic into a status and the thread's
/// last-error message. Successful calls leave the message as it was.
pub fn guard(body: impl FnOnce() -> Res) -> ArcfaceStatus {
    let fail = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return ArcfaceStatus::ArcfaceOk,
        Ok(Err(fail)) => fail,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Fail::new(
                ArcfaceStatus::ArcfaceInternal,
                format!("internal error (panic caught at the C boundary): {what}"),
            )
        }
    };
    set_last_error(&fail.message);
    fail.status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        last_error_string()
    }

    #[test]
    fn a_panic_becomes_internal_with_its_message() {
        let s = guard(|| panic!("boom"));
        assert_eq!(s, ArcfaceStatus::ArcfaceInternal);
        assert!(last().contains("boom"), "{}", last());
    }

    #[test]
    fn success_keeps_the_previous_message_and_errors_map_by_kind() {
        let s = guard(|| Err(arcface::Error::EmptyBatch.into()));
        assert_eq!(s, ArcfaceStatus::ArcfaceBadLength);
        assert_eq!(guard(|| Ok(())), ArcfaceStatus::ArcfaceOk);
        assert!(last().contains("no samples"));
        let e = arcface::Error::LabelOutOfRange {
            sample: 3,
            label: 9,
            num_classes: 2,
        };
        assert_eq!(guard(|| Err(e.into())), ArcfaceStatus::ArcfaceBadLabel);
        assert!(last().contains("sample 3"), "{}", last());
    }

    #[test]
    fn an_interior_nul_does_not_truncate_to_nothing() {
        guard(|| Err(Fail::config("a\0b")));
        assert_eq!(last(), "a\u{fffd}b");
    }
}

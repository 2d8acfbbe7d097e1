//! The crate's error type: every bad configuration or bad datum is a value;
//! and the checks on data that several modules share.

use crate::real::Real;
use core::fmt;

/// Everything that can go wrong when configuring or running the head.
///
/// Each variant names what was wrong and where (the sample, class, row or
/// line), so that a message can be shown to a user as is. When a call returns
/// an error it has written nothing: the head's weights, margins and the
/// caller's output buffers are as they were.
///
/// ```
/// use arcface::{ArcFaceHead, Error, HeadConfig};
/// let err = ArcFaceHead::<f32>::new(HeadConfig::new(0, 8), 0).unwrap_err();
/// assert!(matches!(err, Error::InvalidConfig { field: "num_classes", .. }));
/// println!("{err}");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its domain.
    InvalidConfig {
        /// The upstream name of the parameter (`num_classes`, `scale`, …).
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A margin is NaN or infinite (deviation D7).
    NonFiniteMargin {
        /// The class whose margin is bad.
        class: usize,
        /// The offending value.
        value: f64,
    },
    /// A slice has the wrong length for the shapes involved.
    Shape {
        /// Which argument (`features`, `weight`, `labels`, …).
        what: &'static str,
        /// The length the head expected.
        expected: usize,
        /// The length it got.
        got: usize,
    },
    /// A batch with no samples (upstream raises too).
    EmptyBatch,
    /// A label outside `0..num_classes` (deviation D12).
    LabelOutOfRange {
        /// Index of the sample in the batch.
        sample: usize,
        /// The label found.
        label: i64,
        /// The number of classes.
        num_classes: usize,
    },
    /// A NaN or infinite value in the input or the weights.
    NonFinite {
        /// Which array (`features`, `weight`, `soft_targets`, `sample_weights`).
        what: &'static str,
        /// Row (sample or weight row) of the value.
        row: usize,
        /// Column of the value.
        col: usize,
    },
    /// Finite values whose size the working precision cannot carry: a row
    /// whose norm overflows, or a loss or gradient that does.
    Overflow {
        /// Which array or result (`features`, `weight`, `loss`, `gradient`).
        what: &'static str,
        /// The row concerned (0 for a scalar).
        row: usize,
    },
    /// `use_soft = true` but no soft targets were given (deviation D4).
    MissingSoftTargets,
    /// A margins file could not be parsed (deviation D10).
    MarginsFile {
        /// 1-based line number (0 when the problem is the whole file).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// Labels given to the adaptive-margin computation are unusable (D6).
    AdaptiveMargins {
        /// What was wrong.
        reason: String,
    },
    /// An I/O error, with the path involved.
    Io {
        /// The path that was read or written.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// Training stopped because the loss or an updated weight was not
    /// finite; the head's weights (and the optimiser state) are those from
    /// before that step.
    Diverged {
        /// 1-based epoch of the failing step.
        epoch: usize,
        /// 1-based step within that epoch.
        step: usize,
        /// What was not finite: `"loss"`, `"gradient"` or `"weight update"`.
        what: &'static str,
        /// The offending value (the loss, or the first bad updated weight).
        value: f64,
    },
    /// A checkpoint file is unreadable, malformed, or does not fit the head
    /// (missing key, wrong shape or dtype, bad metadata).
    Checkpoint {
        /// The file (or `<memory>`).
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A class index outside `0..num_classes` given to a class-lifecycle
    /// call (`retire`, `remove_classes`, `train_classes`).
    UnknownClass {
        /// The argument (`retire`, `remove_classes`, `train_classes`).
        what: &'static str,
        /// The class given.
        class: usize,
        /// The number of classes.
        num_classes: usize,
    },
    /// A class listed twice where each may appear once.
    DuplicateClass {
        /// The argument (`retire`, `remove_classes`, `train_classes`).
        what: &'static str,
        /// The repeated class.
        class: usize,
    },
    /// Retiring (or training) a class that is already retired.
    AlreadyRetired {
        /// The class.
        class: usize,
    },
    /// A run resumed from saved optimiser state with a setting that differs
    /// from the saved run's ([`crate::RunRecord`]): the sample rate or the
    /// learning-rate schedule.
    ResumeMismatch {
        /// The setting (`sample_rate`, `lr`, `schedule`, `warmup_epochs`,
        /// `warmup_start_factor`).
        field: &'static str,
        /// The saved run's value.
        saved: String,
        /// The value asked for.
        requested: String,
    },
    /// A training label, or a non-zero soft target, naming a retired class.
    RetiredLabel {
        /// Index of the sample in the batch.
        sample: usize,
        /// The retired class.
        class: usize,
    },
    /// An embedding given to enrolment has zero norm: it has no direction.
    ZeroEmbedding {
        /// The row of the embedding.
        row: usize,
    },
    /// A new class was given no embedding.
    NoEmbeddings {
        /// The index of the new class among those enrolled (0 for `enrol`).
        class: usize,
    },
    /// The normalised embeddings of a new class sum to zero, so their mean
    /// has no direction to imprint.
    CancellingEmbeddings {
        /// The index of the new class among those enrolled (0 for `enrol`).
        class: usize,
    },
    /// A buffer sized by the configuration or the data could not be
    /// allocated (or its size does not fit in the address space). Nothing
    /// was changed.
    OutOfMemory {
        /// The buffer (`weights`, `products`, `weight gradient`, …).
        what: &'static str,
        /// The bytes it needed.
        bytes: u128,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig { field, reason } => {
                write!(f, "invalid configuration: `{field}` {reason}")
            }
            Error::NonFiniteMargin { class, value } => {
                write!(
                    f,
                    "margin of class {class} is {value}; margins must be finite"
                )
            }
            Error::Shape {
                what,
                expected,
                got,
            } => {
                write!(f, "`{what}` has {got} elements, expected {expected}")
            }
            Error::EmptyBatch => write!(f, "the batch holds no samples"),
            Error::LabelOutOfRange {
                sample,
                label,
                num_classes,
            } => write!(
                f,
                "label {label} of sample {sample} is outside 0..{num_classes}"
            ),
            Error::NonFinite { what, row, col } => {
                write!(
                    f,
                    "`{what}` holds a NaN or infinite value at row {row}, column {col}"
                )
            }
            Error::Overflow { what, row } => write!(
                f,
                "`{what}` overflows the working precision at row {row}; scale the inputs down or use f64"
            ),
            Error::MissingSoftTargets => write!(
                f,
                "the loss has use_soft = true but the batch has no soft targets (gt_score)"
            ),
            Error::MarginsFile { line, reason } => {
                if *line == 0 {
                    write!(f, "margins file: {reason}")
                } else {
                    write!(f, "margins file, line {line}: {reason}")
                }
            }
            Error::AdaptiveMargins { reason } => write!(f, "adaptive margins: {reason}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
            Error::Diverged {
                epoch,
                step,
                what,
                value,
            } => write!(
                f,
                "training diverged at epoch {epoch}, step {step}: the {what} is {value}; \
                 the weights are left as they were before this step (try a lower learning rate)"
            ),
            Error::Checkpoint { path, reason } => write!(f, "checkpoint {path}: {reason}"),
            Error::UnknownClass {
                what,
                class,
                num_classes,
            } => write!(
                f,
                "`{what}`: class {class} is outside 0..{num_classes}"
            ),
            Error::DuplicateClass { what, class } => {
                write!(f, "`{what}`: class {class} is listed twice")
            }
            Error::AlreadyRetired { class } => write!(f, "class {class} is retired"),
            Error::ResumeMismatch {
                field,
                saved,
                requested,
            } => write!(
                f,
                "`{field}`: the saved run used {saved}, this run asks for {requested}; a resumed \
                 run continues with the saved run's settings"
            ),
            Error::RetiredLabel { sample, class } => write!(
                f,
                "sample {sample} is labelled with retired class {class}"
            ),
            Error::ZeroEmbedding { row } => write!(
                f,
                "embedding {row} has zero norm: enrolment needs a direction"
            ),
            Error::NoEmbeddings { class } => {
                write!(f, "new class {class} was given no embedding")
            }
            Error::CancellingEmbeddings { class } => write!(
                f,
                "the normalised embeddings of new class {class} sum to zero: their mean has no \
                 direction to imprint"
            ),
            Error::OutOfMemory { what, bytes } => write!(
                f,
                "cannot allocate the {what}: {} ({bytes} bytes) is more memory than can be had",
                crate::memory::human_bytes(*bytes)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Result<T, arcface::Error>`.
///
/// ```
/// fn check(m: f64) -> arcface::Result<()> {
///     arcface::Margins::Uniform(m).expand(1).map(|_| ())
/// }
/// assert!(check(0.5).is_ok());
/// ```
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Checks that every label lies in `0..num_classes` (deviation D12): the one
/// place this rule is written.
pub(crate) fn check_labels(labels: &[i64], num_classes: usize) -> Result<()> {
    match labels
        .iter()
        .position(|&l| l < 0 || l as u64 >= num_classes as u64)
    {
        Some(sample) => Err(Error::LabelOutOfRange {
            sample,
            label: labels[sample],
            num_classes,
        }),
        None => Ok(()),
    }
}

/// Checks that a slice named `what` has `expected` elements; `got` is its
/// length.
pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(Error::Shape {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

/// Checks that every value of `values`, a row-major matrix of `cols`
/// columns named `what` (`cols = 1` for a vector), is finite; the error
/// names the row and column of the first that is not.
pub(crate) fn check_finite<T: Real>(what: &'static str, values: &[T], cols: usize) -> Result<()> {
    match values.iter().position(|v| !v.is_finite_()) {
        Some(p) => Err(Error::NonFinite {
            what,
            row: p / cols,
            col: p % cols,
        }),
        None => Ok(()),
    }
}

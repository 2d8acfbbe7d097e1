//! What `eval` and `predict` share: the checkpoint's head (its memory
//! checked before it is built), and the features to run it on,
//! standardised as in training.

use super::footprint::{self, Shape};
use super::{builtin_source, flag_error, relabel};
use crate::args::{CheckpointArgs, DataArgs, SyntheticArgs};
use crate::data::builtin::Source;
use crate::data::preprocess::Standardize;
use crate::data::{self, Split};
use crate::memory::{self, Need};
use crate::CliError;
use arcface::{ArcFaceHead, Checkpoint, HeadConfig, Real};

/// The most sub-centres a weight without arcface metadata is taken to
/// possibly have: its row count is ambiguous when some K in
/// `2..=MAX_GUESSED_SUBCENTERS` divides it into at least two classes
/// (sub-centre ArcFace uses K = 3; K above 16 is not seen in practice).
const MAX_GUESSED_SUBCENTERS: usize = 16;

/// The most bytes of data generated for a built-in set that only a
/// checkpoint's metadata names (the default synthetic set takes 12 MiB);
/// a larger one needs `--data` and its flags.
const MAX_IMPLIED_DATA: u128 = 1 << 30;

/// A checkpoint and the configuration of its head, before any head is
/// built from it (see [`checkpoint`]).
pub struct Restored {
    pub ck: Checkpoint,
    pub cfg: HeadConfig,
    /// The file, as errors name it.
    path: String,
    /// The command whose flags made `cfg` (for a file without metadata).
    flags_of: Option<&'static str>,
}

impl Restored {
    /// A library error while building from this checkpoint: a bad
    /// configuration made from the flags names the flags, anything else
    /// the file.
    pub fn error(&self, e: arcface::Error) -> CliError {
        match (self.flags_of, e) {
            (Some(command), e @ arcface::Error::InvalidConfig { .. }) => flag_error(command, e),
            (_, other) => relabel(other, &self.path),
        }
    }

    /// The head in `T`, its memory checked before it is built.
    pub fn head<T: Real>(&self) -> Result<ArcFaceHead<T>, CliError> {
        check_head_memory::<T>(&self.cfg, &self.path)?;
        self.ck
            .to_head(Some(self.cfg.clone()))
            .map_err(|e| self.error(e))
    }
}

/// The checkpoint and its head's configuration: the checkpoint's own, or
/// for a file without metadata (a PyTorch export) one built from
/// `--num-classes`, `--num-subcenters`, `--scale` and `--margins` over the
/// library's defaults; flag errors name `command`'s flags.
pub fn checkpoint(a: &CheckpointArgs, command: &'static str) -> Result<Restored, CliError> {
    let path = &a.checkpoint;
    let ck = Checkpoint::load(path).map_err(|e| relabel(e, path))?;
    let shape = &a.shape;
    if let Some(cfg) = ck.config() {
        let given = [
            ("num-classes", a.num_classes.is_some()),
            ("num-subcenters", shape.num_subcenters.is_some()),
            ("scale", shape.scale.is_some()),
            ("margins", shape.margins.is_some()),
        ];
        if let Some((f, _)) = given.iter().find(|g| g.1) {
            return Err(CliError::Usage(format!(
                "--{f}: {path} carries its own head configuration"
            )));
        }
        let cfg = cfg.clone();
        return Ok(Restored {
            ck,
            cfg,
            path: path.clone(),
            flags_of: None,
        });
    }
    let (rows, d) = ck.shape();
    let (c, k) = bare_shape(rows, a.num_classes, shape.num_subcenters, path)?;
    let mut cfg = HeadConfig::new(c, d).with_subcenters(k);
    if let Some(s) = shape.scale {
        cfg = cfg.with_scale(s);
    }
    if let Some(m) = &shape.margins {
        cfg = cfg.with_margins(m.resolve(c)?);
    }
    Ok(Restored {
        ck,
        cfg,
        path: path.clone(),
        flags_of: Some(command),
    })
}

/// The checkpoint and its head in `T` (see [`checkpoint`]); the head's
/// memory is checked before it is built.
pub fn head<T: Real>(
    a: &CheckpointArgs,
    command: &'static str,
) -> Result<(Checkpoint, ArcFaceHead<T>), CliError> {
    let r = checkpoint(a, command)?;
    let head = r.head::<T>()?;
    Ok((r.ck, head))
}

/// The head of `cfg`, while it is built from the file at `path`, fits the
/// machine's memory.
fn check_head_memory<T: Real>(cfg: &HeadConfig, path: &str) -> Result<(), CliError> {
    let s = Shape::of::<T>(cfg);
    let mut need = footprint::head(&s);
    need.merge(&footprint::decoding(&s));
    need.check(
        &format!("{path} holds {}, which", s.describe(T::NAME)),
        &footprint::hint::<T>(false),
    )
}

/// What `work` allocates on `head` (batches of `--batch-size`, at most the
/// input's samples) fits beside the head.
pub fn check_work<T: Real>(
    cfg: &HeadConfig,
    work: impl FnOnce(&Shape) -> Need,
) -> Result<(), CliError> {
    let s = Shape::of::<T>(cfg);
    let mut need = footprint::head(&s);
    need.merge(&work(&s));
    need.check(
        &format!("running {}", s.describe(T::NAME)),
        &footprint::hint::<T>(true),
    )
}

/// Classes and sub-centres of a weight of `rows` rows without metadata:
/// from `--num-classes` and `--num-subcenters` (whichever are given must
/// fit `rows`), else K = 1 when no K in 2..=[`MAX_GUESSED_SUBCENTERS`]
/// divides `rows` into two classes or more, else a usage error listing
/// the readings.
fn bare_shape(
    rows: usize,
    classes: Option<usize>,
    subcenters: Option<usize>,
    path: &str,
) -> Result<(usize, usize), CliError> {
    let bad = |why: String| {
        Err(CliError::input(
            path,
            format!("has {rows} weight rows, {why}"),
        ))
    };
    match (classes, subcenters) {
        (Some(c), Some(k)) if c.checked_mul(k) == Some(rows) => Ok((c, k)),
        (Some(c), Some(k)) => bad(format!("not --num-classes {c} × --num-subcenters {k}")),
        (Some(c), None) if rows.is_multiple_of(c) => Ok((c, rows / c)),
        (Some(c), None) => bad(format!("not a multiple of --num-classes {c}")),
        (None, Some(k)) if rows.is_multiple_of(k) => Ok((rows / k, k)),
        (None, Some(k)) => bad(format!("not a multiple of --num-subcenters {k}")),
        (None, None) => {
            let readings: Vec<String> = (1..=MAX_GUESSED_SUBCENTERS.min(rows))
                .filter(|&k| rows.is_multiple_of(k) && (k == 1 || rows / k >= 2))
                .map(|k| format!("{} classes × K = {k}", rows / k))
                .collect();
            if readings.len() == 1 {
                return Ok((rows, 1));
            }
            Err(CliError::Usage(format!(
                "{path} has no arcface metadata, and its {rows} weight rows (C·K) can be \
                 {}: give --num-subcenters K or --num-classes C",
                readings.join(", ")
            )))
        }
    }
}

/// The data `eval` or `predict` runs on, and where it came from (for messages).
pub struct Input<T> {
    pub split: Split<T>,
    pub features: String,
    pub labels: String,
}

/// Files (`labels`: `Some` for `eval`, whose labels may be a CSV's last
/// column), a named built-in set, or the built-in set the checkpoint
/// records (see [`implied_source`]); standardised as the checkpoint says.
pub fn input<T: Real>(
    d: &DataArgs,
    synthetic: &SyntheticArgs,
    labels: Option<Option<&str>>,
    ck: (&Checkpoint, &str),
    cfg: &HeadConfig,
) -> Result<Input<T>, CliError> {
    let (ck, ck_path) = ck;
    let mut input = match (&d.features, labels) {
        (Some(fp), Some(lp)) => Input {
            split: data::load_labelled::<T>(fp, lp, d.sep())?,
            features: fp.clone(),
            labels: lp.unwrap_or(fp).to_string(),
        },
        (Some(fp), None) => Input {
            split: data::load_features::<T>(fp, d.sep())?,
            features: fp.clone(),
            labels: String::new(),
        },
        (None, _) => {
            let src = match d.data {
                Some(_) => builtin_source(d, synthetic)?,
                None => implied_source::<T>(ck, ck_path, cfg, labels.is_some())?,
            };
            let (_, test) = src.load::<T>()?;
            let name = format!("<{} test split>", src.tag());
            Input {
                split: test,
                features: name.clone(),
                labels: name,
            }
        }
    };
    if let Some(s) = Standardize::from_checkpoint(ck, ck_path)? {
        s.apply(&mut input.split, &input.features, Some(ck_path))?;
    }
    Ok(input)
}

/// The built-in set the checkpoint's metadata names, used only when its
/// classes and dimension are the head's and generating it takes at most
/// [`MAX_IMPLIED_DATA`] bytes: a checkpoint never makes the program build
/// data it did not ask for. Checked before anything is generated.
fn implied_source<T: Real>(
    ck: &Checkpoint,
    ck_path: &str,
    cfg: &HeadConfig,
    labelled: bool,
) -> Result<Source, CliError> {
    let src = match ck.extra().get("data").and_then(|t| Source::from_tag(t)) {
        Some(s) if s != Source::Files => s,
        _ => {
            return Err(CliError::Usage(if labelled {
                "give --features PATH and --labels PATH (or --data digits|synthetic)".into()
            } else {
                "give --features PATH (or --data digits|synthetic)".into()
            }))
        }
    };
    let bytes = src.need::<T>().total();
    if bytes > MAX_IMPLIED_DATA {
        return Err(CliError::input(
            ck_path,
            format!(
                "names the data set {}, {} to generate, more than the {} generated \
                 unasked; pass --data synthetic and its --synthetic-* flags to generate it",
                src.tag(),
                memory::bytes(bytes),
                memory::bytes(MAX_IMPLIED_DATA)
            ),
        ));
    }
    let own = (cfg.num_classes, cfg.in_channels);
    if let Some((c, d)) = src.shape().filter(|&s| s != own) {
        return Err(CliError::input(
            ck_path,
            format!(
                "names the data set {} (C = {c}, D = {d}) but holds a head of C = {}, D = {}; \
                 give the data with --features or --data",
                src.tag(),
                own.0,
                own.1
            ),
        ));
    }
    Ok(src)
}

/// The features have the head's width, else an error naming their file.
/// The labelled input of a command that scores a checkpoint's head (eval,
/// clean): [`input`] with the labels required, its width checked against
/// the head and every label checked against the head's classes.
pub fn labelled_input<T: Real>(
    d: &DataArgs,
    synthetic: &SyntheticArgs,
    labels: Option<&str>,
    ck: (&Checkpoint, &str),
    head: &ArcFaceHead<T>,
) -> Result<Input<T>, CliError> {
    let input = input::<T>(d, synthetic, Some(labels), ck, head.config())?;
    check_dim(head.config(), &input)?;
    let c = head.config().num_classes;
    input
        .split
        .check_labels(c, &input.labels, "the checkpoint's num_classes")?;
    Ok(input)
}

pub fn check_dim<T: Real>(cfg: &HeadConfig, input: &Input<T>) -> Result<(), CliError> {
    let d = cfg.in_channels;
    if input.split.d != d {
        return Err(CliError::input(
            &input.features,
            format!(
                "has {} features per sample, the checkpoint's head expects in_channels = {d}",
                input.split.d
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_weight_is_read_only_as_the_flags_or_its_one_reading_say() {
        let shape = |rows, c, k| bare_shape(rows, c, k, "w").map_err(|e| e.to_string());
        assert_eq!(shape(30, None, Some(3)), Ok((10, 3)));
        assert_eq!(shape(30, Some(10), None), Ok((10, 3)));
        assert_eq!(shape(30, Some(10), Some(3)), Ok((10, 3)));
        assert_eq!(shape(7, None, None), Ok((7, 1)));
        assert_eq!(shape(1, None, None), Ok((1, 1)));
        assert_eq!(shape(17 * 19, None, None), Ok((323, 1)));
        let e = shape(30, None, None).unwrap_err();
        assert!(
            e.contains("30 classes × K = 1, 15 classes × K = 2, 10 classes × K = 3")
                && e.contains("give --num-subcenters K or --num-classes C"),
            "{e}"
        );
        assert!(shape(30, Some(7), None)
            .unwrap_err()
            .contains("--num-classes 7"));
        assert!(shape(30, Some(10), Some(2))
            .unwrap_err()
            .contains("× --num-subcenters 2"));
    }
}

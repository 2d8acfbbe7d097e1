//! What `eval` and `predict` share: the checkpoint's head, and the features
//! to run it on, standardised as in training.

use super::{builtin_source, relabel};
use crate::args::{CheckpointArgs, DataArgs, SyntheticArgs};
use crate::data::builtin::Source;
use crate::data::preprocess::Standardize;
use crate::data::{self, Split};
use crate::CliError;
use arcface::{ArcFaceHead, Checkpoint, HeadConfig, Real};

/// The checkpoint and its head: the checkpoint's own configuration, or for
/// a file without metadata (a PyTorch export) one built from
/// `--num-subcenters`, `--scale` and `--margins` over the library's defaults.
pub fn head<T: Real>(a: &CheckpointArgs) -> Result<(Checkpoint, ArcFaceHead<T>), CliError> {
    let path = &a.checkpoint;
    let ck = Checkpoint::load(path)?;
    let shape = &a.shape;
    if ck.config().is_some() {
        let given = [
            ("num-subcenters", shape.num_subcenters.is_some()),
            ("scale", shape.scale.is_some()),
            ("margins", shape.margins.is_some()),
        ];
        if let Some((f, _)) = given.iter().find(|g| g.1) {
            return Err(CliError::Usage(format!(
                "--{f}: {path} carries its own head configuration"
            )));
        }
        let head = ck.to_head(None).map_err(|e| relabel(e, path))?;
        return Ok((ck, head));
    }
    let (rows, d) = ck.shape();
    let k = shape
        .num_subcenters
        .unwrap_or(HeadConfig::new(rows, d).num_subcenters);
    if k == 0 || rows % k != 0 {
        return Err(CliError::input(
            path,
            format!("has {rows} weight rows, not a multiple of --num-subcenters {k}"),
        ));
    }
    let mut cfg = HeadConfig::new(rows / k, d).with_subcenters(k);
    if let Some(s) = shape.scale {
        cfg = cfg.with_scale(s);
    }
    if let Some(m) = &shape.margins {
        cfg = cfg.with_margins(m.resolve(rows / k)?);
    }
    let head = ck.to_head(Some(cfg)).map_err(|e| relabel(e, path))?;
    Ok((ck, head))
}

/// The data `eval` or `predict` runs on, and where it came from (for messages).
pub struct Input<T> {
    pub split: Split<T>,
    pub features: String,
    pub labels: String,
}

/// Files (`labels`: `Some` for `eval`, whose labels may be a CSV's last
/// column), a named built-in set, or the built-in set the checkpoint
/// records; standardised as the checkpoint says.
pub fn input<T: Real>(
    d: &DataArgs,
    synthetic: &SyntheticArgs,
    labels: Option<Option<&str>>,
    ck: &Checkpoint,
    ck_path: &str,
) -> Result<Input<T>, CliError> {
    let mut input = match (&d.features, labels) {
        (Some(fp), Some(lp)) => Input {
            split: data::load_labelled::<T>(fp, lp)?,
            features: fp.clone(),
            labels: lp.unwrap_or(fp).to_string(),
        },
        (Some(fp), None) => Input {
            split: data::load_features::<T>(fp)?,
            features: fp.clone(),
            labels: String::new(),
        },
        (None, _) => {
            let src = match (
                d.data,
                ck.extra().get("data").and_then(|t| Source::from_tag(t)),
            ) {
                (Some(_), _) => builtin_source(d, synthetic),
                (None, Some(Source::Files) | None) => {
                    return Err(CliError::Usage(if labels.is_some() {
                        "give --features PATH and --labels PATH (or --data digits|synthetic)".into()
                    } else {
                        "give --features PATH (or --data digits|synthetic)".into()
                    }))
                }
                (None, Some(s)) => s,
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
        s.apply(&mut input.split, &input.features)?;
    }
    Ok(input)
}

/// The features have the head's width, else an error naming their file.
pub fn check_dim<T: Real>(head: &ArcFaceHead<T>, input: &Input<T>) -> Result<(), CliError> {
    let d = head.config().in_channels;
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

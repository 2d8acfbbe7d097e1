//! `train`'s inputs: the training and held-out data, the checkpoint a run
//! starts from, the standardisation and the number of classes.

use super::super::builtin_source;
use crate::args::TrainArgs;
use crate::data::builtin::Source;
use crate::data::preprocess::Standardize;
use crate::data::{self, split, Split};
use crate::CliError;
use arcface::{Checkpoint, Real};

/// Labels above this need an explicit `--num-classes` (a guard against a
/// stray huge label silently asking for a gigantic head).
const MAX_INFERRED_CLASSES: i64 = 1_000_000;

/// The training data, and the files it came from (for messages).
pub struct TrainData<T> {
    pub train: Split<T>,
    pub val: Option<Split<T>>,
    pub source: Source,
    pub features_path: String,
    pub labels_path: String,
    pub val_features_path: String,
    pub val_labels_path: String,
}

/// The checkpoint a run starts from: `--init` (fine-tuning) or `--resume`.
pub struct Start {
    pub ck: Checkpoint,
    pub path: String,
    pub resume: bool,
}

/// Files (`--features`, with `--val-features` or `--val-fraction`), or a
/// built-in set with its fixed test split.
pub fn load_data<T: Real>(a: &TrainArgs) -> Result<TrainData<T>, CliError> {
    let Some(fp) = &a.data.features else {
        let source = builtin_source(&a.data, &a.synthetic)?;
        let (train, test) = source.load::<T>()?;
        let name = format!("<{} set>", source.tag());
        return Ok(TrainData {
            train,
            val: Some(test),
            source,
            features_path: name.clone(),
            labels_path: name.clone(),
            val_features_path: name.clone(),
            val_labels_path: name,
        });
    };
    let sep = a.data.sep();
    let lp = a.labels.labels.as_deref();
    let train = data::load_labelled::<T>(fp, lp, sep)?;
    let labels_path = lp.unwrap_or(fp).to_string();
    let held = &a.held_out;
    let (train, val, val_features_path, val_labels_path) =
        match (&held.val_features, held.val_fraction) {
            (Some(vf), _) => {
                let vl = held.val_labels.as_deref();
                let val = data::load_labelled::<T>(vf, vl, sep)?;
                if val.d != train.d {
                    return Err(CliError::input(
                        vf,
                        format!(
                            "has {} columns but the training features have {}",
                            val.d, train.d
                        ),
                    ));
                }
                let vlp = vl.unwrap_or(vf).to_string();
                (train, Some(val), vf.clone(), vlp)
            }
            (None, Some(f)) => {
                if held.num_classes.is_none() {
                    check_inferable(train.max_label(), &labels_path)?;
                }
                let (t, v) = split::stratified(train, f, a.training.seed)?;
                if t.len() == 0 || v.len() == 0 {
                    return Err(CliError::Usage(format!(
                        "--val-fraction {f} leaves an empty split"
                    )));
                }
                (t, Some(v), fp.clone(), labels_path.clone())
            }
            (None, None) => (train, None, String::new(), String::new()),
        };
    Ok(TrainData {
        train,
        val,
        source: Source::Files,
        features_path: fp.clone(),
        labels_path,
        val_features_path,
        val_labels_path,
    })
}

/// Without `--num-classes`, the largest label `m` sizes the head: refuse one
/// that asks for more than [`MAX_INFERRED_CLASSES`].
fn check_inferable(m: i64, labels_path: &str) -> Result<(), CliError> {
    if m >= MAX_INFERRED_CLASSES {
        return Err(CliError::input(
            labels_path,
            format!("holds label {m}; pass --num-classes if that many classes are meant"),
        ));
    }
    Ok(())
}

pub fn load_start(a: &TrainArgs) -> Result<Option<Start>, CliError> {
    let t = &a.training;
    let (path, resume) = match (&t.resume, &t.init) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        (None, None) => return Ok(None),
    };
    Ok(Some(Start {
        ck: Checkpoint::load(path).map_err(|e| super::super::relabel(e, path))?,
        path: path.clone(),
        resume,
    }))
}

/// The starting checkpoint's standardisation, or (digits, `--standardize`)
/// one fitted on the training split; applied to both splits.
pub fn standardize<T: Real>(
    a: &TrainArgs,
    start: Option<&Start>,
    data: &mut TrainData<T>,
) -> Result<Option<Standardize>, CliError> {
    let mut st = match start {
        Some(s) => {
            Standardize::from_checkpoint(&s.ck, &s.path)?.map(|t| (t, Some(s.path.as_str())))
        }
        None => None,
    };
    if st.is_none() && (data.source == Source::Digits || a.held_out.standardize) {
        st = Some((Standardize::fit(&data.train)?, None));
    }
    if let Some((s, from)) = &st {
        s.apply(&mut data.train, &data.features_path, *from)?;
        if let Some(v) = &mut data.val {
            s.apply(v, &data.val_features_path, *from)?;
        }
    }
    Ok(st.map(|s| s.0))
}

/// `--num-classes`, else the checkpoint's, else the largest label + 1; every
/// label is checked against it.
pub fn num_classes<T: Real>(
    a: &TrainArgs,
    start: Option<&Start>,
    data: &TrainData<T>,
) -> Result<usize, CliError> {
    let ck_classes = start.and_then(|s| s.ck.config()).map(|c| c.num_classes);
    let (c, why) = match (a.held_out.num_classes, ck_classes) {
        (Some(c), _) => (c, "--num-classes"),
        (None, Some(c)) => (c, "the checkpoint's num_classes"),
        (None, None) => {
            let m = data
                .train
                .max_label()
                .max(data.val.as_ref().map_or(0, |v| v.max_label()));
            check_inferable(m, &data.labels_path)?;
            (m as usize + 1, "classes seen")
        }
    };
    if c == 0 {
        return Err(CliError::Usage(
            "invalid value for '--num-classes <C>': must be at least 1".into(),
        ));
    }
    data.train.check_labels(c, &data.labels_path, why)?;
    if let Some(v) = &data.val {
        v.check_labels(c, &data.val_labels_path, why)?;
    }
    Ok(c)
}

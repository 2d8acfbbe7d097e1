//! The checks of one head against one golden block (`exact_f64` or
//! `upstream_f64`): inference (logits, scores, labels), training logits,
//! then the loss and both gradients, each under the deviation that applies.

use super::compare::compare;
use super::head::HeadCase;
use super::json::{labels_of, list, num, raises, tensor};
use super::reference::{sample_ce, target_rows, RefCase};
use arcface::{ArcFaceHead, Batch, HeadConfig, Real, Reduction, Workspace};
use serde_json::Value;
use std::collections::BTreeSet;

/// What the crate must do with this batch, by deviation.
enum LossExpect {
    /// Compare with the golden block.
    Golden,
    /// D3: a Sum the golden code refuses; checked against the reference and
    /// the Mean gradients.
    Sum,
    /// An error is the crate's answer too (D4, D12, empty batch).
    Error(&'static str),
}

fn loss_expectation(hc: &HeadCase, block: &Value, head_cfg: &HeadConfig) -> LossExpect {
    if let Some(msg) = raises(&block["loss"]) {
        if hc.labels.iter().any(|&l| l < 0 || l as usize >= hc.c) {
            return LossExpect::Error("D12");
        }
        if hc.n == 0 {
            return LossExpect::Error("empty batch");
        }
        if head_cfg.loss.use_soft && hc.soft.is_none() {
            return LossExpect::Error("D4");
        }
        if head_cfg.loss.reduction == Reduction::Sum {
            return LossExpect::Sum;
        }
        panic!("{}: unexpected upstream failure {msg}", hc.v["name"]);
    }
    if head_cfg.loss.use_soft && hc.soft.is_none() {
        // upstream computes the N == C broadcast bug silently (D4)
        return LossExpect::Error("D4");
    }
    LossExpect::Golden
}

/// Machine epsilon of T.
fn eps_of<T: Real>() -> f64 {
    if T::NAME == "f32" {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    }
}

fn as_f64<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// The worst normalised error of the comparisons so far, for one head
/// against one block; a failed comparison names the head and block.
struct Worst {
    name: String,
    worst: f64,
}

impl Worst {
    fn add(&mut self, r: Result<f64, String>) -> Result<(), String> {
        let e = r.map_err(|e| format!("{}: {e}", self.name))?;
        self.worst = self.worst.max(e);
        Ok(())
    }
}

/// Everything one check of a head reads: the case, the head, the block,
/// the features in `T`, and the tolerance.
struct Ctx<'a, T: Real> {
    hc: &'a HeadCase<'a>,
    head: &'a ArcFaceHead<T>,
    block: &'a Value,
    cmpv: &'a Value,
    x: Vec<T>,
    rtol: f64,
    /// Rows left out of the golden comparisons: the constructed rows of a
    /// rounding-sensitive case.
    skip: BTreeSet<usize>,
}

/// Checks `head` (precision `T`) against the block `block_name` at relative
/// tolerance `rtol`; returns the worst normalised error.
pub fn check_head<T: Real>(
    hc: &HeadCase,
    head: &ArcFaceHead<T>,
    rtol: f64,
    block_name: &str,
) -> Result<f64, String> {
    let cx = Ctx {
        hc,
        head,
        block: &hc.v[block_name],
        cmpv: &hc.v["compare"],
        x: hc.x.iter().map(|&v| T::from_f64(v)).collect(),
        rtol,
        skip: if hc.sensitive {
            hc.constructed.clone()
        } else {
            BTreeSet::new()
        },
    };
    let mut worst = Worst {
        name: format!("{} {block_name}", T::NAME),
        worst: 0.0,
    };
    check_inference(&cx, &mut worst)?;
    let lt_ref = check_train_logits(&cx, &mut worst)?;
    check_loss_and_gradients(&cx, &lt_ref, &mut worst)?;
    Ok(worst.worst)
}

/// `logits`, `predict`'s scores and labels (labels exactly).
fn check_inference<T: Real>(cx: &Ctx<T>, worst: &mut Worst) -> Result<(), String> {
    let (c, none) = (cx.hc.c, BTreeSet::new());
    let floor_logits = num(&cx.cmpv["row_floor_logits"]);
    let li = as_f64(&cx.head.logits(&cx.x).map_err(|e| e.to_string())?);
    worst.add(compare(
        "logits_infer",
        &li,
        &tensor(&cx.block["logits_infer"]).1,
        c,
        &|_| floor_logits,
        cx.rtol,
        &none,
    ))?;
    let pred = cx.head.predict(&cx.x).map_err(|e| e.to_string())?;
    worst.add(compare(
        "pred_scores",
        &as_f64(&pred.scores),
        &tensor(&cx.block["pred_scores"]).1,
        c,
        &|_| 1.0,
        cx.rtol,
        &none,
    ))?;
    let want_labels = labels_of(&cx.block["pred_labels"]);
    let got_labels: Vec<i64> = pred.labels.iter().map(|&l| l as i64).collect();
    if got_labels != want_labels {
        return Err(format!(
            "{}: pred_labels {got_labels:?} != {want_labels:?}",
            worst.name
        ));
    }
    Ok(())
}

/// `logits_train` against the block (where upstream did not raise), and on
/// the constructed rows of a rounding-sensitive case against the
/// reference's documented policy (D1). Returns the reference's training
/// logits, which the loss checks use.
fn check_train_logits<T: Real>(cx: &Ctx<T>, worst: &mut Worst) -> Result<Vec<f64>, String> {
    let hc = cx.hc;
    let floor_logits = num(&cx.cmpv["row_floor_logits"]);
    let refc = RefCase {
        c: hc.c,
        k: hc.k,
        d: hc.d,
        scale: num(&hc.v["config"]["scale"]),
        easy: hc.v["config"]["easy_margin"].as_bool().unwrap_or(false),
        margins: cx.head.margins().to_vec(),
    };
    let lt = as_f64(
        &cx.head
            .logits_train(&cx.x, &hc.labels)
            .map_err(|e| e.to_string())?,
    );
    let lt_ref = refc.logits_train(&hc.x, &hc.w, &hc.labels);
    if let Some(v) = cx.block.get("logits_train").filter(|v| raises(v).is_none()) {
        worst.add(compare(
            "logits_train",
            &lt,
            &tensor(v).1,
            hc.c,
            &|_| floor_logits,
            cx.rtol,
            &cx.skip,
        ))?;
    }
    if hc.sensitive {
        // constructed rows: the D1 policy (clamp, target-only margin), finite
        let rows: BTreeSet<usize> = (0..hc.n).filter(|r| !hc.constructed.contains(r)).collect();
        compare(
            "logits_train (D1 policy rows)",
            &lt,
            &lt_ref,
            hc.c,
            &|_| floor_logits,
            policy_tol::<T>(),
            &rows,
        )
        .map_err(|e| format!("{}: {e}", worst.name))?;
    }
    Ok(lt_ref)
}

/// A cosine within rounding of ±1 moves θ = acos(c) by up to √(2δc): the
/// policy rows can only agree to about √(16 ε) of the working precision.
fn policy_tol<T: Real>() -> f64 {
    (16.0 * eps_of::<T>()).sqrt()
}

/// `forward_backward` on the case's batch: an error where the crate's
/// answer is one, the D3 sum, or the block's loss and gradients.
fn check_loss_and_gradients<T: Real>(
    cx: &Ctx<T>,
    lt_ref: &[f64],
    worst: &mut Worst,
) -> Result<(), String> {
    let hc = cx.hc;
    let mut ws = Workspace::new(cx.head, hc.n);
    let soft: Option<Vec<T>> = hc
        .soft
        .as_ref()
        .map(|s| s.iter().map(|&v| T::from_f64(v)).collect());
    let mut batch = Batch::new(&cx.x, &hc.labels);
    if let Some(s) = &soft {
        batch = batch.with_soft_targets(s);
    }
    let result = cx.head.forward_backward(&batch, &mut ws);
    let cfg = cx.head.config().clone();
    match loss_expectation(hc, cx.block, &cfg) {
        LossExpect::Error(dev) => {
            if let Ok(v) = result {
                return Err(format!(
                    "{}: expected an error ({dev}), got {v:?}",
                    worst.name
                ));
            }
            Ok(())
        }
        LossExpect::Sum => {
            let loss = result
                .map_err(|e| format!("{}: D3 sum: {e}", worst.name))?
                .to_f64();
            check_sum(cx, &cfg, &batch, &ws, loss, lt_ref, worst)
        }
        LossExpect::Golden => {
            let loss = result.map_err(|e| format!("{}: loss: {e}", worst.name))?;
            check_golden_loss(cx, &cfg, &ws, loss.to_f64(), lt_ref, worst)?;
            check_gradients(cx, &ws, worst)
        }
    }
}

/// Per-sample losses ℓ_i from the reference's training logits.
fn reference_sample_losses(hc: &HeadCase, cfg: &HeadConfig, lt_ref: &[f64]) -> Vec<f64> {
    let targets = target_rows(hc.n, hc.c, &hc.labels, hc.soft.as_deref(), cfg);
    let cw = cfg
        .loss
        .class_weight
        .clone()
        .unwrap_or_else(|| vec![1.0; hc.c]);
    sample_ce(lt_ref, hc.c, &targets, &cw)
}

/// D3: the Sum reduction upstream refuses. The loss against
/// loss_weight · Σ ℓ_i of the reference; the gradients against N times
/// those of the same head with the Mean reduction.
fn check_sum<T: Real>(
    cx: &Ctx<T>,
    cfg: &HeadConfig,
    batch: &Batch<'_, T>,
    ws: &Workspace<T>,
    loss: f64,
    lt_ref: &[f64],
    worst: &mut Worst,
) -> Result<(), String> {
    let (n, d, none) = (cx.hc.n, cx.hc.d, BTreeSet::new());
    let floor_loss = num(&cx.cmpv["floor_loss"]);
    let want: f64 = cfg.loss.loss_weight
        * reference_sample_losses(cx.hc, cfg, lt_ref)
            .iter()
            .sum::<f64>();
    worst.add(compare(
        "loss (D3 sum)",
        &[loss],
        &[want],
        1,
        &|_| floor_loss,
        cx.rtol,
        &none,
    ))?;
    let gf = as_f64(ws.grad_features());
    let gw = as_f64(ws.grad_weight());
    let mut cm = cfg.clone();
    cm.loss.reduction = Reduction::Mean;
    let mut hm = ArcFaceHead::<T>::from_weight(cm, cx.head.weight()).unwrap();
    hm.set_margins(cx.head.margins()).unwrap();
    let mut wsm = Workspace::new(&hm, n);
    hm.forward_backward(batch, &mut wsm)
        .map_err(|e| e.to_string())?;
    let sc = |v: &[T]| v.iter().map(|g| g.to_f64() * n as f64).collect::<Vec<_>>();
    let tol = if T::NAME == "f32" { 1e-6 } else { 1e-13 };
    worst.add(compare(
        "grad_features (D3 sum)",
        &gf,
        &sc(wsm.grad_features()),
        d,
        &|_| 1e-30,
        tol,
        &none,
    ))?;
    worst.add(compare(
        "grad_weight (D3 sum)",
        &gw,
        &sc(wsm.grad_weight()),
        d,
        &|_| 1e-30,
        tol,
        &none,
    ))
}

/// The loss (per sample under `Reduction::None`) against the block; where a
/// rounding-sensitive case's golden loss is not finite (D1), against the
/// reference's loss under the same policy instead.
fn check_golden_loss<T: Real>(
    cx: &Ctx<T>,
    cfg: &HeadConfig,
    ws: &Workspace<T>,
    loss: f64,
    lt_ref: &[f64],
    worst: &mut Worst,
) -> Result<(), String> {
    let none = BTreeSet::new();
    let floor_loss = num(&cx.cmpv["floor_loss"]);
    let got_loss: Vec<f64> = if cfg.loss.reduction == Reduction::None {
        as_f64(ws.sample_losses())
    } else {
        vec![loss]
    };
    let want_loss = list(&cx.block["loss"]);
    if cx.hc.sensitive && want_loss.iter().any(|v| !v.is_finite()) {
        // D1: the crate's loss is finite where upstream's is NaN; check it
        // against the reference's logits under the same policy
        let per = reference_sample_losses(cx.hc, cfg, lt_ref);
        let lw = cfg.loss.loss_weight;
        let want: Vec<f64> = match cfg.loss.reduction {
            Reduction::None => per.iter().map(|l| lw * l).collect(),
            Reduction::Sum => vec![lw * per.iter().sum::<f64>()],
            Reduction::Mean => vec![lw * per.iter().sum::<f64>() / cx.hc.n as f64],
        };
        compare(
            "loss (D1 policy)",
            &got_loss,
            &want,
            got_loss.len(),
            &|_| floor_loss,
            policy_tol::<T>(),
            &none,
        )
        .map_err(|e| format!("{}: {e}", worst.name))?;
        Ok(())
    } else {
        worst.add(compare(
            "loss",
            &got_loss,
            &want_loss,
            got_loss.len(),
            &|_| floor_loss,
            cx.rtol,
            &none,
        ))
    }
}

/// Both gradients finite (D2), and against the block; under a
/// rounding-sensitive case, the constructed rows of the features' gradient
/// and the weight rows that received their target gradient are left out.
fn check_gradients<T: Real>(
    cx: &Ctx<T>,
    ws: &Workspace<T>,
    worst: &mut Worst,
) -> Result<(), String> {
    let hc = cx.hc;
    let (c, k, d) = (hc.c, hc.k, hc.d);
    let gf = as_f64(ws.grad_features());
    let gw = as_f64(ws.grad_weight());
    if let Some(bad) = gf.iter().chain(&gw).position(|g| !g.is_finite()) {
        return Err(format!(
            "{}: non-finite gradient at flat index {bad} (D2 promises finite)",
            worst.name
        ));
    }
    let ff = list(&cx.cmpv["row_floor_grad_features"]);
    let fw = list(&cx.cmpv["row_floor_grad_weight"]);
    worst.add(compare(
        "grad_features",
        &gf,
        &tensor(&cx.block["grad_features"]).1,
        d,
        &|r| ff[r],
        cx.rtol,
        &cx.skip,
    ))?;
    // weight rows that received a constructed (rounding-sensitive) sample's
    // target gradient depend on that rounding too
    let mut wskip = BTreeSet::new();
    if hc.sensitive {
        let (_, am) = tensor(&hc.v["diagnostics"]["subcenter_argmax"]);
        for &i in &hc.constructed {
            let y = hc.labels[i] as usize;
            wskip.insert(y * k + am[i * c + y] as usize);
        }
    }
    worst.add(compare(
        "grad_weight",
        &gw,
        &tensor(&cx.block["grad_weight"]).1,
        d,
        &|r| fw[r],
        cx.rtol,
        &wskip,
    ))
}

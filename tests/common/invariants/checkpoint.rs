//! Checkpoints from untrusted bytes, through `Checkpoint::from_bytes`,
//! `to_bytes` and `to_head`.
//!
//! Three ways to make a file from the fuzz input, so that mutations reach
//! past the safetensors header into the metadata and the head:
//! 0. the bytes as they are;
//! 1. a valid checkpoint of a small random head (any dtype), then up to 8
//!    byte edits and an optional truncation;
//! 2. a hand-built safetensors file whose `arcface` metadata string is the
//!    rest of the input (so the fuzzer writes the JSON), with a weight of a
//!    chosen dtype and shape (≤ 4×4).

use super::bytes::Bytes;
use arcface::{
    ArcFaceHead, Checkpoint, Error, HeadConfig, LossConfig, Margins, Real, WeightDtype, WEIGHT_KEY,
};

const DTYPES: [WeightDtype; 4] = [
    WeightDtype::F32,
    WeightDtype::F16,
    WeightDtype::BF16,
    WeightDtype::F64,
];

/// Turns fuzz input into the bytes of a (possibly broken) checkpoint file.
pub fn decode_checkpoint(data: &[u8]) -> Vec<u8> {
    let mut b = Bytes::new(data);
    match b.u8() % 3 {
        0 => b.rest().to_vec(),
        1 => {
            let (c, k, d) = (
                1 + b.u8() as usize % 4,
                1 + b.u8() as usize % 2,
                1 + b.u8() as usize % 6,
            );
            let dtype = DTYPES[b.u8() as usize % 4];
            let margins: Vec<f64> = (0..c).map(|_| (b.u8() as f64 - 64.0) / 32.0).collect();
            let loss = match b.u8() % 3 {
                0 => LossConfig::cross_entropy(),
                1 => LossConfig::label_smooth(0.1),
                _ => LossConfig::cross_entropy().with_class_weight(vec![2.0; c]),
            };
            let cfg = HeadConfig::new(c, d)
                .with_subcenters(k)
                .with_scale(b.u8() as f64)
                .with_margins(Margins::PerClass(margins))
                .with_loss(loss);
            let w: Vec<f32> = (0..c * k * d)
                .map(|_| (b.u8() as f32 - 128.0) / 16.0)
                .collect();
            let head = ArcFaceHead::<f32>::from_weight(cfg, &w).expect("valid head");
            let mut bytes = Checkpoint::from_head(&head, dtype)
                .expect("small weights fit every dtype")
                .to_bytes()
                .expect("serialise");
            for _ in 0..b.u8() % 9 {
                let at = b.u16() as usize % bytes.len();
                bytes[at] ^= b.u8();
            }
            if b.u8() & 1 == 1 {
                bytes.truncate(b.u16() as usize % (bytes.len() + 1));
            }
            bytes
        }
        _ => {
            let dtype = ["F32", "F16", "BF16", "F64", "I32"][b.u8() as usize % 5];
            let size = match dtype {
                "F16" | "BF16" => 2,
                "F64" => 8,
                _ => 4,
            };
            let (rows, cols) = (b.u8() as usize % 5, b.u8() as usize % 5);
            let n = rows * cols * size;
            let weight: Vec<u8> = (0..n).map(|_| b.u8()).collect();
            let meta = String::from_utf8_lossy(b.rest()).into_owned();
            safetensors_bytes(&meta, dtype, rows, cols, &weight)
        }
    }
}

/// A one-tensor safetensors file with `{"arcface": meta}` as metadata.
pub fn safetensors_bytes(
    meta: &str,
    dtype: &str,
    rows: usize,
    cols: usize,
    data: &[u8],
) -> Vec<u8> {
    let header = format!(
        "{{\"__metadata__\":{{\"arcface\":{}}},\"{WEIGHT_KEY}\":{{\"dtype\":\"{dtype}\",\
         \"shape\":[{rows},{cols}],\"data_offsets\":[0,{}]}}}}",
        json_string(meta),
        data.len()
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Invariants of reading a checkpoint from untrusted bytes:
///
/// * `Checkpoint::from_bytes` never panics (no arithmetic overflow either:
///   the fuzz build has overflow checks) and allocates no more than the
///   file's size; an error is a typed `Error` with a message.
/// * An accepted checkpoint is consistent: `weight()` has rows × cols
///   values; `to_bytes` then `from_bytes` gives the same checkpoint.
/// * `to_head::<f32>(None)` and `::<f64>`: a typed error, or a head whose
///   weights have the checkpoint's length and whose logits on a row of ones
///   are finite (or an error naming a result that overflows).
pub fn check_checkpoint(bytes: &[u8]) {
    let ck = match Checkpoint::from_bytes(bytes) {
        Ok(ck) => ck,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let (rows, cols) = ck.shape();
    assert!(rows > 0 && cols > 0);
    assert_eq!(ck.weight::<f64>().len(), rows * cols);
    let again = ck.to_bytes().expect("an accepted checkpoint serialises");
    let back = Checkpoint::from_bytes(&again).expect("its own bytes read back");
    assert!(
        same(&back, &ck),
        "round trip changed the checkpoint: {ck:?} vs {back:?}"
    );
    head_ok::<f32>(&ck);
    head_ok::<f64>(&ck);
}

/// The configuration with `Margins::Uniform(m)` written as the per-class
/// list it stands for (the writer stores margins per class, D9).
fn per_class(c: &HeadConfig) -> HeadConfig {
    let mut c = c.clone();
    if let Margins::Uniform(m) = c.margins {
        c.margins = Margins::PerClass(vec![m; c.num_classes]);
    }
    c
}

/// Equal, with weights compared bit for bit (NaN payloads included) and
/// margins compared as per-class lists.
fn same(a: &Checkpoint, b: &Checkpoint) -> bool {
    let bits =
        |c: &Checkpoint| -> Vec<u64> { c.weight::<f64>().iter().map(|x| x.to_bits()).collect() };
    a.shape() == b.shape()
        && a.dtype() == b.dtype()
        && a.config().map(per_class) == b.config().map(per_class)
        && a.extra() == b.extra()
        && bits(a) == bits(b)
}

fn head_ok<T: Real>(ck: &Checkpoint) {
    let head = match ck.to_head::<T>(None) {
        Ok(h) => h,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let (rows, cols) = ck.shape();
    assert_eq!(head.weight().len(), rows * cols);
    match head.logits(&vec![T::ONE; cols]) {
        Ok(z) => assert!(
            z.iter().all(|v| v.is_finite_()),
            "non-finite logits from a loaded head"
        ),
        Err(e) => assert!(
            matches!(e, Error::NonFinite { .. } | Error::Overflow { .. }),
            "unexpected logits error {e:?}"
        ),
    }
}

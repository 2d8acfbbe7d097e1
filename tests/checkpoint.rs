//! Checkpoints: the exact layout mmpretrain expects (checked without
//! Python), round trips, files exported from PyTorch (F32, F16, BF16),
//! clear errors for bad files, optimiser state, atomic writes.

use arcface::{
    load_head, load_optimizer, optimizer_path, save_head, save_optimizer, AdamW, ArcFaceHead,
    Checkpoint, Error, HeadConfig, LabelSmooth, LossConfig, MarginGrad, Margins, Optimizer,
    OptimizerConfig, Reduction, Sgd, SmoothMode, WeightDtype, METADATA_KEY, WEIGHT_KEY,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("arcface_ckpt_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The header of a safetensors file: (header length, JSON).
fn header(bytes: &[u8]) -> (usize, Value) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (n, serde_json::from_slice(&bytes[8..8 + n]).unwrap())
}

/// A safetensors file as `safetensors.torch.save_file` writes it.
fn torch_file(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)], metadata: Option<Value>) -> Vec<u8> {
    let mut h = serde_json::Map::new();
    if let Some(m) = metadata {
        h.insert("__metadata__".into(), m);
    }
    let mut off = 0;
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        h.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + bytes.len()]}),
        );
        off += bytes.len();
        data.extend_from_slice(bytes);
    }
    let mut hs = Value::Object(h).to_string().into_bytes();
    while !hs.len().is_multiple_of(8) {
        hs.push(b' ');
    }
    let mut out = (hs.len() as u64).to_le_bytes().to_vec();
    out.extend(hs);
    out.extend(data);
    out
}

fn sample_x(n: usize, d: usize) -> Vec<f32> {
    (0..n * d)
        .map(|i| ((i as f32) * 0.731).sin() + 0.1 * ((i % 7) as f32))
        .collect()
}

/// Every key `ArcFaceClsHead.__init__` accepts (mmpretrain 1.2.0), plus `type`.
const ARCFACE_KWARGS: [&str; 9] = [
    "type",
    "num_classes",
    "in_channels",
    "num_subcenters",
    "scale",
    "margins",
    "easy_margin",
    "loss",
    "init_cfg",
];

#[test]
fn layout_is_exactly_what_mmpretrain_expects() {
    let (c, k, d) = (5, 3, 16);
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 11).unwrap();
    head.set_margins(&[0.1, 0.2, 0.3, 0.4, 0.5]).unwrap();
    let bytes = Checkpoint::from_head(&head, WeightDtype::F32)
        .unwrap()
        .to_bytes()
        .unwrap();
    let (n, h) = header(&bytes);
    assert_eq!(n % 8, 0, "header padded to 8 bytes");
    let keys: BTreeSet<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["__metadata__", "head.norm_product.weight"]),
        "one tensor: strict load_state_dict works"
    );
    let t = &h["head.norm_product.weight"];
    assert_eq!(t["dtype"], "F32");
    assert_eq!(
        t["shape"],
        json!([c * k, d]),
        "nn.Linear(in_channels, num_classes * num_subcenters).weight"
    );
    assert_eq!(t["data_offsets"], json!([0, c * k * d * 4]));
    assert_eq!(bytes.len(), 8 + n + c * k * d * 4);
    let data: Vec<f32> = bytes[8 + n..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(data, head.weight(), "row c·K + k, little-endian, C order");

    // metadata: one string entry holding the head's mmpretrain config
    let meta = h["__metadata__"].as_object().unwrap();
    assert_eq!(meta.keys().collect::<Vec<_>>(), vec![METADATA_KEY]);
    let arc: Value = serde_json::from_str(meta[METADATA_KEY].as_str().unwrap()).unwrap();
    assert_eq!(arc["format_version"], 1);
    let cfg = arc["head"].as_object().unwrap();
    for key in cfg.keys() {
        assert!(
            ARCFACE_KWARGS.contains(&key.as_str()),
            "`{key}` is not an ArcFaceClsHead argument"
        );
    }
    assert_eq!(arc["head"]["type"], "ArcFaceClsHead");
    assert_eq!(arc["head"]["num_classes"], c);
    assert_eq!(arc["head"]["in_channels"], d);
    assert_eq!(arc["head"]["num_subcenters"], k);
    assert_eq!(arc["head"]["scale"], 64.0);
    assert_eq!(arc["head"]["margins"], json!([0.1, 0.2, 0.3, 0.4, 0.5]));
    assert_eq!(arc["head"]["easy_margin"], false);
    assert_eq!(
        arc["head"]["loss"],
        json!({"type": "CrossEntropyLoss", "loss_weight": 1.0, "reduction": "mean", "use_soft": false})
    );
    assert_eq!(arc["margin_grad"], "exact");
}

#[test]
fn save_load_gives_identical_predictions_and_configuration() {
    let dir = tmp_dir("roundtrip");
    let configs = [
        HeadConfig::new(7, 12),
        HeadConfig::new(4, 9)
            .with_subcenters(3)
            .with_scale(30.0)
            .with_easy_margin(true)
            .with_margin_grad(MarginGrad::StraightThrough)
            .with_margins(Margins::PerClass(vec![0.1, 0.2 + 1e-17, 1.0 / 3.0, -0.25]))
            .with_loss(
                LossConfig::cross_entropy()
                    .with_class_weight(vec![1.0, 0.5, 2.0, 0.1])
                    .with_loss_weight(0.7),
            ),
        HeadConfig::new(3, 5).with_loss(LossConfig {
            label_smooth: Some(LabelSmooth {
                label_smooth_val: 0.1,
                mode: SmoothMode::ClassyVision,
                num_classes: Some(3),
            }),
            reduction: Reduction::None,
            use_soft: true,
            ..LossConfig::cross_entropy()
        }),
    ];
    for (i, cfg) in configs.into_iter().enumerate() {
        let path = dir.join(format!("h{i}.safetensors"));
        let h32 = ArcFaceHead::<f32>::new(cfg.clone(), i as u64).unwrap();
        save_head(&h32, &path).unwrap();
        let back = load_head::<f32>(&path).unwrap();
        assert_eq!(back.config(), h32.config());
        assert_eq!(back.margins(), h32.margins());
        assert_eq!(back.weight(), h32.weight());
        let x = sample_x(6, cfg.in_channels);
        assert_eq!(back.predict(&x).unwrap(), h32.predict(&x).unwrap());
        assert_eq!(
            back.logits_train(&x, &[0, 1, 2, 0, 1, 2]).unwrap(),
            h32.logits_train(&x, &[0, 1, 2, 0, 1, 2]).unwrap()
        );

        // f64 heads keep every bit with F64 storage
        let h64 = ArcFaceHead::<f64>::new(cfg.clone(), i as u64 + 9).unwrap();
        let ck = Checkpoint::from_head(&h64, WeightDtype::F64).unwrap();
        ck.save(&path).unwrap();
        let back: ArcFaceHead<f64> = Checkpoint::load(&path).unwrap().to_head(None).unwrap();
        assert_eq!(back.weight(), h64.weight());
        assert_eq!(back.config(), h64.config());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_are_reproducible_byte_for_byte() {
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(9, 8).with_subcenters(2), 3).unwrap();
    let mut a = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    a.set_extra("data", "digits");
    a.set_extra("note", "x");
    let first = a.to_bytes().unwrap();
    for _ in 0..5 {
        assert_eq!(a.clone().to_bytes().unwrap(), first);
    }
}

#[test]
fn half_precision_storage() {
    let w = [0.1f32, -2.5, 3.0e-5, 1000.0, 0.333, -0.0];
    let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(3, 2), &w).unwrap();
    for (dt, name, conv) in [
        (
            WeightDtype::F16,
            "F16",
            (|x: f32| half::f16::from_f32(x).to_f32()) as fn(f32) -> f32,
        ),
        (WeightDtype::BF16, "BF16", |x: f32| {
            half::bf16::from_f32(x).to_f32()
        }),
        (WeightDtype::F64, "F64", |x: f32| x),
    ] {
        let bytes = Checkpoint::from_head(&head, dt)
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(header(&bytes).1[WEIGHT_KEY]["dtype"], name);
        let ck = Checkpoint::from_bytes(&bytes).unwrap();
        assert_eq!(ck.dtype(), dt);
        let want: Vec<f32> = w.iter().map(|&x| conv(x)).collect();
        assert_eq!(ck.weight::<f32>(), want, "{name}");
    }
    let big = ArcFaceHead::<f32>::from_weight(HeadConfig::new(1, 2), &[1e5, 0.0]).unwrap();
    let e = Checkpoint::from_head(&big, WeightDtype::F16).unwrap_err();
    assert!(e.to_string().contains("does not fit in F16"), "{e}");
}

#[test]
fn loads_what_pytorch_exports() {
    let (rows, d) = (6, 4);
    let w: Vec<f32> = (0..rows * d).map(|i| (i as f32 - 11.0) / 7.0).collect();
    let enc = |dt: &str| -> Vec<u8> {
        w.iter()
            .flat_map(|&x| match dt {
                "F32" => x.to_le_bytes().to_vec(),
                "F16" => half::f16::from_f32(x).to_le_bytes().to_vec(),
                _ => half::bf16::from_f32(x).to_le_bytes().to_vec(),
            })
            .collect()
    };
    let pt = Some(json!({"format": "pt"}));
    for dt in ["F32", "F16", "BF16"] {
        for key in [WEIGHT_KEY, "norm_product.weight"] {
            // a whole classifier's state dict: backbone tensors are ignored
            let bytes = torch_file(
                &[
                    ("backbone.conv1.weight", "F32", vec![2, 2], vec![0u8; 16]),
                    (key, dt, vec![rows, d], enc(dt)),
                    ("neck.step", "I64", vec![1], vec![0u8; 8]),
                ],
                pt.clone(),
            );
            let ck = Checkpoint::from_bytes(&bytes).unwrap();
            assert_eq!(ck.config(), None);
            assert_eq!(ck.shape(), (rows, d));
            let want: Vec<f32> = match dt {
                "F32" => w.clone(),
                "F16" => w.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect(),
                _ => w
                    .iter()
                    .map(|&x| half::bf16::from_f32(x).to_f32())
                    .collect(),
            };
            assert_eq!(ck.weight::<f32>(), want);
            let e = ck.to_head::<f32>(None).unwrap_err();
            assert!(e.to_string().contains("PyTorch"), "{e}");
            let head: ArcFaceHead<f32> = ck
                .to_head(Some(HeadConfig::new(3, d).with_subcenters(2)))
                .unwrap();
            assert_eq!(head.weight(), &want[..]);
            let e = ck.to_head::<f32>(Some(HeadConfig::new(4, d))).unwrap_err();
            assert!(
                e.to_string().contains("shape (6, 4)") && e.to_string().contains("(4, 4)"),
                "{e}"
            );
        }
    }
}

#[test]
fn bad_files_are_clear_errors() {
    bad_tensors_are_clear_errors();
    bad_metadata_is_a_clear_error();
    truncated_or_flipped_files_never_panic();
}

/// Reading `bytes` is a checkpoint error whose message contains `needle`.
fn check_bad(bytes: &[u8], needle: &str) {
    let e = Checkpoint::from_bytes(bytes).unwrap_err();
    assert!(matches!(e, Error::Checkpoint { .. }), "{e:?}");
    assert!(
        e.to_string().contains(needle),
        "{e} should mention {needle:?}"
    );
}

/// Files whose tensor is missing, of the wrong dtype or shape, or that are
/// no safetensors file at all.
fn bad_tensors_are_clear_errors() {
    let w = vec![0u8; 6 * 4 * 4];
    check_bad(
        &torch_file(&[("fc.weight", "F32", vec![6, 4], w.clone())], None),
        "has no tensor `head.norm_product.weight`",
    );
    check_bad(
        &torch_file(&[("fc.weight", "F32", vec![6, 4], w.clone())], None),
        "fc.weight",
    );
    check_bad(
        &torch_file(&[(WEIGHT_KEY, "I32", vec![6, 4], w.clone())], None),
        "dtype I32",
    );
    check_bad(
        &torch_file(&[(WEIGHT_KEY, "F32", vec![24], vec![0u8; 96])], None),
        "shape [24]",
    );
    check_bad(
        &torch_file(&[(WEIGHT_KEY, "F32", vec![2, 3, 4], vec![0u8; 96])], None),
        "shape [2, 3, 4]",
    );
    check_bad(
        &torch_file(&[(WEIGHT_KEY, "F32", vec![0, 4], vec![])], None),
        "shape [0, 4]",
    );
    check_bad(
        b"not a safetensors file at all",
        "not a valid safetensors file",
    );
    check_bad(&[], "not a valid safetensors file");
}

/// A valid tensor with metadata that is not JSON, of another format
/// version, of another shape, or with a bad field.
fn bad_metadata_is_a_clear_error() {
    let w = vec![0u8; 6 * 4 * 4];
    let t = |meta: Value| {
        torch_file(
            &[(WEIGHT_KEY, "F32", vec![6, 4], w.clone())],
            Some(json!({ "arcface": meta.to_string() })),
        )
    };
    check_bad(
        &torch_file(
            &[(WEIGHT_KEY, "F32", vec![6, 4], w.clone())],
            Some(json!({"arcface": "{nope"})),
        ),
        "not valid JSON",
    );
    check_bad(&t(json!({"format_version": 2})), "format_version 2");
    let fresh = ArcFaceHead::<f32>::new(HeadConfig::new(6, 4), 0).unwrap();
    let fresh = Checkpoint::from_head(&fresh, WeightDtype::F32)
        .unwrap()
        .to_bytes()
        .unwrap();
    let meta = header(&fresh).1["__metadata__"]["arcface"].clone();
    let mut good: Value = serde_json::from_str(meta.as_str().unwrap()).unwrap();
    assert!(Checkpoint::from_bytes(&t(good.clone())).is_ok());
    good["head"]["num_classes"] = json!(3);
    good["head"]["margins"] = json!(0.5);
    check_bad(&t(good.clone()), "metadata describes (3, 4)");
    good["head"]["num_classes"] = json!(6);
    good["head"]["scale"] = json!("big");
    check_bad(&t(good.clone()), "`head.scale` must be a number");
    good["head"]["scale"] = json!(64.0);
    good["head"].as_object_mut().unwrap().remove("margins");
    check_bad(&t(good.clone()), "`head.margins` is missing");
    good["head"]["margins"] = json!([0.5, 0.5]);
    check_bad(&t(good.clone()), "invalid head");
    good["head"]["margins"] = json!(0.5);
    good["head"]["loss"]["type"] = json!("FocalLoss");
    check_bad(&t(good), "FocalLoss");
}

/// Every truncation of a valid file is an error, never a panic; flipped
/// bytes never panic.
fn truncated_or_flipped_files_never_panic() {
    let bytes = Checkpoint::from_head(
        &ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap(),
        WeightDtype::F32,
    )
    .unwrap()
    .to_bytes()
    .unwrap();
    for cut in 0..bytes.len() {
        assert!(
            Checkpoint::from_bytes(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
    }
    let mut flipped = bytes.clone();
    for i in (0..flipped.len()).step_by(7) {
        flipped[i] ^= 0x5a;
        let _ = Checkpoint::from_bytes(&flipped);
        flipped[i] ^= 0x5a;
    }
}

#[test]
fn saving_is_atomic() {
    let dir = tmp_dir("atomic");
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    let missing = dir.join("no_such_dir").join("h.safetensors");
    assert!(matches!(save_head(&head, &missing), Err(Error::Io { .. })));
    assert!(!missing.exists());
    let path = dir.join("h.safetensors");
    std::fs::write(&path, b"old").unwrap();
    save_head(&head, &path).unwrap();
    assert_eq!(load_head::<f32>(&path).unwrap().weight(), head.weight());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("h.safetensors")],
        "no temporary file left"
    );
    let e = load_head::<f32>(dir.join("absent.safetensors")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("absent.safetensors"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn optimiser_state_travels_in_its_own_file() {
    let dir = tmp_dir("optim");
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 3).with_subcenters(2), 1).unwrap();
    let ckpt = dir.join("run.safetensors");
    assert_eq!(optimizer_path(&ckpt), dir.join("run.optim.safetensors"));
    save_head(&head, &ckpt).unwrap();
    for cfg in [
        OptimizerConfig::Sgd(Sgd {
            nesterov: true,
            ..Sgd::default()
        }),
        OptimizerConfig::AdamW(AdamW {
            beta1: 0.85,
            ..AdamW::default()
        }),
    ] {
        let mut opt = Optimizer::new(cfg, &head).unwrap();
        let bufs: Vec<Vec<f32>> = (0..cfg.state_names().len())
            .map(|k| (0..24).map(|i| (i * (k + 1)) as f32 * 0.01).collect())
            .collect();
        let refs: Vec<&[f32]> = bufs.iter().map(Vec::as_slice).collect();
        opt.set_state(42, &refs).unwrap();
        let op = optimizer_path(&ckpt);
        save_optimizer(&opt, &head, &op).unwrap();
        let back = load_optimizer(&op, &head).unwrap();
        assert_eq!(back, opt);
        // PyTorch's state names, shaped like the weight
        let bytes = std::fs::read(&op).unwrap();
        let (_, h) = header(&bytes);
        for name in cfg.state_names() {
            let t = &h[format!("{WEIGHT_KEY}.{name}")];
            assert_eq!(t["shape"], json!([8, 3]));
            assert_eq!(t["dtype"], "F32");
        }
        // a head of another shape is refused
        let other = ArcFaceHead::<f32>::new(HeadConfig::new(4, 3), 1).unwrap();
        let e = load_optimizer(&op, &other).unwrap_err();
        assert!(e.to_string().contains("shape"), "{e}");
    }
    // the checkpoint itself holds only the weight; a checkpoint is not an optimiser file
    let (_, h) = header(&std::fs::read(&ckpt).unwrap());
    assert_eq!(h.as_object().unwrap().len(), 2);
    assert!(load_optimizer(&ckpt, &head)
        .unwrap_err()
        .to_string()
        .contains("not an optimiser-state file"));
    std::fs::remove_dir_all(&dir).unwrap();
}

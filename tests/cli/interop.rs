//! Checkpoints from and for PyTorch: a plain export (no arcface metadata)
//! with the head flags, margins files, fine-tuning and resuming.

use super::*;

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
#[test]
fn loads_a_plain_pytorch_export() {
    let dir = Dir::new("torch");
    let (c, k, d) = (4, 2, 6);
    let w: Vec<f32> = (0..c * k * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let bf: Vec<u8> = w
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    let mut h = format!(
        "{{\"__metadata__\":{{\"format\":\"pt\"}},\"head.norm_product.weight\":{{\"dtype\":\"BF16\",\"shape\":[{},{d}],\"data_offsets\":[0,{}]}}}}",
        c * k,
        bf.len()
    )
    .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(bf);
    dir.write("torch.safetensors", &file);
    let (x, y) = clusters(c, d, 20, 0.5, 3);
    let xf = dir.write("x.npy", &npy("<f4", &[20, d], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[20], &i64s(&y)));
    ok(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "2",
            "--scale",
            "30",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
    );
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "3",
            "--features",
            &xf,
            "--labels",
            &yf,
        ],
        1,
    );
    assert!(se.contains("not a multiple of --num-subcenters 3"), "{se}");
    // fine-tune it: the configuration comes from the flags
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--init",
            "torch.safetensors",
            "--num-subcenters",
            "2",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "1",
            "--out",
            "ft.safetensors",
        ],
    );
    let se = fails(
        &dir,
        &[
            "train",
            "--quiet",
            "--init",
            "torch.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "1",
        ],
        1,
    );
    assert!(se.contains("shape (8, 6)"), "{se}");
}

// Long on purpose: one scenario, a sequence of program runs over the same
// files, each checked in turn; most lines are argument lists, one per line.
#[test]
fn eval_and_predict_take_a_margins_file_as_train_does() {
    let dir = Dir::new("marginsfile");
    let (c, d) = (4, 6);
    let w: Vec<f32> = (0..c * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let mut h = format!(
        "{{\"head.norm_product.weight\":{{\"dtype\":\"F32\",\"shape\":[{c},{d}],\"data_offsets\":[0,{}]}}}}",
        4 * w.len()
    )
    .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(f32s(&w));
    dir.write("torch.safetensors", &file);
    let (x, y) = clusters(c, d, 20, 0.5, 5);
    let xf = dir.write("x.npy", &npy("<f4", &[20, d], &f32s(&x)));
    let yf = dir.write("y.npy", &npy("<i8", &[20], &i64s(&y)));
    let same = dir.write("same.txt", b"0.3\n0.3\n0.3\n0.3\n");
    let eval = |margins: &str| {
        let args = [
            "eval",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "1",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--format",
            "json",
            "--margins",
            margins,
        ];
        let (out, _) = ok(&dir, &args);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        v["loss"].as_f64().unwrap()
    };
    // a file of equal margins is the same head as the number
    assert_eq!(eval(&same), eval("0.3"));
    let varied = dir.write("varied.txt", b"0.1\n0.5\n0.2\n0.4\n");
    assert_ne!(eval(&varied), eval("0.3"));
    let predict = |margins: &str| {
        let args = [
            "predict",
            "--checkpoint",
            "torch.safetensors",
            "--num-classes",
            "4",
            "--features",
            &xf,
            "--format",
            "csv",
            "--margins",
            margins,
        ];
        ok(&dir, &args).0
    };
    assert_eq!(predict(&same), predict("0.3"));
    // one margin per class, or an error naming the file
    let short = dir.write("short.txt", b"0.3\n0.3\n");
    let se = fails(
        &dir,
        &[
            "predict",
            "--checkpoint",
            "torch.safetensors",
            "--num-subcenters",
            "1",
            "--features",
            &xf,
            "--margins",
            &short,
        ],
        1,
    );
    assert!(
        se.contains("short.txt: ") && se.contains("expected one per class (4)"),
        "{se}"
    );
    // a checkpoint with its own configuration refuses the flag
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--epochs",
            "1",
            "--margins",
            &varied,
            "--out",
            "h.safetensors",
        ],
    );
    assert_eq!(
        head_meta(&dir.path("h.safetensors"))["head"]["margins"][1],
        0.5
    );
    let se = fails(
        &dir,
        &[
            "eval",
            "--checkpoint",
            "h.safetensors",
            "--features",
            &xf,
            "--labels",
            &yf,
            "--margins",
            &same,
        ],
        2,
    );
    assert!(se.contains("carries its own head configuration"), "{se}");
}

fn head_meta(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    serde_json::from_str(h["__metadata__"]["arcface"].as_str().unwrap()).unwrap()
}

#[test]
fn fine_tuning_keeps_the_checkpoint_configuration() {
    let dir = Dir::new("finetune");
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "2",
            "--scale",
            "30",
            "--num-subcenters",
            "2",
            "--out",
            "a.safetensors",
        ],
    );
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--init",
            "a.safetensors",
            "--out",
            "b.safetensors",
        ],
    );
    let (a, b) = (
        head_meta(&dir.path("a.safetensors")),
        head_meta(&dir.path("b.safetensors")),
    );
    assert_eq!(b["head"]["scale"], 30.0);
    assert_eq!(b["head"]["num_subcenters"], 2);
    assert_eq!(a["head"], b["head"]);
    assert_eq!(b["extra"]["data"], "digits");
    // a flag still changes it
    ok(
        &dir,
        &[
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--init",
            "a.safetensors",
            "--margins",
            "0.3",
            "--out",
            "c.safetensors",
        ],
    );
    assert_eq!(
        head_meta(&dir.path("c.safetensors"))["head"]["margins"][0],
        0.3
    );
    // --resume keeps everything and refuses head flags
    let se = fails(
        &dir,
        &["train", "--resume", "a.safetensors", "--scale", "10"],
        2,
    );
    assert!(
        se.contains("'--resume <CKPT>' cannot be used with") && se.contains("--scale <S>"),
        "{se}"
    );
    let se = fails(&dir, &["train", "--resume", "a.safetensors"], 1);
    assert!(se.contains("a.optim.safetensors"), "{se}");
}

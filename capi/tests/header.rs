//! The committed header `include/arcface.h` is what cbindgen generates from
//! this crate today. `ARCFACE_BLESS=1 cargo test -p arcface-capi --test
//! header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_matches_cbindgen() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not parse the crate")
        .write(&mut generated);
    let header = crate_dir.join("../include/arcface.h");
    if std::env::var_os("ARCFACE_BLESS").is_some() {
        std::fs::write(&header, &generated).unwrap();
        return;
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/arcface.h differs from cbindgen's output; regenerate it with \
         ARCFACE_BLESS=1 cargo test -p arcface-capi --test header"
    );
}

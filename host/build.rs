//! Builds the example plugins in `plugins/` for wasm32-wasip2 and bundles them
//! into the binary (see `src/bundled`).

use std::path::Path;

/// The example plugins, as named in `plugins/Cargo.toml`.
const PLUGINS: [&str; 5] = [
    "restart-on-oom",
    "scale-on-saturation",
    "rollback-bad-deploy",
    "rotate-full-disk",
    "plan-runner",
];

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest_dir)
        .parent()
        .expect("host/ has a parent");
    let out_dir = std::env::var("OUT_DIR").expect("set by cargo");
    let built = guest_build::build(root, &root.join("plugins"), &PLUGINS);
    for (name, path) in PLUGINS.iter().zip(built) {
        let dest = Path::new(&out_dir).join(format!("{name}.wasm"));
        std::fs::copy(&path, &dest).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", path.display(), dest.display())
        });
    }
}

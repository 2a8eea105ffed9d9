//! Builds the example plugins in `plugins/` for wasm32-wasip2 and bundles them
//! into the binary (see `src/bundled`), with the demo's broken-on-purpose
//! plugin, which only `blastwall demo` loads.

use std::path::Path;

/// The example plugins, as named in `plugins/Cargo.toml`.
const PLUGINS: [&str; 5] = [
    "restart-on-oom",
    "scale-on-saturation",
    "rollback-bad-deploy",
    "rotate-full-disk",
    "plan-runner",
];

/// Plugins bundled for `blastwall demo` only, never offered as examples.
const DEMO_ONLY: [&str; 1] = ["demo-faults"];

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let root = Path::new(&manifest_dir)
        .parent()
        .expect("host/ has a parent");
    let out_dir = std::env::var("OUT_DIR").expect("set by cargo");
    let names: Vec<&str> = PLUGINS.iter().chain(&DEMO_ONLY).copied().collect();
    let built = guest_build::build(root, &root.join("plugins"), &names);
    for (name, path) in names.iter().zip(built) {
        let dest = Path::new(&out_dir).join(format!("{name}.wasm"));
        std::fs::copy(&path, &dest).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", path.display(), dest.display())
        });
    }
}

//! Builds the test guests in `tests/guests/` and tells the tests where they are.

use std::path::Path;

const GUESTS: [&str; 3] = ["adversary", "net-guest", "trivial"];

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let tests = Path::new(&manifest_dir);
    let root = tests.parent().expect("tests/ has a parent");
    let built = guest_build::build(root, &tests.join("guests"), &GUESTS);
    for (name, path) in GUESTS.iter().zip(built) {
        let var = format!("GUEST_{}", name.to_uppercase().replace('-', "_"));
        println!("cargo:rustc-env={var}={}", path.display());
        println!(
            "cargo:rustc-env={var}_MANIFEST={}",
            tests
                .join("guests")
                .join(name)
                .join("blastwall.toml")
                .display()
        );
    }
}

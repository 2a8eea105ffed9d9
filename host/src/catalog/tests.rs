//! Catalog validation: every mistake an operator can make, with its message.

use super::*;
use crate::bundled;

fn plugins() -> Vec<Arc<PluginArtifact>> {
    bundled::ALL
        .iter()
        .map(|b| {
            Arc::new(PluginArtifact::insecure_unsigned(
                b.wasm.to_vec(),
                b.manifest(),
            ))
        })
        .collect()
}

fn entries(text: &str) -> Result<BTreeMap<String, CatalogEntry>, String> {
    #[derive(Deserialize)]
    struct File {
        catalog: BTreeMap<String, CatalogEntry>,
    }
    toml::from_str::<File>(text)
        .map(|f| f.catalog)
        .map_err(|e| e.to_string())
}

fn resolve(text: &str) -> Result<Catalog, String> {
    Catalog::resolve(&entries(text)?, &plugins())
}

#[test]
fn resolves_by_version_and_by_digest_with_defaults() {
    let digest = plugins()
        .iter()
        .find(|p| p.manifest().name == "rotate-full-disk")
        .unwrap()
        .digest()
        .to_string();
    let catalog = resolve(&format!(
        r#"
        [catalog.oom-killed]
        plugin = "restart-on-oom@0.1.0"
        mode = "auto"

        [catalog.disk-full]
        plugin = "{digest}"
        "#
    ))
    .unwrap();
    assert_eq!(catalog.classes(), vec!["disk-full", "oom-killed"]);
    let oom = catalog.get("oom-killed").unwrap();
    assert_eq!(oom.plugin.manifest().name, "restart-on-oom");
    assert_eq!(oom.entry.mode, Mode::Auto);
    let disk = catalog.get("disk-full").unwrap();
    assert_eq!(disk.plugin.manifest().name, "rotate-full-disk");
    let rules = disk.entry.rules();
    assert_eq!(
        rules.mode,
        Mode::Shadow,
        "nothing mutates until an operator opts in"
    );
    assert_eq!(
        (
            rules.confidence_floor,
            rules.max_attempts,
            rules.rate_limit_per_hour
        ),
        (0.8, 2, 6)
    );
    assert_eq!(rules.cooldown, Duration::from_secs(600));
    assert!(
        catalog.get("cpu-saturation").is_none(),
        "unmapped classes are absent"
    );
}

#[test]
fn explains_every_invalid_entry() {
    let cases = [
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom\"",
            "plugin \"restart-on-oom\" must be pinned: name@version (e.g. restart-on-oom@0.1.0) or sha256:<digest>",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"sha256:abc\"",
            "plugin \"sha256:abc\": a digest is sha256: and 64 hex digits",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@9.9.9\"",
            "catalog class oom-killed: plugin restart-on-oom@9.9.9 is not loaded (loaded: restart-on-oom@0.1.0, scale-on-saturation@0.1.0, rollback-bad-deploy@0.1.0, rotate-full-disk@0.1.0, plan-runner@0.1.0)",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"rotate-full-disk@0.1.0\"",
            "catalog class oom-killed: plugin rotate-full-disk@0.1.0 declares classes [disk-full], not oom-killed",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nconfidence-floor = 1.2",
            "catalog class oom-killed: confidence-floor 1.2 is not between 0 and 1",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nmax-attempts = 0",
            "catalog class oom-killed: max-attempts 0 is not between 1 and 100",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nrate-limit-per-hour = 0",
            "catalog class oom-killed: rate-limit-per-hour 0 would never act; use mode = \"notify\" instead",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nrollback = \"rollback-bad-deploy@0.1.0\"",
            "catalog class oom-killed: rollback runs when verification fails, so it needs verify",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nverify = { kind = \"alert-resolves\" }\nrollback = \"restart-on-oom@0.1.0\"",
            "catalog class oom-killed: rollback plugin restart-on-oom@0.1.0 does not declare the rollback capability",
        ),
        (
            "[catalog.\"OOM\"]\nplugin = \"restart-on-oom@0.1.0\"",
            "catalog class \"OOM\": a class is lowercase letters, digits and '-'",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nmode = \"yolo\"",
            "unknown variant `yolo`, expected one of `auto`, `approve`, `notify`, `shadow`",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\nmode = \"auto\"\nwiden-to = [\"deployment/prod/*\"]",
            "catalog class oom-killed: widen-to needs mode \"approve\" or \"shadow\": an automatic run is budgeted as one target",
        ),
        (
            "[catalog.oom-killed]\nplugin = \"restart-on-oom@0.1.0\"\ncooldwon = \"5m\"",
            "unknown field `cooldwon`",
        ),
    ];
    for (text, message) in cases {
        let err = resolve(text).unwrap_err();
        assert!(
            err.contains(message),
            "{text}\n got: {err}\nwant: {message}"
        );
    }
}

#[test]
fn the_entry_policy_confines_to_the_target_and_widens_only_when_asked() {
    let catalog = resolve(
        r#"
        [catalog.oom-killed]
        plugin = "restart-on-oom@0.1.0"
        widen-to = ["deployment/prod/checkout-*"]
        "#,
    )
    .unwrap();
    let policy = catalog.get("oom-killed").unwrap().entry.policy();
    assert!(policy.confine_to_incident_target);
    assert_eq!(
        policy.grant, None,
        "no grant table: the pinned manifest's declaration"
    );
    assert_eq!(policy.widen_to.len(), 1);
}

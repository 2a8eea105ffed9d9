//! `blastwall doctor`: checks what an operator sets up before letting the host
//! act, with the same flags `serve` takes, and prints a table (or `--json`).
//!
//! Every check runs, whatever fails before it, so one pass names every
//! problem. A `fail` is something `serve` would refuse or a live run would
//! trip over; a `warn` works but is probably not what was meant. The exit code
//! is 1 if anything failed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::host::HostArgs;
use blastwall::catalog::Catalog;
use blastwall::config::HostConfig;
use blastwall::provider::CallContext;
use blastwall::signature::{PluginArtifact, TrustStore};
use blastwall::verify::{Prometheus, VerificationSpec};

/// `blastwall doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Print the checks as JSON.
    #[arg(long)]
    json: bool,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
}

/// How long a reachability check may take.
const PROBE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn push(&mut self, check: &'static str, status: Status, detail: impl Into<String>) {
        self.0.push(Check {
            check,
            status,
            detail: detail.into(),
        });
    }
}

/// Runs `blastwall doctor`.
pub async fn doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = examine(&args.host).await;
    if args.json {
        println!("{}", blastwall::text::to_json_pretty(&report.0)?);
    } else {
        let width = report.0.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &report.0 {
            println!(
                "{:<width$}  {:<4}  {}",
                c.check,
                c.status.as_str(),
                blastwall::text::visible(&c.detail)
            );
        }
    }
    let failed = report.0.iter().filter(|c| c.status == Status::Fail).count();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        if !args.json {
            eprintln!("{failed} check(s) failed");
        }
        ExitCode::from(1)
    })
}

async fn examine(host: &HostArgs) -> Report {
    let mut report = Report::default();
    let config = match host.config() {
        Ok((config, embedded)) => {
            let what = match &host.config {
                Some(path) => format!("{} is valid", path.display()),
                None if embedded => "the embedded example configuration (dry runs only)".into(),
                None => "valid".into(),
            };
            report.push("configuration", Status::Ok, what);
            Some(config)
        }
        Err(e) => {
            report.push("configuration", Status::Fail, format!("{e:#}"));
            None
        }
    };
    let trust = trust(host, &mut report);
    let plugins = plugins(host, trust.as_ref(), &mut report);
    if let Some(config) = &config {
        catalog(config, plugins.as_deref(), &mut report);
        workloads(host, config, &mut report).await;
        prometheus(config, &mut report).await;
        notifiers(config, &mut report);
    }
    data_dir(host, &mut report);
    report
}

fn trust(host: &HostArgs, report: &mut Report) -> Option<TrustStore> {
    match host.trust() {
        Ok(Some(store)) => {
            let live = store.keys.iter().filter(|k| k.revoked.is_none()).count();
            let revoked = store.keys.len() - live;
            let status = if live == 0 { Status::Warn } else { Status::Ok };
            report.push(
                "trust store",
                status,
                format!("{live} key(s) in force, {revoked} revoked"),
            );
            Some(store)
        }
        Ok(None) if host.live => {
            report.push(
                "trust store",
                Status::Fail,
                "--live needs --trust FILE to verify the plugins it runs",
            );
            None
        }
        Ok(None) => {
            report.push(
                "trust store",
                Status::Warn,
                "none (--trust): serve signs the bundled plugins with a development key and refuses AI proposals",
            );
            None
        }
        Err(e) => {
            report.push("trust store", Status::Fail, format!("{e:#}"));
            None
        }
    }
}

fn plugins(
    host: &HostArgs,
    trust: Option<&TrustStore>,
    report: &mut Report,
) -> Option<Vec<Arc<PluginArtifact>>> {
    if host.plugins.is_empty() {
        if host.live {
            report.push(
                "plugins",
                Status::Fail,
                "--live needs signed plugins: pass --plugin FILE ... --trust FILE",
            );
            return None;
        }
        let bundled = blastwall::bundled::insecure_unsigned_all();
        report.push(
            "plugins",
            Status::Warn,
            format!(
                "none given: the {} bundled examples, for dry runs",
                bundled.len()
            ),
        );
        return Some(bundled);
    }
    match host.signed_plugins(trust) {
        Ok(plugins) => {
            let names: Vec<String> = plugins
                .iter()
                .map(|p| format!("{}@{}", p.manifest().name, p.manifest().version))
                .collect();
            report.push(
                "plugins",
                Status::Ok,
                format!("{} verified: {}", plugins.len(), names.join(", ")),
            );
            Some(plugins)
        }
        Err(e) => {
            report.push("plugins", Status::Fail, format!("{e:#}"));
            None
        }
    }
}

fn catalog(config: &HostConfig, plugins: Option<&[Arc<PluginArtifact>]>, report: &mut Report) {
    let Some(plugins) = plugins else {
        report.push(
            "catalog",
            Status::Fail,
            "not checked: the plugins it names could not be loaded",
        );
        return;
    };
    match Catalog::resolve(&config.catalog, plugins) {
        Ok(_) if config.catalog.is_empty() => report.push(
            "catalog",
            Status::Warn,
            "empty: every alert goes to a human",
        ),
        Ok(_) => report.push(
            "catalog",
            Status::Ok,
            format!(
                "{} class(es), each pinned to a loaded plugin",
                config.catalog.len()
            ),
        ),
        Err(e) => report.push("catalog", Status::Fail, e),
    }
}

async fn workloads(host: &HostArgs, config: &HostConfig, report: &mut Report) {
    let world = match host.world(config) {
        Ok(world) => world,
        Err(e) => {
            report.push("workloads", Status::Fail, format!("{e:#}"));
            return;
        }
    };
    let provider = world.effects.workloads().name();
    if host.live && config.workloads.provider.is_none() {
        report.push(
            "workloads",
            Status::Warn,
            "no [workloads] provider: this live host acts on log sets only",
        );
    } else {
        let cx = CallContext::decision("doctor", PROBE);
        match world.effects.count_workloads(&cx, None).await {
            Ok(n) => report.push(
                "workloads",
                Status::Ok,
                format!("{provider}: answers, {n} workload(s)"),
            ),
            Err(e) => report.push(
                "workloads",
                Status::Fail,
                format!("{provider}: {} ({})", e, e.kind()),
            ),
        }
    }
    if host.live {
        let sets = &config.log_sets;
        let mut bad = Vec::new();
        for (name, set) in sets {
            match std::fs::metadata(&set.root) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => bad.push(format!("{name}: {} is not a directory", set.root.display())),
                Err(e) => bad.push(format!("{name}: {}: {e}", set.root.display())),
            }
        }
        if bad.is_empty() {
            report.push(
                "log sets",
                Status::Ok,
                format!("{} configured, every root a directory", sets.len()),
            );
        } else {
            report.push("log sets", Status::Fail, bad.join("; "));
        }
    }
}

async fn prometheus(config: &HostConfig, report: &mut Report) {
    let needs = config
        .catalog
        .values()
        .any(|e| matches!(e.verify, Some(VerificationSpec::Promql { .. })));
    let Some(prometheus) = &config.prometheus else {
        if needs {
            report.push(
                "prometheus",
                Status::Fail,
                "catalog entries verify with PromQL, but no [prometheus] is configured",
            );
        } else {
            report.push(
                "prometheus",
                Status::Ok,
                "not configured; no catalog entry needs it",
            );
        }
        return;
    };
    let client = match Prometheus::new(prometheus) {
        Ok(client) => client,
        Err(e) => {
            report.push("prometheus", Status::Fail, e.to_string());
            return;
        }
    };
    match tokio::time::timeout(PROBE, client.query("vector(1)")).await {
        Ok(Ok(_)) => report.push(
            "prometheus",
            Status::Ok,
            format!("{} answers queries", prometheus.url),
        ),
        Ok(Err(e)) => report.push("prometheus", Status::Fail, e.to_string()),
        Err(_) => report.push(
            "prometheus",
            Status::Fail,
            format!("{}: no answer within {PROBE:?}", prometheus.url),
        ),
    }
}

fn notifiers(config: &HostConfig, report: &mut Report) {
    let n = config.escalation.notifiers.len();
    if n == 0 {
        report.push(
            "notifiers",
            Status::Warn,
            "none: escalations are only logged and audited, nobody is paged",
        );
    } else {
        report.push("notifiers", Status::Ok, format!("{n} configured"));
    }
}

fn data_dir(host: &HostArgs, report: &mut Report) {
    let dir = &host.data;
    let probe = dir.join(".doctor-probe");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => report.push(
            "data directory",
            Status::Ok,
            format!("{} is writable", dir.display()),
        ),
        Err(e) => report.push(
            "data directory",
            Status::Fail,
            format!("{}: {e}", dir.display()),
        ),
    }
}

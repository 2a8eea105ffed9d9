//! The scenarios, in the order they run. Each sends real alerts through the
//! real loop and checks the outcome against the loop's answer, the audit
//! record and, where they are the point, the files on disk or the fleet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::ScenarioResult;
use super::observe::{Check, Facts, Story, bytes, thousands};
use super::setup::{AGENT_NAME, LOG_FILES, Rig};
use blastwall::alert::{self, Alert};
use blastwall::bundled::{self, dev::DEV_SIGNER};
use blastwall::proposal;
use blastwall::respond::{Handled, RespondError, Responder, operate};
use blastwall::store::Store;
use blastwall::workload::Workload;

/// One scenario: what it shows and how to play it.
pub(super) struct Scenario {
    /// A stable identifier.
    pub id: &'static str,
    /// What happens, in a few words.
    pub title: &'static str,
    play: Play,
}

#[derive(Clone, Copy)]
enum Play {
    OomRestart,
    DiskRotate,
    CpuScale,
    RollbackApproved,
    DependencyNotify,
    LowConfidence,
    AiProposal,
    RunawayLoop,
    MemoryBomb,
    RepeatedAlert,
    KillSwitch,
}

const fn scenario(id: &'static str, title: &'static str, play: Play) -> Scenario {
    Scenario { id, title, play }
}

/// Every scenario, in order.
pub(super) const ALL: [Scenario; 11] = [
    scenario("oom-restart", "OOM kill → restart", Play::OomRestart),
    scenario(
        "disk-full-rotate",
        "Disk full → rotate real log files",
        Play::DiskRotate,
    ),
    scenario(
        "cpu-saturation-scale",
        "CPU saturation → scale within cap",
        Play::CpuScale,
    ),
    scenario(
        "error-spike-rollback-approved",
        "Error spike → rollback once approved",
        Play::RollbackApproved,
    ),
    scenario(
        "dependency-timeout-notify",
        "Dependency timeout → notify only",
        Play::DependencyNotify,
    ),
    scenario(
        "low-confidence-escalate",
        "Low confidence → escalate",
        Play::LowConfidence,
    ),
    scenario(
        "ai-proposal-denied",
        "AI proposal → denied at the boundary",
        Play::AiProposal,
    ),
    scenario(
        "runaway-loop-fuel",
        "Plugin loops forever → fuel limit",
        Play::RunawayLoop,
    ),
    scenario(
        "memory-bomb-limit",
        "Memory bomb → memory limit",
        Play::MemoryBomb,
    ),
    scenario(
        "same-alert-five-times",
        "Same alert ×5 → cooldown, rate limit",
        Play::RepeatedAlert,
    ),
    scenario(
        "kill-switch",
        "Kill switch on → nothing runs",
        Play::KillSwitch,
    ),
];

impl Scenario {
    /// Plays the scenario on `rig`. Errors only when the store fails.
    pub async fn run(&self, rig: &Rig) -> anyhow::Result<ScenarioResult> {
        let check = match self.play {
            Play::OomRestart => oom_restart(rig).await?,
            Play::DiskRotate => disk_rotate(rig).await?,
            Play::CpuScale => cpu_scale(rig).await?,
            Play::RollbackApproved => rollback_approved(rig).await?,
            Play::DependencyNotify => dependency_notify(rig).await?,
            Play::LowConfidence => low_confidence(rig).await?,
            Play::AiProposal => ai_proposal(rig).await?,
            Play::RunawayLoop => runaway_loop(rig).await?,
            Play::MemoryBomb => memory_bomb(rig).await?,
            Play::RepeatedAlert => repeated_alert(rig).await?,
            Play::KillSwitch => kill_switch(rig).await?,
        };
        Ok(check.finish(self.id, self.title))
    }
}

/// A firing alert as Alertmanager sends it (webhook v4), parsed and validated
/// by the same code as every alert the host receives. `started` is how long
/// ago it started firing; `fingerprint` identifies its label set.
fn alert(
    name: &str,
    labels: &[(&str, &str)],
    summary: &str,
    fingerprint: &str,
    started: Duration,
) -> anyhow::Result<Alert> {
    let mut all: BTreeMap<&str, &str> = labels.iter().copied().collect();
    all.insert("alertname", name);
    let starts_at = humantime::format_rfc3339_seconds(SystemTime::now() - started).to_string();
    let payload = json!({
        "version": "4",
        "status": "firing",
        "receiver": "blastwall",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "alerts": [{
            "status": "firing",
            "labels": all,
            "annotations": {"summary": summary},
            "startsAt": starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": fingerprint,
        }],
    });
    let mut alerts = alert::parse_all(&payload.to_string())?;
    Ok(alerts.remove(0))
}

/// Sends `alert` through `responder` and reads back its incident's record.
async fn handle(responder: &Responder, alert: Alert) -> anyhow::Result<(Handled, Story)> {
    let handled = responder.handle(alert).await?;
    let story = Story::of(responder.store().as_ref(), &handled.incident).await?;
    Ok((handled, story))
}

fn deployment(namespace: &'static str, name: &'static str) -> [(&'static str, &'static str); 2] {
    [("namespace", namespace), ("deployment", name)]
}

const MINUTE: Duration = Duration::from_secs(60);

/// The run's effects, as `function target (simulated|applied)`, each checked
/// against its write-ahead `effect.intent` record.
fn effects(handled: &Handled, story: &Story) -> String {
    let Some(run) = &handled.run else {
        return "no run".into();
    };
    if run.effects.is_empty() {
        return "no effect".into();
    }
    let intents = story.all("effect.intent").count();
    let mut line = run
        .effects
        .iter()
        .map(|e| {
            let how = if e.applied { "applied" } else { "simulated" };
            format!("{} {} ({how})", e.function, e.target)
        })
        .collect::<Vec<_>>()
        .join(", ");
    if intents != run.effects.len() {
        line.push_str(&format!(
            ", with {intents} effect.intent record(s) for {} effect(s)",
            run.effects.len()
        ));
    }
    line
}

fn no_plugin_ran(check: &mut Check, handled: &Handled, story: &Story) {
    let ran = handled.run.is_some() || story.has("run.started") || story.has("run.finished");
    check.holds("no plugin ran", !ran, || "a plugin ran".into());
}

fn escalation_recorded(check: &mut Check, handled: &Handled, story: &Story, decision: &str) {
    let recorded = story
        .last("escalation")
        .and_then(|e| e["decision"].as_str())
        .map(str::to_string);
    check.fact(
        format!("escalation recorded ({decision})"),
        match (handled.escalated, recorded) {
            (true, Some(recorded)) => format!("escalation recorded ({recorded})"),
            (true, None) => "escalated, but no escalation record".into(),
            (false, _) => "not escalated".into(),
        },
    );
}

async fn oom_restart(rig: &Rig) -> anyhow::Result<Check> {
    let alert = alert(
        "KubePodOOMKilled",
        &deployment("prod", "checkout"),
        "checkout containers were OOM-killed 3 times in 10 minutes",
        "de30000000000001",
        5 * MINUTE,
    )?;
    let (handled, story) = handle(&rig.fleet, alert).await?;
    let mut check = Check::new();
    let expected = Facts::expect("execute", None, Some("completed"), "remediated");
    check.outcome("", expected, &handled, &story);
    check.fact(
        "restart.restart deployment/prod/checkout (simulated)",
        effects(&handled, &story),
    );
    let provenance = story.last("run.started").map(|s| &s["provenance"]);
    let signed = provenance.is_some_and(|p| {
        p["kind"] == "signed" && p["signer"] == DEV_SIGNER && p["tier"] == "publisher"
    });
    check.holds("verified signature (dev key, publisher)", signed, || {
        format!("plugin provenance: {}", provenance.unwrap_or(&json!(null)))
    });
    if let Some(key) = provenance.and_then(|p| p["key_id"].as_str()) {
        check.detail(format!("signed by the ephemeral development key {key}"));
    }
    Ok(check)
}

/// The regular files in `dir`, with their sizes.
fn files_in(dir: &std::path::Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() {
            files.push((entry.file_name().to_string_lossy().into_owned(), meta.len()));
        }
    }
    Ok(files)
}

/// The bytes a rotation reported freeing, from its call result
/// (`3 files rotated, 25123 bytes freed`).
fn reported_freed(handled: &Handled) -> Option<u64> {
    let effect = handled.run.as_ref()?.effects.first()?;
    let words: Vec<&str> = effect.result.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "bytes")?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

async fn disk_rotate(rig: &Rig) -> anyhow::Result<Check> {
    let before = files_in(&rig.log_dir)?;
    let before_total: u64 = before.iter().map(|(_, n)| n).sum();
    let alert = alert(
        "NodeFilesystemAlmostFull",
        &[("container", "nginx"), ("mountpoint", "/var/log")],
        "/var/log is 93% full",
        "de30000000000002",
        3 * MINUTE,
    )?;
    let (handled, story) = handle(&rig.logs, alert).await?;
    let mut check = Check::new();
    let expected = Facts::expect("execute", None, Some("completed"), "remediated");
    check.outcome("", expected, &handled, &story);
    check.fact(
        "log-rotation.rotate app (applied)",
        effects(&handled, &story),
    );

    let after = files_in(&rig.log_dir)?;
    let after_total: u64 = after.iter().map(|(_, n)| n).sum();
    let emptied = after
        .iter()
        .filter(|(name, len)| name.ends_with(".log") && *len == 0)
        .count();
    let archives: u64 = after
        .iter()
        .filter(|(name, _)| name.ends_with(".1.gz"))
        .map(|(_, n)| n)
        .sum();
    let archived = after.iter().filter(|(n, _)| n.ends_with(".1.gz")).count();
    let files = LOG_FILES.len();
    let line = format!("{files} log files emptied into {files} archives");
    check.holds(&line, emptied == files && archived == files, || {
        format!("{emptied} log files emptied, {archived} archives on disk")
    });
    let freed = before_total.saturating_sub(after_total);
    let reported = reported_freed(&handled);
    check.holds(
        "bytes freed on disk = bytes reported",
        freed > 0 && reported == Some(freed),
        || {
            format!(
                "{} freed on disk, the run reported {}",
                bytes(freed),
                reported.map_or("nothing".into(), bytes)
            )
        },
    );
    check.detail(format!(
        "freed {} on disk: {} of logs became {} of gzip archives",
        bytes(freed),
        bytes(before_total),
        bytes(archives)
    ));
    Ok(check)
}

async fn cpu_scale(rig: &Rig) -> anyhow::Result<Check> {
    let target: Workload = "deployment/prod/payments".parse()?;
    let cap = rig
        .config
        .catalog
        .get("cpu-saturation")
        .and_then(|entry| entry.grant.as_ref())
        .and_then(|grant| grant.scale.as_ref())
        .map(|scale| scale.max_replicas)
        .ok_or_else(|| anyhow::anyhow!("the demo catalog caps cpu-saturation's scale grant"))?;
    let before = rig.simulated.snapshot(&target)?.replicas;
    let alert = alert(
        "CPUThrottlingHigh",
        &deployment("prod", "payments"),
        "payments is throttled 40% of the time",
        "de30000000000003",
        4 * MINUTE,
    )?;
    let (handled, story) = handle(&rig.fleet, alert).await?;
    let after = rig.simulated.snapshot(&target)?.replicas;
    let mut check = Check::new();
    let expected = Facts::expect("execute", None, Some("completed"), "remediated");
    check.outcome("", expected, &handled, &story);
    check.fact(
        format!("scale.set-replicas {target} (simulated)"),
        effects(&handled, &story),
    );
    let line = format!("scaled up within its cap of {cap}");
    check.holds(&line, after > before && after <= cap, || {
        format!("{before} → {after} replicas, cap {cap}")
    });
    check.detail(format!("{target}: {before} → {after} replicas (cap {cap})"));
    Ok(check)
}

/// The catalog says a human approves every rollback: the alert only asks;
/// the approval runs it, once.
async fn rollback_approved(rig: &Rig) -> anyhow::Result<Check> {
    let target: Workload = "deployment/prod/checkout".parse()?;
    let before = rig.simulated.snapshot(&target)?;
    let alert = alert(
        "HighErrorRateAfterDeploy",
        &deployment("prod", "checkout"),
        "checkout: 9% of requests fail since revision 7 rolled out",
        "de30000000000004",
        2 * MINUTE,
    )?;
    let (asked, story) = handle(&rig.fleet, alert).await?;
    let mut check = Check::new();
    let expected = Facts::expect("await-approval", None, None, "awaiting-approval");
    check.outcome("asked: ", expected, &asked, &story);
    no_plugin_ran(&mut check, &asked, &story);

    let store: &dyn Store = rig.store.as_ref();
    let pending = store
        .approvals()
        .await?
        .into_iter()
        .find(|a| a.incident == asked.incident && a.state == "pending");
    let Some(approval) = pending else {
        check.fact(
            "approved: an approval request",
            "no pending approval request",
        );
        return Ok(check);
    };
    let approved = rig.fleet.approve(&approval.id, "demo-operator").await?;
    let story = Story::of(store, &approved.incident).await?;
    let expected = Facts::expect("execute", None, Some("completed"), "remediated");
    check.outcome("approved: ", expected, &approved, &story);
    check.fact(
        format!("rollback.rollback {target} (simulated)"),
        effects(&approved, &story),
    );
    let again = rig.fleet.approve(&approval.id, "another-operator").await;
    let runs = story.all("run.started").count();
    let approvals = story.all("approval.approved").count();
    check.holds(
        "runs once: a second yes is refused",
        matches!(again, Err(RespondError::NotApprovable(_))) && runs == 1 && approvals == 1,
        || match &again {
            Ok(h) => format!("a second yes was taken: {}", Facts::answered(h)),
            Err(e) => format!("{runs} run(s), {approvals} approval(s) recorded; second yes: {e}"),
        },
    );
    let after = rig.simulated.snapshot(&target)?;
    check.detail(format!(
        "{target}: {} (revision {}) → {} (revision {})",
        before.image, before.revision, after.image, after.revision
    ));
    if let Err(e) = again {
        check.detail(format!("second yes: {e}"));
    }
    Ok(check)
}

async fn dependency_notify(rig: &Rig) -> anyhow::Result<Check> {
    let alert = alert(
        "UpstreamRequestTimeouts",
        &deployment("prod", "payments"),
        "payments: 12% of calls to the card processor time out",
        "de30000000000005",
        2 * MINUTE,
    )?;
    let (handled, story) = handle(&rig.fleet, alert).await?;
    let mut check = Check::new();
    check.outcome(
        "",
        Facts::expect("notify", None, None, "escalated"),
        &handled,
        &story,
    );
    no_plugin_ran(&mut check, &handled, &story);
    escalation_recorded(&mut check, &handled, &story, "notify");
    Ok(check)
}

async fn low_confidence(rig: &Rig) -> anyhow::Result<Check> {
    let alert = alert(
        "ContainerMemoryNearLimit",
        &[("namespace", "prod"), ("statefulset", "orders-db")],
        "orders-db is at 91% of its memory limit",
        "de30000000000006",
        2 * MINUTE,
    )?;
    let (handled, story) = handle(&rig.fleet, alert).await?;
    let mut check = Check::new();
    let expected = Facts::expect("refuse", Some("confidence-floor"), None, "escalated");
    check.outcome("", expected, &handled, &story);
    no_plugin_ran(&mut check, &handled, &story);
    escalation_recorded(&mut check, &handled, &story, "refuse");
    check.detail(handled.reason.clone());
    Ok(check)
}

/// An AI agent, holding a key of the `ai-agent` tier, signs a plan for the
/// CPU-saturated checkout: scale it to 500 replicas and restart every
/// workload in prod. The host admits it (authentic, fresh, a catalog class)
/// and runs it through the plan runner, whose every call meets the grant:
/// catalog ∩ manifest ∩ the ai-agent tier ∩ the incident's target.
async fn ai_proposal(rig: &Rig) -> anyhow::Result<Check> {
    let target: Workload = "deployment/prod/checkout".parse()?;
    let before = rig.simulated.snapshot(&target)?;
    let alert = alert(
        "CPUThrottlingHigh",
        &deployment("prod", "checkout"),
        "checkout is throttled 55% of the time",
        "de30000000000007",
        MINUTE,
    )?;
    let restart_all = [
        "deployment/prod/checkout",
        "deployment/prod/payments",
        "deployment/prod/cart",
        "statefulset/prod/orders-db",
    ];
    let mut actions = vec![json!({
        "capability": "scale", "target": target.to_string(), "arguments": {"replicas": 500}
    })];
    actions.extend(
        restart_all
            .iter()
            .map(|t| json!({"capability": "restart", "target": t})),
    );
    let body = serde_json::to_vec(&json!({
        "alert": alert,
        "class": "cpu-saturation",
        "confidence": 0.97,
        "rationale": "checkout is saturated: scale it far out and restart prod to clear it",
        "actions": actions,
    }))?;
    let nonce = proposal::new_nonce().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let headers = proposal::sign(&body, &rig.agent, SystemTime::now(), &nonce);
    let handled = rig
        .fleet
        .propose_signed(&body, &headers.as_headers())
        .await?;
    let story = Story::of(rig.store.as_ref(), &handled.incident).await?;
    let mut check = Check::new();
    check.detail(format!(
        "the plan: scale {target} to 500 replicas, restart {} prod workloads",
        restart_all.len()
    ));
    let expected = Facts::expect("execute", None, Some("plugin-error"), "failed");
    check.outcome("", expected, &handled, &story);
    let signer = story
        .last("proposal.received")
        .and_then(|r| r["signer"].as_str())
        .map(str::to_string);
    check.holds(
        "signed plan admitted (ai-agent key)",
        signer.as_deref() == Some(AGENT_NAME),
        || format!("proposal record signer: {signer:?}"),
    );
    let (effects, denials) = handled
        .run
        .as_ref()
        .map_or((0, Vec::new()), |r| (r.effects.len(), r.denials.clone()));
    let calls = story.all("call").count();
    let intents = story.all("effect.intent").count();
    let after = rig.simulated.snapshot(&target)?;
    let line = format!("all {} actions denied at the boundary", actions.len());
    check.holds(
        &line,
        denials.len() == actions.len() && calls == actions.len(),
        || {
            format!(
                "{} of {} denied, {calls} call records",
                denials.len(),
                actions.len()
            )
        },
    );
    check.holds(
        "nothing changed",
        effects == 0 && intents == 0 && after == before,
        || format!("{effects} effect(s), {intents} intent(s); {target} now {after:?}"),
    );
    for denial in &denials {
        check.detail(format!(
            "{} {}: {}",
            denial.function, denial.target, denial.reason
        ));
    }
    Ok(check)
}

/// The limits the demo-faults run had, from its `run.finished` record.
fn recorded_limit(story: &Story, field: &str) -> Option<u64> {
    story.last("run.finished")?["limits"][field].as_u64()
}

async fn runaway_loop(rig: &Rig) -> anyhow::Result<Check> {
    let fuel = bundled::DEMO_FAULTS
        .manifest()
        .limits
        .fuel
        .ok_or_else(|| anyhow::anyhow!("demo-faults declares its fuel"))?;
    let alert = alert(
        "DemoRunawayPlugin",
        &deployment("staging", "checkout"),
        "a remediation that never returns",
        "de30000000000008",
        MINUTE,
    )?;
    let (handled, story) = handle(&rig.fleet, alert).await?;
    let mut check = Check::new();
    let expected = Facts::expect("execute", None, Some("fuel-exhausted"), "failed");
    check.outcome("", expected, &handled, &story);
    let used = handled.run.as_ref().map_or(0, |r| r.fuel_consumed);
    let limit = recorded_limit(&story, "fuel");
    let line = format!("stopped at its limit of {} fuel", thousands(fuel));
    check.holds(&line, limit == Some(fuel) && used == fuel, || {
        format!(
            "used {} fuel, the recorded limit is {limit:?}",
            thousands(used)
        )
    });
    escalation_recorded(&mut check, &handled, &story, "run-failed");
    if let Some(run) = &handled.run {
        check.detail(format!(
            "{} fuel in {:.1} ms, then the host ended the run",
            thousands(used),
            run.duration_us as f64 / 1000.0
        ));
    }
    Ok(check)
}

async fn memory_bomb(rig: &Rig) -> anyhow::Result<Check> {
    let mib = bundled::DEMO_FAULTS
        .manifest()
        .limits
        .memory_mib
        .ok_or_else(|| anyhow::anyhow!("demo-faults declares its memory"))?;
    let limit_bytes = u64::from(mib) << 20;
    let alert = alert(
        "DemoMemoryBomb",
        &[("namespace", "kube-system"), ("daemonset", "node-exporter")],
        "a remediation that allocates without end",
        "de30000000000009",
        MINUTE,
    )?;
    let (handled, story) = handle(&rig.fleet, alert).await?;
    let mut check = Check::new();
    let expected = Facts::expect("execute", None, Some("memory-limit"), "failed");
    check.outcome("", expected, &handled, &story);
    let peak = handled
        .run
        .as_ref()
        .map_or(0, |r| r.peak_memory_bytes as u64);
    let limit = recorded_limit(&story, "memory_bytes");
    let line = format!("peak memory within its {} limit", bytes(limit_bytes));
    check.holds(
        &line,
        limit == Some(limit_bytes) && peak <= limit_bytes,
        || {
            format!(
                "peak {}, the recorded limit is {}",
                bytes(peak),
                limit.map_or("missing".into(), bytes)
            )
        },
    );
    escalation_recorded(&mut check, &handled, &story, "run-failed");
    check.detail(format!(
        "peak {} of {}: the next mebibyte was refused",
        bytes(peak),
        bytes(limit_bytes)
    ));
    Ok(check)
}

/// The same alert (name and target) fires five times, each a new incident.
/// Between the runs the demo waits out the class's short cooldown, so the
/// later firings meet the rate limit instead.
async fn repeated_alert(rig: &Rig) -> anyhow::Result<Check> {
    let cooldown = rig
        .config
        .catalog
        .get("oom-killed")
        .map(|entry| entry.cooldown)
        .ok_or_else(|| anyhow::anyhow!("the demo catalog maps oom-killed"))?;
    let execute = || Facts::expect("execute", None, Some("completed"), "remediated");
    let refuse = |by| Facts::expect("refuse", Some(by), None, "escalated");
    // Wait out the cooldown after these firings (counted from 1).
    let plan = [
        (execute(), false),
        (refuse("cooldown"), true),
        (execute(), true),
        (refuse("rate-limit"), false),
        (refuse("rate-limit"), false),
    ];
    let mut check = Check::new();
    let mut last_start = Instant::now();
    for (n, (expected, then_wait)) in plan.into_iter().enumerate() {
        let started = Duration::from_secs(60 * (50 - 10 * n as u64));
        let alert = alert(
            "KubePodOOMKilled",
            &deployment("prod", "cart"),
            "cart containers were OOM-killed",
            "de3000000000000a",
            started,
        )?;
        if expected.decision == "execute" {
            last_start = Instant::now();
        }
        let (handled, story) = handle(&rig.fleet, alert).await?;
        check.outcome(&format!("{}: ", n + 1), expected, &handled, &story);
        if let Some(by) = &handled.guardrail {
            check.detail(format!("{}: {by}: {}", n + 1, handled.reason));
        }
        if then_wait {
            let until = last_start + cooldown + Duration::from_millis(100);
            tokio::time::sleep_until(until.into()).await;
        }
    }
    Ok(check)
}

async fn kill_switch(rig: &Rig) -> anyhow::Result<Check> {
    let store: &dyn Store = rig.store.as_ref();
    let reason = "demo: automation paused while the database migrates";
    operate::set_kill_switch(store, None, reason, "demo-operator").await?;
    let alert = alert(
        "KubePodOOMKilled",
        &deployment("prod", "checkout"),
        "checkout containers were OOM-killed again",
        "de3000000000000b",
        MINUTE,
    )?;
    let outcome = handle(&rig.fleet, alert).await;
    // Cleared whatever happened, so nothing stays switched off.
    let cleared = operate::clear_kill_switch(store, None, "demo-operator").await?;
    let (handled, story) = outcome?;
    let mut check = Check::new();
    let expected = Facts::expect("refuse", Some("kill-switch"), None, "escalated");
    check.outcome("", expected, &handled, &story);
    no_plugin_ran(&mut check, &handled, &story);

    let records = store.audit().records(0, u32::MAX).await?;
    let set = records
        .iter()
        .any(|r| r.kind == "killswitch.set" && r.body.contains("demo-operator"));
    let cleared_on_record = records
        .iter()
        .any(|r| r.kind == "killswitch.cleared" && r.body.contains("demo-operator"));
    let off = store.controls().await?.kill_switches.is_empty();
    check.holds(
        "switch set and cleared, both audited",
        set && cleared && cleared_on_record && off,
        || format!("set recorded: {set}, cleared: {cleared}, cleared recorded: {cleared_on_record}, switches left: {}", !off),
    );
    check.detail(handled.reason.clone());
    Ok(check)
}

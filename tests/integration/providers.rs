//! Every workload provider passes the conformance suite
//! (`blastwall_tests::conformance`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use blastwall::provider::{
    CallContext, Docker, DockerConfig, DryRunFleet, Effects, FleetSpec, PREVIOUS_IMAGE_LABEL,
    ProviderError, REVISION_LABEL, WorkloadProvider,
};
use blastwall::workload::Workload;
use blastwall_tests::conformance::{self, Fault, Injected, Subject};
use blastwall_tests::dockerd;

/// The simulated fleet; faults are injected in front of it, since a
/// simulation has no platform to refuse, conflict or stall.
struct DryRun {
    fleet: Arc<DryRunFleet>,
    provider: Arc<Injected<dyn WorkloadProvider>>,
}

impl DryRun {
    fn new() -> Self {
        let fleet = Arc::new(DryRunFleet::new(FleetSpec::embedded_default()));
        let provider = Arc::new(Injected::new(fleet.clone() as Arc<dyn WorkloadProvider>));
        DryRun { fleet, provider }
    }
}

fn w(text: &str) -> Workload {
    text.parse().unwrap()
}

#[async_trait]
impl Subject for DryRun {
    fn provider(&self) -> Arc<dyn WorkloadProvider> {
        self.provider.clone()
    }

    fn scalable(&self) -> Workload {
        w("deployment/prod/checkout")
    }

    fn other(&self) -> Workload {
        w("deployment/prod/cart")
    }

    fn first_revision(&self) -> Workload {
        w("statefulset/prod/orders-db")
    }

    fn unscalable(&self) -> Option<Workload> {
        Some(w("daemonset/kube-system/node-exporter"))
    }

    fn missing(&self) -> Workload {
        w("deployment/prod/no-such-workload")
    }

    async fn restart_marker(&self, target: &Workload) -> String {
        self.fleet.restarts(target).unwrap().to_string()
    }

    async fn inject(&self, target: &Workload, fault: Fault) {
        self.provider.inject(target, fault);
    }
}

#[tokio::test]
async fn the_simulated_fleet_conforms() {
    conformance::run_all(&DryRun::new()).await;
}

/// Services on a real Docker daemon (`blastwall_tests::dockerd`). The daemon
/// cannot be made to refuse, conflict or stall on demand (that would take an
/// authorization plugin or a broken daemon), so those faults are injected in
/// front of the provider; how the provider maps the Engine's own 403, 409 and
/// timeouts is tested in its unit tests, and an unreachable daemon below.
struct OnDocker {
    provider: Arc<Injected<dyn WorkloadProvider>>,
    project: String,
}

impl OnDocker {
    async fn new(project: &str) -> Self {
        let daemon = dockerd::daemon();
        let docker = Docker::connect(DockerConfig {
            socket: daemon.socket.clone(),
            stop_grace_seconds: 1,
            ..DockerConfig::default()
        })
        .unwrap();
        let subject = OnDocker {
            provider: Arc::new(Injected::new(Arc::new(docker) as Arc<dyn WorkloadProvider>)),
            project: project.to_string(),
        };
        daemon.run_service(project, "web", 2, true).await;
        daemon.run_service(project, "api", 1, true).await;
        daemon.run_service(project, "fresh", 1, false).await;
        subject
    }

    fn workload(&self, service: &str) -> Workload {
        w(&format!("container/{}/{service}", self.project))
    }
}

#[async_trait]
impl Subject for OnDocker {
    fn provider(&self) -> Arc<dyn WorkloadProvider> {
        self.provider.clone()
    }

    fn scalable(&self) -> Workload {
        self.workload("web")
    }

    fn other(&self) -> Workload {
        self.workload("api")
    }

    fn first_revision(&self) -> Workload {
        self.workload("fresh")
    }

    fn unscalable(&self) -> Option<Workload> {
        None
    }

    fn missing(&self) -> Workload {
        self.workload("no-such-service")
    }

    async fn restart_marker(&self, target: &Workload) -> String {
        dockerd::daemon()
            .containers(target.namespace(), target.name())
            .await
            .iter()
            .filter(|c| c.state.as_ref().and_then(|s| s.running) == Some(true))
            .map(|c| {
                format!(
                    "{}@{}",
                    c.name.clone().unwrap_or_default(),
                    c.state
                        .as_ref()
                        .and_then(|s| s.started_at.clone())
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn inject(&self, target: &Workload, fault: Fault) {
        self.provider.inject(target, fault);
    }
}

#[tokio::test]
async fn docker_conforms_on_a_real_daemon() {
    conformance::run_all(&OnDocker::new("conformance").await).await;
}

#[tokio::test]
async fn docker_rollback_records_what_it_replaced_and_who_did_it() {
    let subject = OnDocker::new("rollback").await;
    let provider = subject.provider();
    let web = subject.scalable();
    let cx = CallContext::run(
        "inc-42",
        "inc-42-run-1",
        Instant::now() + Duration::from_secs(30),
    );
    assert_eq!(provider.rollback(&cx, &web).await, Ok(3));
    let containers = dockerd::daemon()
        .containers(web.namespace(), web.name())
        .await;
    assert_eq!(containers.len(), 2, "the replica count is kept");
    for c in &containers {
        let config = c.config.as_ref().unwrap();
        let labels = config.labels.as_ref().unwrap();
        assert_eq!(config.image.as_deref(), Some(dockerd::PREVIOUS_IMAGE));
        assert_eq!(labels[PREVIOUS_IMAGE_LABEL], dockerd::IMAGE, "{labels:?}");
        assert_eq!(labels[REVISION_LABEL], "3");
        assert_eq!(labels["io.blastwall.incident"], "inc-42");
        assert_eq!(labels["io.blastwall.run"], "inc-42-run-1");
        assert_eq!(c.state.as_ref().unwrap().running, Some(true));
    }
    // Going back again returns to the image it replaced, as `rollout undo` does.
    assert_eq!(provider.rollback(&cx, &web).await, Ok(4));
    assert_eq!(
        provider.status(&cx, &web).await.unwrap().image,
        dockerd::IMAGE
    );
    // Other kinds are not containers.
    let err = provider
        .status(&cx, &w("deployment/rollback/web"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_docker_daemon_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    // A socket file nobody listens on: the connection is refused.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let docker = Docker::connect(DockerConfig {
        socket,
        ..DockerConfig::default()
    })
    .unwrap();
    let cx = CallContext::decision("inc", Duration::from_secs(5));
    let err = docker
        .status(&cx, &w("container/shop/web"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains("cannot reach the Docker Engine"),
        "{err}"
    );
}

#[tokio::test]
async fn docker_calls_on_one_service_at_once_both_land_whole() {
    let subject = OnDocker::new("together").await;
    let provider = subject.provider();
    let web = subject.scalable();
    let cx = CallContext::run(
        "inc-7",
        "inc-7-run-1",
        Instant::now() + Duration::from_secs(30),
    );
    // A rolling restart and a scale-up of the same service, at once: the
    // provider takes them one after the other, so neither sees the other's
    // half-done state.
    let (restarted, scaled) = tokio::join!(
        provider.restart(&cx, &web),
        provider.set_replicas(&cx, &web, 3)
    );
    restarted.unwrap();
    assert_eq!(scaled, Ok(3));
    let containers = dockerd::daemon()
        .containers(web.namespace(), web.name())
        .await;
    assert_eq!(containers.len(), 3, "{containers:#?}");
    assert!(
        containers
            .iter()
            .all(|c| c.state.as_ref().and_then(|s| s.running) == Some(true)),
        "{containers:#?}"
    );
    assert_eq!(provider.status(&cx, &web).await.unwrap().replicas, 3);
}

/// A health check that `sh` answers with `exit CODE`, every second.
fn health_check(code: u8) -> bollard::models::HealthConfig {
    bollard::models::HealthConfig {
        test: Some(vec!["CMD-SHELL".into(), format!("exit {code}")]),
        interval: Some(1_000_000_000),
        timeout: Some(1_000_000_000),
        retries: Some(1),
        ..Default::default()
    }
}

fn health(
    c: &bollard::models::ContainerInspectResponse,
) -> Option<bollard::models::HealthStatusEnum> {
    c.state
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status)
}

#[tokio::test]
async fn docker_restart_waits_for_a_health_check_and_fails_on_a_failing_one() {
    let daemon = dockerd::daemon();
    daemon
        .run_service_checked("checked", "good", 1, false, Some(health_check(0)))
        .await;
    daemon
        .run_service_checked("checked", "bad", 1, false, Some(health_check(1)))
        .await;
    let docker = Docker::connect(DockerConfig {
        socket: daemon.socket.clone(),
        stop_grace_seconds: 1,
        ..DockerConfig::default()
    })
    .unwrap();
    let effects = Effects::new(
        Arc::new(docker),
        Arc::new(DryRunFleet::new(FleetSpec::default())),
    );
    let cx = || {
        CallContext::run(
            "inc-9",
            "inc-9-run-1",
            Instant::now() + Duration::from_secs(30),
        )
    };

    let good = w("container/checked/good");
    effects.restart(&cx(), &good).await.unwrap();
    let containers = daemon.containers("checked", "good").await;
    assert_eq!(
        health(&containers[0]),
        Some(bollard::models::HealthStatusEnum::HEALTHY),
        "the restart returned only once the container was healthy again"
    );
    let status = effects.status(&cx(), &good).await.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (1, 1));

    let bad = w("container/checked/bad");
    let err = effects.restart(&cx(), &bad).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Failed(m) if m.contains("health check fails")),
        "{err:?}"
    );
    assert_eq!(effects.status(&cx(), &bad).await.unwrap().ready_replicas, 0);
}

//! The Docker provider: workloads are services on a Docker Engine, through
//! its API socket (bollard).
//!
//! A service is the set of containers sharing two labels, Compose's by
//! default: `container/PROJECT/SERVICE` is every container labelled
//! `com.docker.compose.project=PROJECT` and `com.docker.compose.service=SERVICE`.
//! Its replicas are its running containers, its image the newest one's, and
//! its revision the `io.blastwall.revision` label (1 when absent; counted up
//! whenever blastwall changes the image, and by a deployment that labels its
//! containers).
//!
//! - `scale` clones the newest container (its configuration, labels, host
//!   configuration and networks; a name of its own) and removes the newest
//!   extras. Scaling to zero stops the oldest container rather than removing
//!   it, so the service keeps a template to scale up from.
//! - `restart` restarts one container at a time and waits for each to run
//!   again (and be healthy, if it has a health check): a rolling restart.
//! - `rollback` replaces each container, one at a time, by a clone running the
//!   image in its `io.blastwall.previous-image` label (set by the deployment,
//!   or by blastwall whenever it changes an image), with the revision one up.
//!   With no such label there is nothing to roll back to (`invalid`).
//!
//! Containers blastwall creates carry the incident and run that made them
//! (`io.blastwall.incident`, `io.blastwall.run`). Calls on one service are
//! serialised within this host, so two runs never interleave a rolling
//! change; the Engine's own errors map to `ProviderError` in [`engine_error`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker as Engine;
use bollard::errors::Error as EngineError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum,
    HealthStatusEnum, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
    RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use serde::{Deserialize, Serialize};

use super::{CallContext, ProviderError, WorkloadProvider, WorkloadStatus};
use crate::workload::{Workload, WorkloadKind};

/// The label holding the revision blastwall counts.
pub const REVISION_LABEL: &str = "io.blastwall.revision";
/// The label holding the image a rollback returns to.
pub const PREVIOUS_IMAGE_LABEL: &str = "io.blastwall.previous-image";
const INCIDENT_LABEL: &str = "io.blastwall.incident";
const RUN_LABEL: &str = "io.blastwall.run";
/// Compose's replica number, kept on clones so `docker compose ps` reads well.
const NUMBER_LABEL: &str = "com.docker.compose.container-number";

/// How often a rolling change looks at a container it waits for.
const POLL: Duration = Duration::from_millis(100);

/// `[workloads.docker]`.
///
/// ```toml
/// [workloads]
/// provider = "docker"
/// docker = { socket = "/var/run/docker.sock", request-timeout = "30s" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DockerConfig {
    /// The Engine's API socket. Default `/var/run/docker.sock`.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// The label naming a service's project (the workload's namespace).
    #[serde(default = "default_project_label")]
    pub project_label: String,
    /// The label naming the service (the workload's name).
    #[serde(default = "default_service_label")]
    pub service_label: String,
    /// The longest one API request may take. Default `30s`.
    #[serde(default = "default_request_timeout", with = "crate::duration")]
    pub request_timeout: Duration,
    /// Seconds a container gets to stop before it is killed. Default 10.
    #[serde(default = "default_stop_grace")]
    pub stop_grace_seconds: u32,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            socket: default_socket(),
            project_label: default_project_label(),
            service_label: default_service_label(),
            request_timeout: default_request_timeout(),
            stop_grace_seconds: default_stop_grace(),
        }
    }
}

fn default_socket() -> PathBuf {
    "/var/run/docker.sock".into()
}

fn default_project_label() -> String {
    "com.docker.compose.project".into()
}

fn default_service_label() -> String {
    "com.docker.compose.service".into()
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_stop_grace() -> u32 {
    10
}

/// Workloads on one Docker Engine.
pub struct Docker {
    engine: Engine,
    config: DockerConfig,
    /// One lock per service: rolling changes to a service never interleave.
    services: Mutex<HashMap<Workload, Arc<tokio::sync::Mutex<()>>>>,
}

impl Docker {
    /// A provider on the Engine at `config.socket`. Nothing is sent until the
    /// first call; a socket that does not exist is refused here.
    pub fn connect(config: DockerConfig) -> Result<Self, String> {
        let socket = config.socket.display().to_string();
        let timeout = config.request_timeout.as_secs().max(1);
        let engine = Engine::connect_with_unix(&socket, timeout, bollard::API_DEFAULT_VERSION)
            .map_err(|e| format!("cannot use the Docker socket {socket}: {e}"))?;
        Ok(Docker {
            engine,
            config,
            services: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self, target: &Workload) -> Arc<tokio::sync::Mutex<()>> {
        self.services
            .lock()
            .expect("service locks")
            .entry(target.clone())
            .or_default()
            .clone()
    }

    /// The service's containers, running or not, oldest first.
    async fn containers(&self, target: &Workload) -> Result<Vec<ContainerSummary>, ProviderError> {
        if target.kind() != WorkloadKind::Container {
            return Err(ProviderError::Invalid(format!(
                "the docker provider manages containers; {target} is not one"
            )));
        }
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={}", self.config.project_label, target.namespace()),
                format!("{}={}", self.config.service_label, target.name()),
            ],
        )]);
        let mut containers = self
            .engine
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine_error(e, &format!("listing the containers of {target}")))?;
        containers.retain(|c| !matches!(c.state, Some(ContainerSummaryStateEnum::REMOVING)));
        containers.sort_by_key(|c| (c.created.unwrap_or(0), c.id.clone()));
        if containers.is_empty() {
            return Err(ProviderError::NotFound(format!(
                "no container on this Docker Engine is labelled {}={} and {}={}",
                self.config.project_label,
                target.namespace(),
                self.config.service_label,
                target.name()
            )));
        }
        Ok(containers)
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, ProviderError> {
        self.engine
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| engine_error(e, &format!("inspecting container {}", short(id))))
    }

    fn status_of(containers: &[ContainerSummary]) -> WorkloadStatus {
        let running: Vec<&ContainerSummary> = containers.iter().filter(|c| is_running(c)).collect();
        let ready = running.iter().filter(|c| is_healthy(c)).count();
        let newest = containers.last().expect("a service has a container");
        WorkloadStatus {
            replicas: running.len() as u32,
            ready_replicas: ready as u32,
            revision: revision(newest),
            image: newest.image.clone().unwrap_or_default(),
        }
    }

    /// Creates and starts a clone of `template`, running `image`, with
    /// `labels` added; waits until it runs. Returns its id.
    async fn clone_container(
        &self,
        cx: &CallContext,
        target: &Workload,
        template: &ContainerInspectResponse,
        image: &str,
        labels: &[(&str, String)],
        number: u32,
    ) -> Result<String, ProviderError> {
        let config = template.config.clone().unwrap_or_default();
        let mut all_labels = config.labels.clone().unwrap_or_default();
        for (key, value) in labels {
            all_labels.insert((*key).to_string(), value.clone());
        }
        all_labels.insert(NUMBER_LABEL.into(), number.to_string());
        all_labels.insert(INCIDENT_LABEL.into(), cx.incident.clone());
        if let Some(run) = &cx.run {
            all_labels.insert(RUN_LABEL.into(), run.clone());
        }
        let networks = template
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.clone())
            .map(|networks| NetworkingConfig {
                endpoints_config: Some(
                    networks
                        .into_iter()
                        .map(|(name, endpoint)| {
                            // Addresses are the Engine's to assign anew.
                            let endpoint = bollard::models::EndpointSettings {
                                aliases: endpoint.aliases,
                                ..Default::default()
                            };
                            (name, endpoint)
                        })
                        .collect(),
                ),
            });
        let body = ContainerCreateBody {
            user: config.user,
            env: config.env,
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            healthcheck: config.healthcheck,
            image: Some(image.to_string()),
            working_dir: config.working_dir,
            labels: Some(all_labels),
            stop_signal: config.stop_signal,
            stop_timeout: config.stop_timeout,
            exposed_ports: config.exposed_ports,
            tty: config.tty,
            open_stdin: config.open_stdin,
            volumes: config.volumes,
            host_config: template.host_config.clone(),
            networking_config: networks,
            ..Default::default()
        };
        let name = format!("{}-{}-{number}", target.namespace(), target.name());
        let created = self
            .engine
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| engine_error(e, &format!("creating container {name} for {target}")))?;
        self.engine
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .map_err(|e| engine_error(e, &format!("starting container {name}")))?;
        self.wait_running(&created.id, None).await?;
        Ok(created.id)
    }

    /// Waits until container `id` runs (and is healthy, if it has a health
    /// check), started after `after` when given. A container that exits, or
    /// whose health check fails, is a failure at once; the caller's deadline
    /// bounds the rest.
    async fn wait_running(&self, id: &str, after: Option<&str>) -> Result<(), ProviderError> {
        loop {
            let inspected = self.inspect(id).await?;
            let state = inspected.state.unwrap_or_default();
            let started = state.started_at.as_deref();
            let restarted = after.is_none_or(|before| started != Some(before));
            let healthy = state.health.as_ref().is_none_or(|h| {
                matches!(
                    h.status,
                    None | Some(HealthStatusEnum::HEALTHY)
                        | Some(HealthStatusEnum::NONE)
                        | Some(HealthStatusEnum::EMPTY)
                )
            });
            if state.running == Some(true) && restarted && healthy {
                return Ok(());
            }
            let unhealthy = state
                .health
                .as_ref()
                .is_some_and(|h| h.status == Some(HealthStatusEnum::UNHEALTHY));
            if state.running == Some(true) && restarted && unhealthy {
                return Err(ProviderError::Failed(format!(
                    "container {} runs again but its health check fails",
                    short(id)
                )));
            }
            if state.running == Some(false) && state.restarting != Some(true) && restarted {
                return Err(ProviderError::Failed(format!(
                    "container {} exited (code {}) instead of running",
                    short(id),
                    state.exit_code.unwrap_or_default()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop(&self, id: &str) -> Result<(), ProviderError> {
        self.engine
            .stop_container(
                id,
                Some(StopContainerOptions {
                    t: Some(self.config.stop_grace_seconds as i32),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| engine_error(e, &format!("stopping container {}", short(id))))
    }

    async fn remove(&self, id: &str) -> Result<(), ProviderError> {
        self.engine
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| engine_error(e, &format!("removing container {}", short(id))))
    }

    fn next_number(containers: &[ContainerSummary]) -> u32 {
        containers
            .iter()
            .filter_map(|c| c.labels.as_ref()?.get(NUMBER_LABEL)?.parse::<u32>().ok())
            .max()
            .unwrap_or(containers.len() as u32)
            + 1
    }
}

fn is_running(c: &ContainerSummary) -> bool {
    matches!(
        c.state,
        Some(ContainerSummaryStateEnum::RUNNING) | Some(ContainerSummaryStateEnum::RESTARTING)
    )
}

fn is_healthy(c: &ContainerSummary) -> bool {
    matches!(c.state, Some(ContainerSummaryStateEnum::RUNNING))
        && !c
            .status
            .as_deref()
            .is_some_and(|s| s.contains("(unhealthy)") || s.contains("(health: starting)"))
}

fn revision(c: &ContainerSummary) -> u64 {
    c.labels
        .as_ref()
        .and_then(|labels| labels.get(REVISION_LABEL))
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// What an Engine error means for the loop.
pub fn engine_error(error: EngineError, doing: &str) -> ProviderError {
    match error {
        EngineError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let message = format!("{doing}: the Docker Engine answered {status_code}: {message}");
            match status_code {
                404 => ProviderError::NotFound(message),
                // An authorization plugin said no.
                401 | 403 => ProviderError::Forbidden(message),
                409 => ProviderError::Conflict(message),
                400 => ProviderError::Invalid(message),
                502..=504 => ProviderError::Unavailable(message),
                _ => ProviderError::Failed(message),
            }
        }
        EngineError::RequestTimeoutError => {
            ProviderError::Timeout(format!("{doing}: the Docker Engine did not answer in time"))
        }
        other => {
            ProviderError::Unavailable(format!("{doing}: cannot reach the Docker Engine: {other}"))
        }
    }
}

#[async_trait]
impl WorkloadProvider for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn status(
        &self,
        _: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError> {
        Ok(Docker::status_of(&self.containers(target).await?))
    }

    async fn set_replicas(
        &self,
        cx: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        let lock = self.lock(target);
        let _held = lock.lock().await;
        let containers = self.containers(target).await?;
        let running: Vec<&ContainerSummary> = containers.iter().filter(|c| is_running(c)).collect();
        let have = running.len() as u32;
        if replicas > have {
            // Start a stopped one first (the template kept at zero), then clone.
            let mut missing = replicas - have;
            for stopped in containers.iter().filter(|c| !is_running(c)) {
                if missing == 0 {
                    break;
                }
                let id = stopped.id.as_deref().unwrap_or_default();
                self.engine
                    .start_container(id, None::<StartContainerOptions>)
                    .await
                    .map_err(|e| engine_error(e, &format!("starting container {}", short(id))))?;
                self.wait_running(id, None).await?;
                missing -= 1;
            }
            let newest = containers.last().expect("a service has a container");
            let template = self
                .inspect(newest.id.as_deref().unwrap_or_default())
                .await?;
            let image = template
                .config
                .as_ref()
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let first = Docker::next_number(&containers);
            for number in first..first + missing {
                self.clone_container(cx, target, &template, &image, &[], number)
                    .await?;
            }
        } else if replicas < have {
            let extra = (have - replicas) as usize;
            // The newest go first; the oldest is only ever stopped, so the
            // service keeps a template to scale up from.
            for (index, c) in running.iter().rev().take(extra).enumerate() {
                let id = c.id.as_deref().unwrap_or_default();
                let last = index + 1 == extra && replicas == 0;
                if last {
                    self.stop(id).await?;
                } else {
                    self.remove(id).await?;
                }
            }
        }
        Ok(replicas)
    }

    async fn restart(&self, _: &CallContext, target: &Workload) -> Result<(), ProviderError> {
        let lock = self.lock(target);
        let _held = lock.lock().await;
        let containers = self.containers(target).await?;
        for c in containers.iter().filter(|c| is_running(c)) {
            let id = c.id.as_deref().unwrap_or_default();
            let before = self.inspect(id).await?.state.and_then(|s| s.started_at);
            self.engine
                .restart_container(
                    id,
                    Some(RestartContainerOptions {
                        t: Some(self.config.stop_grace_seconds as i32),
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| engine_error(e, &format!("restarting container {}", short(id))))?;
            self.wait_running(id, before.as_deref()).await?;
        }
        Ok(())
    }

    async fn rollback(&self, cx: &CallContext, target: &Workload) -> Result<u64, ProviderError> {
        let lock = self.lock(target);
        let _held = lock.lock().await;
        let containers = self.containers(target).await?;
        let newest = containers.last().expect("a service has a container");
        let current = newest.image.clone().unwrap_or_default();
        let previous = newest
            .labels
            .as_ref()
            .and_then(|labels| labels.get(PREVIOUS_IMAGE_LABEL))
            .filter(|image| !image.is_empty())
            .cloned()
            .ok_or_else(|| {
                ProviderError::Invalid(format!(
                    "{target} has no earlier image to roll back to (no {PREVIOUS_IMAGE_LABEL} label)"
                ))
            })?;
        let revision = revision(newest) + 1;
        let labels = [
            (PREVIOUS_IMAGE_LABEL, current),
            (REVISION_LABEL, revision.to_string()),
        ];
        let running: Vec<&ContainerSummary> = containers.iter().filter(|c| is_running(c)).collect();
        // One at a time: the replacement runs before the old one goes. A
        // stopped template is replaced too, so every container agrees.
        let order = running
            .iter()
            .copied()
            .chain(containers.iter().filter(|c| !is_running(c)));
        for (number, c) in (Docker::next_number(&containers)..).zip(order) {
            let id = c.id.as_deref().unwrap_or_default();
            let template = self.inspect(id).await?;
            let replacement = self
                .clone_container(cx, target, &template, &previous, &labels, number)
                .await?;
            if !is_running(c) {
                self.stop(&replacement).await?;
            }
            self.remove(id).await?;
        }
        Ok(revision)
    }

    async fn count_workloads(
        &self,
        _: &CallContext,
        namespace: Option<&str>,
    ) -> Result<u32, ProviderError> {
        let project = match namespace {
            Some(ns) => format!("{}={ns}", self.config.project_label),
            None => self.config.project_label.clone(),
        };
        let filters = HashMap::from([(
            "label".to_string(),
            vec![project, self.config.service_label.clone()],
        )]);
        let containers = self
            .engine
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine_error(e, "counting the services"))?;
        let services: std::collections::BTreeSet<(String, String)> = containers
            .iter()
            .filter_map(|c| {
                let labels = c.labels.as_ref()?;
                Some((
                    labels.get(&self.config.project_label)?.clone(),
                    labels.get(&self.config.service_label)?.clone(),
                ))
            })
            .collect();
        Ok(services.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16) -> EngineError {
        EngineError::DockerResponseServerError {
            status_code,
            message: "no".into(),
        }
    }

    #[test]
    fn engine_errors_map_to_what_the_loop_does() {
        let kind = |e: EngineError| engine_error(e, "doing").kind();
        assert_eq!(kind(server(404)), "not-found");
        assert_eq!(kind(server(403)), "forbidden");
        assert_eq!(kind(server(409)), "conflict");
        assert_eq!(kind(server(400)), "invalid");
        assert_eq!(kind(server(503)), "unavailable");
        assert_eq!(kind(server(500)), "failed");
        assert_eq!(kind(EngineError::RequestTimeoutError), "timeout");
        assert_eq!(
            kind(EngineError::SocketNotFoundError("/nope".into())),
            "unavailable"
        );
        let message = engine_error(server(403), "restarting container abc").to_string();
        assert_eq!(
            message,
            "restarting container abc: the Docker Engine answered 403: no"
        );
    }

    #[test]
    fn a_missing_socket_is_refused_at_start() {
        let err = Docker::connect(DockerConfig {
            socket: "/nonexistent/docker.sock".into(),
            ..DockerConfig::default()
        })
        .err()
        .expect("refused");
        assert!(err.contains("/nonexistent/docker.sock"), "{err}");
    }
}

//! A real Docker daemon for the tests: Debian's `dockerd`, started once per
//! test binary with its own data directory and socket, and a small image
//! imported from a static busybox (no image registry is reachable).
//!
//! It needs root, `dockerd` (Debian `docker.io`) and `/bin/busybox` (Debian
//! `busybox-static`); `.ci/run` installs both. Without them the tests that
//! use it fail, saying what is missing: they never skip.
//!
//! The daemon is started through `sh`, which reads its standard input from
//! this process: when the test binary exits, however it exits, the pipe
//! closes and `sh` stops the daemon and removes its directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HealthConfig, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    StartContainerOptions,
};
use futures_util::StreamExt;

/// The image the test containers run: busybox, with `sh` and `sleep`.
pub const IMAGE: &str = "blastwall-test/busybox:2";
/// The same image under the tag a rollback returns to.
pub const PREVIOUS_IMAGE: &str = "blastwall-test/busybox:1";

/// The daemon of this test binary.
pub struct Daemon {
    /// Its API socket.
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
    _stdin: std::process::ChildStdin,
    /// The `sh` that stops the daemon; it outlives this process on purpose.
    _sh: std::process::Child,
}

static DAEMON: OnceLock<Daemon> = OnceLock::new();

/// This test binary's daemon, started on first use (with both images).
pub fn daemon() -> &'static Daemon {
    DAEMON.get_or_init(start)
}

/// The label blastwall's Docker provider reads the rollback image from.
pub const PREVIOUS_IMAGE_LABEL: &str = "io.blastwall.previous-image";
/// The label blastwall's Docker provider reads the revision from.
pub const REVISION_LABEL: &str = "io.blastwall.revision";

/// Compose's labels, which the Docker provider reads by default.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// See [`PROJECT_LABEL`].
pub const SERVICE_LABEL: &str = "com.docker.compose.service";

impl Daemon {
    /// Starts `replicas` containers of `service` in `project`, running
    /// [`IMAGE`] and labelled as Compose would; with `with_previous`, they
    /// are at revision 2 and name [`PREVIOUS_IMAGE`] as the image a rollback
    /// returns to.
    pub async fn run_service(
        &self,
        project: &str,
        service: &str,
        replicas: u32,
        with_previous: bool,
    ) {
        self.run_service_checked(project, service, replicas, with_previous, None)
            .await;
    }

    /// [`Daemon::run_service`], with a health check on every container.
    pub async fn run_service_checked(
        &self,
        project: &str,
        service: &str,
        replicas: u32,
        with_previous: bool,
        healthcheck: Option<HealthConfig>,
    ) {
        let client = self.client();
        for number in 1..=replicas {
            let mut labels = HashMap::from([
                (PROJECT_LABEL.to_string(), project.to_string()),
                (SERVICE_LABEL.to_string(), service.to_string()),
                (
                    "com.docker.compose.container-number".to_string(),
                    number.to_string(),
                ),
            ]);
            if with_previous {
                // As a deployment that changed the image would label it.
                labels.insert(PREVIOUS_IMAGE_LABEL.to_string(), PREVIOUS_IMAGE.to_string());
                labels.insert(REVISION_LABEL.to_string(), "2".to_string());
            }
            let name = format!("{project}-{service}-{number}");
            let body = ContainerCreateBody {
                image: Some(IMAGE.into()),
                cmd: Some(vec!["sleep".into(), "3600".into()]),
                healthcheck: healthcheck.clone(),
                labels: Some(labels),
                // `sleep` as PID 1 ignores SIGTERM; stop it at once.
                stop_signal: Some("SIGKILL".into()),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let created = client
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(name.clone()),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .unwrap_or_else(|e| panic!("creating {name}: {e}"));
            client
                .start_container(&created.id, None::<StartContainerOptions>)
                .await
                .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        }
    }

    /// The containers of `service` in `project`, inspected, by name: what
    /// the daemon itself says, read around the provider.
    pub async fn containers(&self, project: &str, service: &str) -> Vec<ContainerInspectResponse> {
        let client = self.client();
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{PROJECT_LABEL}={project}"),
                format!("{SERVICE_LABEL}={service}"),
            ],
        )]);
        let listed = client
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("the daemon lists containers");
        let mut inspected = Vec::new();
        for c in listed {
            inspected.push(
                client
                    .inspect_container(
                        c.id.as_deref().unwrap_or_default(),
                        None::<InspectContainerOptions>,
                    )
                    .await
                    .expect("the daemon inspects its container"),
            );
        }
        inspected.sort_by(|a, b| a.name.cmp(&b.name));
        inspected
    }

    /// A client of this daemon.
    pub fn client(&self) -> Docker {
        Docker::connect_with_unix(
            &self.socket.display().to_string(),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("the daemon's socket exists")
    }
}

fn start() -> Daemon {
    let dockerd = which("dockerd").unwrap_or_else(|| {
        panic!("dockerd is not installed: the Docker tests need Debian's docker.io (.ci/run installs it)")
    });
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("busybox is not installed: the Docker tests build their image from Debian's busybox-static (.ci/run installs it)")
        });
    let dir = tempfile::Builder::new()
        .prefix("blastwall-dockerd-")
        .tempdir()
        .expect("a scratch directory");
    let root = dir.path();
    let socket = root.join("docker.sock");
    let log = root.join("dockerd.log");
    let script = format!(
        "{dockerd} --iptables=false --ip-masq=false --bridge=none --shutdown-timeout 1 \
         --data-root {root}/data --exec-root {root}/exec --pidfile {root}/dockerd.pid \
         --host unix://{socket} >{log} 2>&1 & pid=$!; read _; kill $pid; wait $pid; rm -rf {root}",
        dockerd = dockerd.display(),
        root = root.display(),
        socket = socket.display(),
        log = log.display(),
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let stdin = child.stdin.take().expect("piped");
    let daemon = Daemon {
        socket,
        _dir: dir,
        _stdin: stdin,
        _sh: child,
    };
    // The caller may be inside a runtime: set up on a thread of our own.
    let socket = daemon.socket.clone();
    let log_path = log.clone();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(prepare(&socket, &log_path, &busybox))
    })
    .join()
    .expect("the daemon is ready");
    daemon
}

async fn prepare(socket: &Path, log: &Path, busybox: &Path) {
    let started = Instant::now();
    let client = loop {
        if socket.exists()
            && let Ok(client) = Docker::connect_with_unix(
                &socket.display().to_string(),
                30,
                bollard::API_DEFAULT_VERSION,
            )
            && client.ping().await.is_ok()
        {
            break client;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let mut text = String::new();
            let _ = std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text));
            panic!(
                "dockerd did not answer on {} within 60 s (it needs root); its log:\n{text}",
                socket.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rootfs = rootfs_tar(busybox);
    for tag in [PREVIOUS_IMAGE, IMAGE] {
        let (repo, tag) = tag.split_once(':').expect("repo:tag");
        let mut progress = client.create_image(
            Some(CreateImageOptions {
                from_src: Some("-".into()),
                repo: Some(repo.into()),
                tag: Some(tag.into()),
                // Each tag its own image, so the two are told apart.
                message: Some(format!("blastwall test image {tag}")),
                ..Default::default()
            }),
            Some(bollard::body_full(rootfs.clone().into())),
            None,
        );
        while let Some(step) = progress.next().await {
            step.unwrap_or_else(|e| panic!("importing {repo}:{tag}: {e}"));
        }
    }
}

/// A root filesystem holding only busybox and the two commands the tests use.
fn rootfs_tar(busybox: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "-", "."])
        .output()
        .expect("tar runs");
    assert!(out.status.success(), "tar failed: {out:?}");
    out.stdout
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
}

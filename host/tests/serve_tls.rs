//! `blastwall serve` over HTTPS: `[api] tls` with a certificate and key, the
//! real binary, a client that trusts only the test CA. The fixture pair
//! in `tests/fixtures/` is a test certificate for localhost and 127.0.0.1,
//! issued by a test CA whose key was thrown away; it protects nothing.

mod common;

use common::repo;
use common::serve::Server;
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    let pem = std::fs::read(repo().join("host/tests/fixtures/tls-test-ca.crt")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = repo().join("host/tests/fixtures");
    let config = dir.path().join("blastwall.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\ntls = {{ cert = {:?}, key = {:?} }}\n",
            fixtures.join("tls-test.crt"),
            fixtures.join("tls-test.key"),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &dir.path().join("serve.log"),
        &["--config", config.to_str().unwrap()],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let http = client();
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let incidents = http
        .get(server.url("/v1/incidents"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(incidents.status(), StatusCode::OK);
    let anonymous = http.get(server.url("/v1/incidents")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A client speaking plain HTTP to the TLS port gets no answer, and the
    // server goes on serving.
    let plain = server.url("/healthz").replacen("https://", "http://", 1);
    assert!(reqwest::get(&plain).await.is_err());
    let again = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[test]
fn a_missing_certificate_stops_the_start_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("blastwall.toml");
    std::fs::write(
        &config,
        "[api]\ntls = { cert = \"/nonexistent/tls.crt\", key = \"/nonexistent/tls.key\" }\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = common::blastwall(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.contains("error: api.tls cert /nonexistent/tls.crt:"),
        "{err}"
    );
}

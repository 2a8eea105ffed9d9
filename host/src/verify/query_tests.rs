//! The Prometheus client against canned responses from a local HTTP server:
//! every result type, every error shape, and the polling loop over them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rstest::rstest;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

pub(super) fn client(url: &str, timeout: Duration) -> Prometheus {
    Prometheus::new(&PrometheusConfig {
        url: url.to_string(),
        timeout,
    })
    .unwrap()
}

/// A Prometheus that answers each query with the next response, repeating the last.
pub(super) async fn answering(responses: Vec<(u16, String)>) -> Prometheus {
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = move || {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let (status, body) = responses[call.min(responses.len() - 1)].clone();
        async move {
            (
                StatusCode::from_u16(status).unwrap(),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    };
    let url = serve(Router::new().route("/api/v1/query", get(handler))).await;
    client(&url, Duration::from_secs(2))
}

async fn query(status: u16, body: &str) -> Result<Vec<Sample>, VerifyError> {
    answering(vec![(status, body.to_string())])
        .await
        .query("up")
        .await
}

pub(super) fn vector(values: &[&str]) -> String {
    let result: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"metric": {"__name__": "ratio", "pod": i.to_string()}, "value": [1.7e9, v]}))
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string()
}

#[tokio::test]
async fn parses_a_vector_with_labels_and_special_values() {
    let samples = query(200, &vector(&["0.3", "NaN", "+Inf", "-Inf", "1e-3"]))
        .await
        .unwrap();
    assert_eq!(samples.len(), 5);
    assert_eq!(samples[0].labels["__name__"], "ratio");
    assert_eq!(samples[0].labels["pod"], "0");
    assert_eq!(samples[0].value, 0.3);
    assert!(samples[1].value.is_nan());
    assert_eq!(samples[2].value, f64::INFINITY);
    assert_eq!(samples[3].value, f64::NEG_INFINITY);
    assert_eq!(samples[4].value, 0.001);
}

#[tokio::test]
async fn parses_an_empty_vector_as_no_samples() {
    assert_eq!(query(200, &vector(&[])).await.unwrap(), []);
}

#[tokio::test]
async fn parses_a_scalar_as_one_unlabelled_sample() {
    let body =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"0.25"]}}"#;
    let samples = query(200, body).await.unwrap();
    assert_eq!(
        samples,
        [Sample {
            labels: Default::default(),
            value: 0.25
        }]
    );
}

#[rstest]
#[case("matrix", r#"[{"metric":{},"values":[[1,"1"]]}]"#)]
#[case("string", r#"[1,"hello"]"#)]
#[tokio::test]
async fn refuses_results_that_are_not_vectors_or_scalars(#[case] kind: &str, #[case] result: &str) {
    let body =
        format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":{result}}}}}"#);
    let error = query(200, &body).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "prometheus returned a {kind} result; only instant vectors and scalars can be judged"
        )
    );
}

#[rstest]
#[case(
    r#"{"status":"success"}"#,
    "prometheus response is malformed: a success without data"
)]
#[case(
    r#"{"status":"partial","data":null}"#,
    "prometheus response is malformed: status \"partial\" is neither success nor error"
)]
#[case(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1,{}]}]}}"#,
    "prometheus response is malformed: series h has no value (native histograms cannot be judged)")]
#[case(
    r#"{"status":"success","data":{"resultType":"scalar","result":[1,"lots"]}}"#,
    "prometheus sample value \"lots\" is not a number"
)]
#[tokio::test]
async fn refuses_json_that_breaks_the_api_shape(#[case] body: &str, #[case] message: &str) {
    assert_eq!(query(200, body).await.unwrap_err().to_string(), message);
}

#[tokio::test]
async fn carries_prometheus_error_type_and_message() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}"#;
    let error = query(400, body).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "prometheus rejected the query (bad_data): 1:5: parse error: unclosed left parenthesis"
    );
    assert!(error.is_permanent(), "a parse error never heals");
    let body = r#"{"status":"error","errorType":"execution","error":"query timed out"}"#;
    let error = query(422, body).await.unwrap_err();
    assert!(!error.is_permanent(), "an execution error may be transient");
}

#[tokio::test]
async fn refuses_a_body_that_is_not_json() {
    let error = query(200, "<html>maintenance</html>").await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("prometheus response is not json ("),
        "{message}"
    );
    assert!(
        message.ends_with("): <html>maintenance</html>"),
        "{message}"
    );
}

#[tokio::test]
async fn reports_the_status_of_an_error_page() {
    let error = query(502, "bad gateway\n").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "prometheus answered http 502: bad gateway"
    );
}

#[tokio::test]
async fn refuses_an_oversize_body_with_a_length() {
    let body = format!("[{}]", "0,".repeat(MAX_RESPONSE_BYTES / 2) + "0");
    let error = query(200, &body).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "prometheus response exceeds 1048576 bytes"
    );
}

#[tokio::test]
async fn refuses_an_oversize_body_without_a_length() {
    // A raw server: no Content-Length, the body runs until the connection closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            socket.read_exact(&mut byte).await.unwrap();
            request.push(byte[0]);
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..64 {
            if socket.write_all(&chunk).await.is_err() {
                return; // the client stopped reading, as it should
            }
        }
    });
    let error = client(&url, Duration::from_secs(5))
        .query("up")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "prometheus response exceeds 1048576 bytes"
    );
}

#[tokio::test]
async fn does_not_follow_redirects() {
    let router = Router::new()
        .route(
            "/api/v1/query",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")]) }),
        )
        .route("/elsewhere", get(|| async { vector(&["0"]) }));
    let error = client(&serve(router).await, Duration::from_secs(2))
        .query("up")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "prometheus answered 302 redirecting to \"/elsewhere\"; redirects are not followed"
    );
}

#[tokio::test]
async fn reports_an_unreachable_prometheus() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = client(&url, Duration::from_secs(2))
        .query("up")
        .await
        .unwrap_err();
    assert!(
        matches!(error, VerifyError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("prometheus at {url} is unreachable: ")),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
}

#[tokio::test]
async fn times_out_a_slow_prometheus() {
    let router = Router::new().route(
        "/api/v1/query",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            vector(&["0"])
        }),
    );
    let url = serve(router).await;
    let error = client(&url, Duration::from_millis(100))
        .query("up")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("prometheus at {url} did not answer within 100ms")
    );
}

#[tokio::test]
async fn sends_the_query_url_encoded_under_the_configured_path_prefix() {
    let echo = |Query(params): Query<std::collections::HashMap<String, String>>| async move {
        let query = params.get("query").cloned().unwrap_or_default();
        json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {"query": query}, "value": [1, "1"]}]}})
        .to_string()
        .into_response()
    };
    let base = serve(Router::new().route("/prom/api/v1/query", get(echo))).await;
    let promql = r#"sum(rate(http_requests_total{code=~"5..", path="/a&b?c=d#e"}[5m])) > 0"#;
    let samples = client(&format!("{base}/prom/"), Duration::from_secs(2))
        .query(promql)
        .await
        .unwrap();
    assert_eq!(samples[0].labels["query"], promql);
}

#[test]
fn prometheus_config_defaults_its_timeout_and_refuses_unknown_fields() {
    let config: PrometheusConfig = toml::from_str(r#"url = "http://prom:9090""#).unwrap();
    assert_eq!(config.timeout, Duration::from_secs(5));
    let config: PrometheusConfig =
        toml::from_str("url = \"https://p\"\ntimeout = \"250ms\"").unwrap();
    assert_eq!(config.timeout, Duration::from_millis(250));
    let error =
        toml::from_str::<PrometheusConfig>("url = \"http://p\"\nadress = \"x\"").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `adress`"),
        "{error}"
    );
}

#[rstest]
#[case(
    "ftp://prom:21",
    r#"prometheus url "ftp://prom:21" is invalid: scheme "ftp" is not http or https"#
)]
#[case(
    "prom:9090",
    r#"prometheus url "prom:9090" is invalid: scheme "prom" is not http or https"#
)]
#[case(
    "not a url",
    r#"prometheus url "not a url" is invalid: relative URL without a base"#
)]
#[case(
    "http://prom:9090/?x=1",
    r#"prometheus url "http://prom:9090/?x=1" is invalid: it must not have a query or fragment"#
)]
#[case(
    "http://admin:hunter2@prom:9090",
    r#"prometheus url "http://prom:9090/" is invalid: credentials in the url are not supported"#
)]
fn refuses_unusable_urls(#[case] url: &str, #[case] message: &str) {
    let config = PrometheusConfig {
        url: url.into(),
        timeout: Duration::from_secs(5),
    };
    assert_eq!(config.validate().unwrap_err().to_string(), message);
    assert_eq!(Prometheus::new(&config).unwrap_err().to_string(), message);
}

#[rstest]
#[case(Duration::ZERO, "prometheus timeout 0s must be greater than zero")]
#[case(
    Duration::from_secs(120),
    "prometheus timeout 2m exceeds the maximum of 1m"
)]
fn refuses_unusable_timeouts(#[case] timeout: Duration, #[case] message: &str) {
    let config = PrometheusConfig {
        url: "http://prom:9090".into(),
        timeout,
    };
    assert_eq!(config.validate().unwrap_err().to_string(), message);
}

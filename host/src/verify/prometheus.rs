//! A minimal Prometheus HTTP API client: instant queries only.
//!
//! Everything in a response is untrusted: the body is capped before it is
//! parsed, redirects are not followed (a redirect could point the host's
//! queries anywhere), and every way a response can be wrong has its own error.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::{Deserialize, Serialize};

use super::VerifyError;
use super::judge::Sample;

/// Upper bound on a query response body. A verification query should return a
/// handful of series; a megabyte is thousands, and more is a mistake or an attack.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The longest request timeout accepted: a check that takes longer than this
/// would eat most of a typical window.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on text quoted from a response in an error.
const MAX_QUOTED_CHARS: usize = 512;

/// The host configuration's `[prometheus]` section.
///
/// ```toml
/// [prometheus]
/// url = "http://prometheus.monitoring:9090"
/// timeout = "5s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PrometheusConfig {
    /// The base URL (http or https), with the path prefix if Prometheus runs
    /// under one; `/api/v1/query` is appended.
    pub url: String,
    /// How long one query may take, including reading the response.
    #[serde(default = "default_timeout", with = "crate::duration")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl PrometheusConfig {
    /// Checks the URL and timeout, so that a typo is reported when the host
    /// starts rather than when the first live action needs verifying.
    pub fn validate(&self) -> Result<(), VerifyError> {
        self.endpoint().map(|_| ())
    }

    /// The query endpoint, once the URL and timeout are known to be usable.
    fn endpoint(&self) -> Result<Url, VerifyError> {
        let invalid = |url: &str, problem: &str| VerifyError::InvalidUrl {
            url: url.to_string(),
            problem: problem.to_string(),
        };
        let mut url = Url::parse(&self.url).map_err(|e| invalid(&self.url, &e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            // The message names the URL, so the credentials are taken out first.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            return Err(invalid(
                url.as_str(),
                "credentials in the url are not supported",
            ));
        }
        if !matches!(url.scheme(), "http" | "https") {
            let problem = format!("scheme {:?} is not http or https", url.scheme());
            return Err(invalid(&self.url, &problem));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(&self.url, "it has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(&self.url, "it must not have a query or fragment"));
        }
        if self.timeout.is_zero() {
            return Err(VerifyError::InvalidTimeout {
                timeout: self.timeout,
                problem: "must be greater than zero",
            });
        }
        if self.timeout > MAX_TIMEOUT {
            return Err(VerifyError::InvalidTimeout {
                timeout: self.timeout,
                problem: "exceeds the maximum of 1m",
            });
        }
        let path = format!("{}/api/v1/query", url.path().trim_end_matches('/'));
        url.set_path(&path);
        Ok(url)
    }
}

/// A Prometheus server the host queries to verify remediations.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    endpoint: Url,
    base: String,
    timeout: Duration,
}

impl Prometheus {
    /// Validates `config` and builds a client that follows no redirects and
    /// ignores proxy settings from the environment, so queries go exactly
    /// where the configuration says.
    pub fn new(config: &PrometheusConfig) -> Result<Self, VerifyError> {
        let endpoint = config.endpoint()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .build()
            .map_err(|e| VerifyError::Client(chain(&e)))?;
        Ok(Prometheus {
            client,
            endpoint,
            base: config.url.clone(),
            timeout: config.timeout,
        })
    }

    /// Evaluates `promql` as an instant query now. Vector and scalar results
    /// become samples; any other result type, a Prometheus error, or a
    /// response that is not what the API promises is an error naming the cause.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, VerifyError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut().append_pair("query", promql);
        let response = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(VerifyError::Redirect {
                status: status.as_u16(),
                location: quote(location.as_bytes()),
            });
        }
        let body = self.read_capped(response).await?;
        parse_response(status, &body)
    }

    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, VerifyError> {
        let too_large = VerifyError::ResponseTooLarge {
            limit: MAX_RESPONSE_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport(&self, error: &reqwest::Error) -> VerifyError {
        let url = self.base.clone();
        if error.is_timeout() {
            VerifyError::Timeout {
                url,
                timeout: self.timeout,
            }
        } else if error.is_connect() {
            VerifyError::Unreachable {
                url,
                message: chain(error),
            }
        } else {
            VerifyError::Transport {
                url,
                message: chain(error),
            }
        }
    }
}

/// The causes of a reqwest error, innermost last. The top-level message is
/// left out: it repeats the full URL, query included.
fn chain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}

/// Response text for an error message: lossy UTF-8, trimmed and bounded.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.chars().count() > MAX_QUOTED_CHARS {
        let mut cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
        cut.push('…');
        cut
    } else {
        text.to_string()
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(serde_json::Value, String)>,
}

/// Turns a query response into samples; see [`Prometheus::query`].
fn parse_response(status: StatusCode, body: &[u8]) -> Result<Vec<Sample>, VerifyError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(_) if !status.is_success() => {
            return Err(VerifyError::Status {
                status: status.as_u16(),
                body: quote(body),
            });
        }
        Err(e) => {
            return Err(VerifyError::NotJson {
                message: e.to_string(),
                body: quote(body),
            });
        }
    };
    if envelope.status == "error" {
        return Err(VerifyError::Prometheus {
            error_type: quote(envelope.error_type.unwrap_or_default().as_bytes()),
            message: quote(envelope.error.unwrap_or_default().as_bytes()),
        });
    }
    if !status.is_success() {
        return Err(VerifyError::Status {
            status: status.as_u16(),
            body: quote(body),
        });
    }
    let malformed = |problem: String| VerifyError::Malformed(problem);
    if envelope.status != "success" {
        return Err(malformed(format!(
            "status {:?} is neither success nor error",
            quote(envelope.status.as_bytes())
        )));
    }
    let data = envelope
        .data
        .ok_or_else(|| malformed("a success without data".to_string()))?;
    match data.result_type.as_str() {
        "vector" => {
            let samples: Vec<VectorSample> = serde_json::from_value(data.result)
                .map_err(|e| malformed(format!("vector result: {e}")))?;
            samples
                .into_iter()
                .map(|s| {
                    let (_, text) = s.value.ok_or_else(|| {
                        malformed(format!(
                            "series {} has no value (native histograms cannot be judged)",
                            super::judge::series(&s.metric)
                        ))
                    })?;
                    Ok(Sample {
                        value: parse_value(&text)?,
                        labels: s.metric,
                    })
                })
                .collect()
        }
        "scalar" => {
            let (_, text): (serde_json::Value, String) = serde_json::from_value(data.result)
                .map_err(|e| malformed(format!("scalar result: {e}")))?;
            Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: parse_value(&text)?,
            }])
        }
        other => Err(VerifyError::UnsupportedResult {
            result_type: quote(other.as_bytes()),
        }),
    }
}

/// Parses a sample value as Prometheus writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn parse_value(text: &str) -> Result<f64, VerifyError> {
    text.parse().map_err(|_| VerifyError::BadValue {
        value: quote(text.as_bytes()),
    })
}

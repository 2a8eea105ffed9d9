//! Everything that can make a verification spec, a Prometheus configuration
//! or a query unusable, each with the offending value.

use std::time::Duration;

use super::MAX_QUERY_BYTES;

/// Why a verification spec, a Prometheus configuration or a query was unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    /// An expectation string is not an operator followed by a finite number.
    #[error("expectation {input:?} is invalid: {problem}")]
    InvalidExpectation {
        /// The text as written.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A zero interval would query in a tight loop.
    #[error("verification interval 0s must be greater than zero")]
    ZeroInterval,
    /// The interval leaves no room for a second check.
    #[error(
        "verification interval {} is longer than its window {}",
        humantime::format_duration(*interval),
        humantime::format_duration(*window)
    )]
    IntervalExceedsWindow {
        /// The configured interval.
        interval: Duration,
        /// The configured window.
        window: Duration,
    },
    /// The window exceeds [`MAX_WINDOW`](super::MAX_WINDOW).
    #[error(
        "verification window {} exceeds the maximum of 1h",
        humantime::format_duration(*window)
    )]
    WindowTooLong {
        /// The configured window.
        window: Duration,
    },
    /// A PromQL spec without a query.
    #[error("promql query is empty")]
    EmptyQuery,
    /// The query exceeds [`MAX_QUERY_BYTES`].
    #[error("promql query is {bytes} bytes, over the limit of {MAX_QUERY_BYTES}")]
    QueryTooLong {
        /// The query's length.
        bytes: usize,
    },
    /// A PromQL spec needs a `[prometheus]` section, and the host has none.
    #[error(
        "promql verification needs a [prometheus] section in the host configuration, and none is configured"
    )]
    NoPrometheus,
    /// The configured Prometheus URL is unusable.
    #[error("prometheus url {url:?} is invalid: {problem}")]
    InvalidUrl {
        /// The URL, without credentials.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The configured timeout is zero or above [`MAX_TIMEOUT`](super::MAX_TIMEOUT).
    #[error("prometheus timeout {} {problem}", humantime::format_duration(*timeout))]
    InvalidTimeout {
        /// The configured timeout.
        timeout: Duration,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The HTTP client could not be built (for example, no TLS roots).
    #[error("cannot build the prometheus client: {0}")]
    Client(String),
    /// No connection could be made.
    #[error("prometheus at {url} is unreachable: {message}")]
    Unreachable {
        /// The configured base URL.
        url: String,
        /// The underlying cause.
        message: String,
    },
    /// The query, including reading the response, took longer than the timeout.
    #[error("prometheus at {url} did not answer within {}", humantime::format_duration(*timeout))]
    Timeout {
        /// The configured base URL.
        url: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The connection broke after it was made.
    #[error("request to prometheus at {url} failed: {message}")]
    Transport {
        /// The configured base URL.
        url: String,
        /// The underlying cause.
        message: String,
    },
    /// Prometheus (or something in front of it) answered with a redirect.
    #[error("prometheus answered {status} redirecting to {location:?}; redirects are not followed")]
    Redirect {
        /// The HTTP status.
        status: u16,
        /// The `Location` header, if any.
        location: String,
    },
    /// A non-success HTTP status without a Prometheus error body.
    #[error("prometheus answered http {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The body exceeds [`MAX_RESPONSE_BYTES`](super::MAX_RESPONSE_BYTES).
    #[error("prometheus response exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The cap.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("prometheus response is not json ({message}): {body}")]
    NotJson {
        /// The JSON parser's complaint.
        message: String,
        /// The start of the body.
        body: String,
    },
    /// Prometheus refused or failed the query, in its own words.
    #[error("prometheus rejected the query ({error_type}): {message}")]
    Prometheus {
        /// Prometheus's `errorType`, e.g. `bad_data` for a parse error.
        error_type: String,
        /// Prometheus's `error` message.
        message: String,
    },
    /// JSON that does not follow the query API's shape.
    #[error("prometheus response is malformed: {0}")]
    Malformed(String),
    /// A result that cannot be judged sample by sample.
    #[error(
        "prometheus returned a {result_type} result; only instant vectors and scalars can be judged"
    )]
    UnsupportedResult {
        /// Prometheus's `resultType`.
        result_type: String,
    },
    /// A sample value that is not a number.
    #[error("prometheus sample value {value:?} is not a number")]
    BadValue {
        /// The value as sent.
        value: String,
    },
    /// The resolution source did not answer in time.
    #[error("looking up the alert's state took longer than {}", humantime::format_duration(*.0))]
    ResolutionTimeout(Duration),
}

impl VerifyError {
    /// Whether retrying the same check cannot help: Prometheus's `bad_data`
    /// means the query itself is invalid, and it will be just as invalid later.
    pub fn is_permanent(&self) -> bool {
        matches!(self, VerifyError::Prometheus { error_type, .. } if error_type == "bad_data")
    }
}

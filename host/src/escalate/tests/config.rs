//! The `[escalation]` section parses with its defaults, and every mistake is named precisely.

use super::*;

fn parse(text: &str) -> Result<EscalationConfig, String> {
    toml::from_str(text).map_err(|e| e.message().to_string())
}

fn refusal(notifiers: Vec<NotifierConfig>, retry: RetryPolicy) -> String {
    Escalator::new(&EscalationConfig { notifiers, retry })
        .expect_err("the configuration must be refused")
        .to_string()
}

#[test]
fn parses_every_kind_with_defaults() {
    let config = parse(
        r#"
        retry = { attempts = 6, max-backoff = "1m 30s" }

        [[notifiers]]
        kind = "webhook"
        name = "tickets"
        url = "https://tickets.example.com/hooks/blastwall"
        headers = { Authorization = "Bearer s3cr3t" }

        [[notifiers]]
        kind = "slack"
        name = "oncall"
        url = "https://hooks.slack.com/services/T000/B000/XXXX"

        [[notifiers]]
        kind = "pagerduty"
        name = "pager"
        routing-key = "R0UT1NGKEY"
        "#,
    )
    .unwrap();
    assert_eq!(
        config.retry,
        RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(90),
            timeout: Duration::from_secs(5),
        }
    );
    assert_eq!(
        config.notifiers[2],
        pagerduty("pager", PAGERDUTY_EVENTS_URL, "R0UT1NGKEY")
    );
    assert_eq!(
        config.notifiers[0].name(),
        "tickets",
        "{:?}",
        config.notifiers
    );
    assert_eq!(
        config
            .notifiers
            .iter()
            .map(NotifierConfig::kind)
            .collect::<Vec<_>>(),
        ["webhook", "slack", "pagerduty"]
    );
    let escalator = Escalator::new(&config).unwrap();
    assert!(!escalator.is_empty());

    let empty = parse("").unwrap();
    assert_eq!(empty, EscalationConfig::default());
    assert_eq!(empty.retry.attempts, 4);
    assert!(Escalator::new(&empty).unwrap().is_empty());
}

#[test]
fn rejects_unknown_fields() {
    let error = parse(
        r#"
        [[notifiers]]
        kind = "slack"
        name = "oncall"
        url = "https://hooks.slack.com/services/T000/B000/XXXX"
        channel = "ops"
        "#,
    )
    .unwrap_err();
    assert_eq!(error, "unknown field `channel`, expected `name` or `url`");

    let error = parse("retry = { attemps = 3 }").unwrap_err();
    assert_eq!(
        error,
        "unknown field `attemps`, expected one of `attempts`, `initial-backoff`, `max-backoff`, `timeout`"
    );

    let error = parse("[[notifiers]]\nkind = \"email\"\nname = \"x\"").unwrap_err();
    assert_eq!(
        error,
        "unknown variant `email`, expected one of `webhook`, `slack`, `pagerduty`"
    );
}

#[test]
fn rejects_a_duration_that_does_not_parse() {
    let error = parse("retry = { timeout = \"5 parsecs\" }").unwrap_err();
    assert!(
        error.starts_with("duration \"5 parsecs\" is invalid: "),
        "{error}"
    );
}

#[test]
fn rejects_duplicate_notifier_names() {
    let error = refusal(
        vec![
            slack("ops", "https://hooks.slack.com/a"),
            webhook("ops", "https://example.com/b"),
        ],
        RetryPolicy::default(),
    );
    assert_eq!(
        error,
        "notifier name \"ops\" is used more than once; names must be unique"
    );
}

#[test]
fn rejects_an_empty_name() {
    let error = refusal(
        vec![
            slack("ops", "https://hooks.slack.com/a"),
            webhook(" ", "https://example.com/b"),
        ],
        RetryPolicy::default(),
    );
    assert_eq!(error, "notifier #2 has an empty name");
}

#[test]
fn rejects_urls_that_are_not_http() {
    let error = refusal(
        vec![webhook("tickets", "ftp://example.com/drop")],
        RetryPolicy::default(),
    );
    assert_eq!(
        error,
        "notifier \"tickets\": url scheme \"ftp\" is not allowed; use http or https"
    );

    let error = refusal(
        vec![slack("oncall", "hooks.slack.com/services/T000/B000/XXXX")],
        RetryPolicy::default(),
    );
    assert_eq!(
        error,
        "notifier \"oncall\": url is not valid: relative URL without a base"
    );
}

#[test]
fn rejects_an_empty_routing_key() {
    let error = refusal(
        vec![pagerduty("pager", PAGERDUTY_EVENTS_URL, "  ")],
        RetryPolicy::default(),
    );
    assert_eq!(error, "notifier \"pager\": routing-key is empty");
}

#[test]
fn rejects_headers_that_blastwall_sets_or_that_are_malformed() {
    let with_header = |name: &str, value: &str| NotifierConfig::Webhook {
        name: "tickets".into(),
        url: "https://example.com/hook".into(),
        headers: [(name.to_string(), value.to_string())].into(),
    };
    let cases = [
        (
            with_header("Content-Type", "text/plain"),
            "notifier \"tickets\": header \"Content-Type\" cannot be set: blastwall sets it",
        ),
        (
            with_header("Host", "evil.example"),
            "notifier \"tickets\": header \"Host\" cannot be set: blastwall sets it",
        ),
        (
            with_header("bad name", "x"),
            "notifier \"tickets\": header \"bad name\" is not a valid header name",
        ),
        (
            with_header("X-Token", "line\nbreak-s3cr3t"),
            "notifier \"tickets\": header \"X-Token\" has a value that is not valid in a header",
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(refusal(vec![config], RetryPolicy::default()), expected);
    }
}

#[test]
fn rejects_a_retry_policy_out_of_bounds() {
    let cases = [
        (
            RetryPolicy {
                attempts: 0,
                ..RetryPolicy::default()
            },
            "retry attempts must be between 1 and 10, got 0",
        ),
        (
            RetryPolicy {
                attempts: 11,
                ..RetryPolicy::default()
            },
            "retry attempts must be between 1 and 10, got 11",
        ),
        (
            RetryPolicy {
                timeout: Duration::ZERO,
                ..RetryPolicy::default()
            },
            "retry timeout must be more than 0s and at most 5m, got 0s",
        ),
        (
            RetryPolicy {
                max_backoff: Duration::from_secs(3600),
                ..RetryPolicy::default()
            },
            "retry max-backoff must be at most 5m, got 1h",
        ),
        (
            RetryPolicy {
                initial_backoff: Duration::from_secs(10),
                ..RetryPolicy::default()
            },
            "retry initial-backoff 10s is longer than max-backoff 5s",
        ),
    ];
    for (retry, expected) in cases {
        assert_eq!(refusal(Vec::new(), retry), expected);
    }

    // Zero attempts written in the configuration file is refused the same way.
    let config = parse("retry = { attempts = 0 }").unwrap();
    assert_eq!(
        Escalator::new(&config).unwrap_err(),
        EscalateError::Retry("retry attempts must be between 1 and 10, got 0".into())
    );
}

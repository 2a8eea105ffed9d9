//! Retries, timeouts, redirects and failures, against real receivers.

use super::*;

async fn send_one(notifier: NotifierConfig, retry: RetryPolicy) -> Delivery {
    let mut deliveries = escalator(vec![notifier], retry).send(&sample()).await;
    assert_eq!(deliveries.len(), 1);
    deliveries.remove(0)
}

#[tokio::test]
async fn retries_server_errors_until_delivered() {
    let receiver = Receiver::start(vec![
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(200),
    ])
    .await;
    let delivery = send_one(webhook("tickets", &receiver.url), quick_retry(4)).await;
    assert!(delivery.delivered, "{delivery:?}");
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.status, Some(200));
    assert_eq!(delivery.error, None);
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn retries_too_many_requests() {
    let receiver = Receiver::start(vec![Reply::Status(429), Reply::Status(200)]).await;
    let delivery = send_one(slack("oncall", &receiver.url), quick_retry(4)).await;
    assert!(delivery.delivered, "{delivery:?}");
    assert_eq!(delivery.attempts, 2);
}

#[tokio::test]
async fn gives_up_after_the_configured_attempts() {
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let delivery = send_one(webhook("tickets", &receiver.url), quick_retry(3)).await;
    assert_eq!(
        delivery,
        Delivery {
            notifier: "tickets".into(),
            kind: "webhook",
            delivered: false,
            attempts: 3,
            status: Some(500),
            error: Some("server answered 500 Internal Server Error: answer 3".into()),
        }
    );
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn does_not_retry_client_errors() {
    let receiver = Receiver::start(vec![Reply::Status(400), Reply::Status(200)]).await;
    let delivery = send_one(slack("oncall", &receiver.url), quick_retry(4)).await;
    assert!(!delivery.delivered);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.status, Some(400));
    assert_eq!(
        delivery.error.as_deref(),
        Some("server answered 400 Bad Request: answer 1")
    );
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn reports_a_connection_error_for_an_unreachable_port() {
    let url = unreachable_url().await;
    let delivery = send_one(webhook("tickets", &url), quick_retry(2)).await;
    assert!(!delivery.delivered);
    assert_eq!(delivery.attempts, 2, "connection errors are retried");
    assert_eq!(delivery.status, None);
    let error = delivery.error.unwrap();
    assert!(error.starts_with("connection failed: "), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(
        !error.contains("127.0.0.1"),
        "the url is not repeated: {error}"
    );
}

#[tokio::test]
async fn times_out_a_receiver_slower_than_the_timeout() {
    let receiver = Receiver::start(vec![Reply::After(Duration::from_secs(10))]).await;
    let retry = RetryPolicy {
        timeout: Duration::from_millis(300),
        ..quick_retry(2)
    };
    let started = Instant::now();
    let delivery = send_one(webhook("tickets", &receiver.url), retry).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!delivery.delivered);
    assert_eq!(delivery.attempts, 2, "timeouts are retried");
    assert_eq!(delivery.status, None);
    assert_eq!(delivery.error.as_deref(), Some("timed out after 300ms"));
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test]
async fn does_not_follow_redirects() {
    let elsewhere = Receiver::ok().await;
    let receiver = Receiver::start(vec![Reply::Redirect(elsewhere.url.clone())]).await;
    let delivery = send_one(slack("oncall", &receiver.url), quick_retry(4)).await;
    assert!(!delivery.delivered);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.status, Some(302));
    assert_eq!(
        delivery.error.as_deref(),
        Some("server answered 302 Found (redirects are not followed)")
    );
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn backs_off_exponentially_up_to_the_cap() {
    let receiver = Receiver::start(vec![Reply::Status(503)]).await;
    let retry = RetryPolicy {
        attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(150),
        timeout: Duration::from_secs(5),
    };
    let delivery = send_one(webhook("tickets", &receiver.url), retry).await;
    assert_eq!(delivery.attempts, 4);
    let times: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let ms = Duration::from_millis;
    assert!(gaps[0] >= ms(100), "{gaps:?}");
    assert!(gaps[1] >= ms(150) && gaps[2] >= ms(150), "{gaps:?}");
    // Uncapped, the third wait would be 400ms.
    assert!(gaps[2] < ms(350), "backoff not capped: {gaps:?}");
}

#[tokio::test]
async fn sends_to_every_notifier_concurrently_and_reports_each_in_order() {
    let slow_a = Receiver::start(vec![Reply::After(Duration::from_millis(600))]).await;
    let slow_b = Receiver::start(vec![Reply::After(Duration::from_millis(600))]).await;
    let refusing = Receiver::start(vec![Reply::Status(404)]).await;
    let dead = unreachable_url().await;
    let escalator = escalator(
        vec![
            webhook("a", &slow_a.url),
            slack("b", &slow_b.url),
            pagerduty("c", &refusing.url, "key-123456"),
            webhook("d", &dead),
        ],
        quick_retry(2),
    );
    assert!(!escalator.is_empty());
    let started = Instant::now();
    let deliveries = escalator.send(&sample()).await;
    let elapsed = started.elapsed();

    let summary: Vec<(&str, &str, bool, Option<u16>)> = deliveries
        .iter()
        .map(|d| (d.notifier.as_str(), d.kind, d.delivered, d.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", "webhook", true, Some(200)),
            ("b", "slack", true, Some(200)),
            ("c", "pagerduty", false, Some(404)),
            ("d", "webhook", false, None),
        ]
    );
    assert!(
        elapsed < Duration::from_millis(1100),
        "sent one after another: {elapsed:?}"
    );
}

#[tokio::test]
async fn an_escalator_without_notifiers_sends_nothing() {
    let escalator = escalator(Vec::new(), RetryPolicy::default());
    assert!(escalator.is_empty());
    assert!(escalator.send(&sample()).await.is_empty());
}

#[tokio::test]
async fn secrets_never_appear_in_delivery_errors() {
    // A receiver that echoes back every header value and the body it was sent.
    let receiver = Receiver::start(vec![Reply::Echo(400)]).await;
    let key = "R0UT1NG-KEY-SECRET";
    let delivery = send_one(pagerduty("pager", &receiver.url, key), quick_retry(1)).await;
    let error = delivery.error.unwrap();
    assert!(
        error.starts_with("server answered 400 Bad Request: "),
        "{error}"
    );
    assert!(error.contains("<redacted>"), "{error}");
    assert!(!error.contains(key), "{error}");

    let url = format!("{}/T000/B000/XXXXSECRET", receiver.url);
    let mut config = webhook("tickets", &url);
    if let NotifierConfig::Webhook { headers, .. } = &mut config {
        headers.insert("Authorization".into(), "Bearer HEADER-SECRET".into());
    }
    let escalator = escalator(vec![config.clone()], quick_retry(1));
    let error = escalator.send(&sample()).await.remove(0).error.unwrap();
    assert!(
        error.starts_with("server answered 400 Bad Request: "),
        "{error}"
    );
    assert!(!error.contains("HEADER-SECRET"), "{error}");
    assert!(!error.contains("XXXXSECRET"), "{error}");

    // Nor in Debug output, which ends up in logs sooner or later.
    for debug in [format!("{escalator:?}"), format!("{config:?}")] {
        assert!(
            !debug.contains("XXXXSECRET") && !debug.contains("HEADER-SECRET"),
            "{debug}"
        );
        assert!(debug.contains("tickets"), "{debug}");
    }
    let pager = format!("{:?}", pagerduty("pager", &receiver.url, key));
    assert!(!pager.contains(key), "{pager}");
}

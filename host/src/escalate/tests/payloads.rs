//! Each notifier kind receives exactly the documented payload; hostile text is defused.

use super::*;

/// The sample escalation as every receiver should see it.
fn sample_json() -> Value {
    json!({
        "incident": "inc-4f2a9c",
        "alert": alert_json(),
        "target": "deployment/prod/checkout",
        "class": "oom-killed",
        "confidence": 0.87,
        "decision": "run-failed",
        "reason": "the plugin found no ready replica to restart safely",
        "run": run_json(),
        "severity": "critical"
    })
}

const SUMMARY: &str = "[critical] KubePodOOMKilled on deployment/prod/checkout: run-failed \
                       (oom-killed, 87% confidence): the plugin found no ready replica to restart safely";

#[tokio::test]
async fn webhook_receives_the_escalation_with_version_source_and_headers() {
    let receiver = Receiver::ok().await;
    let mut config = webhook("tickets", &receiver.url);
    if let NotifierConfig::Webhook { headers, .. } = &mut config {
        headers.insert("Authorization".into(), "Bearer s3cr3t-token".into());
        headers.insert("X-Team".into(), "sre".into());
    }
    let deliveries = escalator(vec![config], quick_retry(1))
        .send(&sample())
        .await;

    assert_eq!(
        deliveries,
        vec![Delivery {
            notifier: "tickets".into(),
            kind: "webhook",
            delivered: true,
            attempts: 1,
            status: Some(200),
            error: None,
        }]
    );
    let request = receiver.only_request();
    let mut expected = sample_json();
    expected["version"] = "1".into();
    expected["source"] = "blastwall".into();
    assert_eq!(request.json(), expected);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("Bearer s3cr3t-token"));
    assert_eq!(request.header("x-team"), Some("sre"));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("blastwall/")
    );
}

#[tokio::test]
async fn slack_receives_a_fallback_text_and_blocks() {
    let receiver = Receiver::ok().await;
    let deliveries = escalator(vec![slack("oncall", &receiver.url)], quick_retry(1))
        .send(&sample())
        .await;
    assert!(deliveries[0].delivered, "{deliveries:?}");
    assert_eq!(deliveries[0].kind, "slack");

    let field = |text: &str| json!({"type": "mrkdwn", "text": text, "verbatim": true});
    let request = receiver.only_request();
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "text": SUMMARY,
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": "blastwall: automation stopped (critical)", "emoji": false}
                },
                {
                    "type": "section",
                    "fields": [
                        field("*Incident*\ninc-4f2a9c"),
                        field("*Target*\ndeployment/prod/checkout"),
                        field("*Class*\noom-killed (87% confidence)"),
                        field("*Decision*\nrun-failed"),
                        field("*Alert*\nKubePodOOMKilled: checkout was OOM killed"),
                        field("*Severity*\ncritical"),
                    ]
                },
                {"type": "section", "text": field("*Reason*\nthe plugin found no ready replica to restart safely")},
                {
                    "type": "section",
                    "text": field("*Run*\noutcome plugin-error: no ready replica; no effects; \
                                   1 denial (scale.set-replicas deployment/prod/checkout)")
                }
            ],
            "unfurl_links": false,
            "unfurl_media": false
        })
    );
}

#[tokio::test]
async fn pagerduty_receives_a_trigger_event_deduplicated_by_incident() {
    let receiver = Receiver::start(vec![Reply::Status(202)]).await;
    let deliveries = escalator(
        vec![pagerduty("pager", &receiver.url, "R0UT1NG-KEY-123")],
        quick_retry(1),
    )
    .send(&sample())
    .await;
    assert_eq!(deliveries[0].status, Some(202));
    assert!(deliveries[0].delivered);

    let request = receiver.only_request();
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "routing_key": "R0UT1NG-KEY-123",
            "event_action": "trigger",
            "dedup_key": "inc-4f2a9c",
            "client": "blastwall",
            "payload": {
                "summary": SUMMARY,
                "source": "deployment/prod/checkout",
                "severity": "critical",
                "component": "checkout",
                "group": "prod",
                "class": "oom-killed",
                "custom_details": sample_json()
            }
        })
    );
}

/// An alert written by someone who wants to ping everyone and plant a link.
fn hostile() -> Escalation {
    let mut escalation = sample();
    let ping = "<!channel> <@U0123> & <https://evil.example|click for the runbook>";
    escalation
        .alert
        .annotations
        .insert("summary".into(), format!("{ping}\n{}", "A".repeat(50_000)));
    escalation
        .alert
        .labels
        .insert("alertname".into(), format!("{ping}{}", "B".repeat(10_000)));
    escalation.class = format!("{ping}\u{202E}{}", "c".repeat(5_000));
    escalation.reason = format!("{ping}\r\n{}", "r".repeat(100_000));
    escalation.target = ping.into();
    escalation.run = Some(json!({"outcome": ping, "effects": [{"function": ping}]}));
    escalation
}

#[tokio::test]
async fn hostile_alert_text_in_slack_is_escaped_and_bounded() {
    let receiver = Receiver::ok().await;
    escalator(vec![slack("oncall", &receiver.url)], quick_retry(1))
        .send(&hostile())
        .await;
    let request = receiver.only_request();
    let body = String::from_utf8(request.body.to_vec()).unwrap();
    let message = request.json();

    // Every string Slack renders, wherever it sits in the message.
    let mut texts = vec![message["text"].as_str().unwrap().to_string()];
    for block in message["blocks"].as_array().unwrap() {
        texts.extend(block["text"]["text"].as_str().map(str::to_string));
        for field in block["fields"].as_array().into_iter().flatten() {
            texts.push(field["text"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(texts.len(), 10);
    for text in &texts {
        assert!(
            !text.contains('<') && !text.contains('>'),
            "unescaped: {text}"
        );
        assert!(!text.contains('\u{202E}'), "bidi override survived");
        assert!(
            text.chars().count() <= 2000,
            "too long for Slack: {}",
            text.len()
        );
    }
    assert!(body.contains("&lt;!channel&gt; &lt;@U0123&gt; &amp; &lt;https://evil.example|click"));
    // Each untrusted string keeps at most SLACK_MAX_TEXT characters, so the whole
    // message stays small although the alert carried 170 kB.
    assert!(body.len() < 16 * 1024, "message is {} bytes", body.len());
    let reason = message["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(reason.ends_with("r…"), "{reason}");
    assert!(!reason["*Reason*\n".len()..].contains('\n'));
}

#[tokio::test]
async fn no_notifier_body_carries_a_raw_bidi_override_or_invisible_character() {
    let mut escalation = sample();
    let hostile = "restart \u{202E}dorp/tnemyolped\u{202C} \u{2067}x\u{2069}\u{200D}\u{85}";
    escalation.reason = hostile.into();
    escalation
        .alert
        .annotations
        .insert("summary".into(), hostile.into());
    escalation.run = Some(json!({"outcome": {"kind": "completed", "summary": hostile}}));
    let receiver = Receiver::ok().await;
    let notifiers = vec![
        webhook("tickets", &receiver.url),
        slack("oncall", &receiver.url),
        pagerduty("pager", &receiver.url, "key-123456"),
    ];
    escalator(notifiers, quick_retry(1)).send(&escalation).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let body = String::from_utf8(request.body.to_vec()).unwrap();
        assert!(
            !body.chars().any(crate::text::is_deceptive),
            "a raw deceptive character reached a notifier: {body}"
        );
    }
    // The webhook's JSON still reads back the exact text.
    let webhook = requests
        .iter()
        .find(|r| r.json()["source"] == "blastwall")
        .unwrap();
    assert_eq!(webhook.json()["reason"], hostile);
}

#[test]
fn slack_text_escapes_control_characters_and_cuts_at_the_bound() {
    assert_eq!(slack_text("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
    assert_eq!(slack_text("line\nbreak\ttab\u{200B}"), "line break tab ");
    let long = slack_text(&"é".repeat(SLACK_MAX_TEXT + 1));
    assert_eq!(long.chars().count(), SLACK_MAX_TEXT);
    assert!(long.ends_with('…'));
    let exact = "x".repeat(SLACK_MAX_TEXT);
    assert_eq!(slack_text(&exact), exact);
}

#[test]
fn pagerduty_event_stays_within_its_limits_for_a_hostile_alert() {
    let mut escalation = hostile();
    for i in 0..200 {
        let key = format!("note-{i}");
        escalation.alert.annotations.insert(key, "n".repeat(16_000));
    }
    let event = pagerduty_payload(&escalation, "key-123456");
    let size = serde_json::to_vec(&event).unwrap().len();
    assert!(size < 512 * 1024, "event is {size} bytes");
    let payload = &event["payload"];
    assert!(payload["summary"].as_str().unwrap().chars().count() <= PAGERDUTY_MAX_SUMMARY);
    for key in ["source", "component", "class"] {
        let value = payload[key].as_str().unwrap();
        assert!(value.chars().count() <= PAGERDUTY_MAX_FIELD, "{key}");
        assert!(!value.contains('\n'), "{key}");
    }
    assert_eq!(payload["custom_details"]["truncated"], json!(true));
    assert_eq!(payload["custom_details"]["incident"], json!("inc-4f2a9c"));
    // A small escalation goes in full, without the marker.
    let full = pagerduty_payload(&sample(), "key-123456");
    assert_eq!(full["payload"]["custom_details"], sample_json());
}

#[test]
fn run_summary_names_outcome_effects_and_denials() {
    let run = json!({
        "outcome": {"kind": "completed", "summary": "restarted checkout", "actions": 2},
        "effects": [
            {"function": "restart.restart", "target": "deployment/prod/checkout", "result": "ok"},
            {"function": "scale.set-replicas", "target": "deployment/prod/checkout", "arguments": "replicas=5"},
            {"function": "a"}, {"function": "b"}
        ],
        "denials": []
    });
    assert_eq!(
        run_summary(&run),
        "outcome completed: restarted checkout; 4 effects (restart.restart deployment/prod/checkout, \
         scale.set-replicas deployment/prod/checkout replicas=5, a, …); no denials"
    );
    assert_eq!(
        run_summary(&json!({"outcome": "interrupted"})),
        "outcome interrupted"
    );
    assert_eq!(run_summary(&json!([1, 2])), "[1,2]");
}

//! What each notifier kind is sent.
//!
//! Alert labels and annotations, and anything derived from them (class,
//! target, reason), are untrusted. The webhook gets them as JSON, which a
//! machine parses and a human never reads raw. Slack renders mrkdwn, so there
//! every untrusted string is put on one line, bounded and escaped: a hostile
//! alert cannot ping `<!channel>`, plant a disguised link or post a wall of
//! text. PagerDuty gets plain text bounded to its field limits.

use serde_json::{Map, Value, json};

use super::Escalation;

/// Longest untrusted string in a Slack message, in characters before escaping.
/// Escaping at most quintuples it, which stays within Slack's 2000-character field limit.
pub const SLACK_MAX_TEXT: usize = 300;
/// PagerDuty's limit on an event summary, in characters.
pub const PAGERDUTY_MAX_SUMMARY: usize = 1024;
/// Bound on PagerDuty's short fields (dedup key, source, component, group, class).
pub const PAGERDUTY_MAX_FIELD: usize = 255;
/// Largest `custom_details` sent in full; PagerDuty refuses events over 512 KB,
/// and a refused event would be a lost escalation. Larger details are bounded.
pub const PAGERDUTY_MAX_DETAILS_BYTES: usize = 256 * 1024;

/// The generic webhook body: the escalation as JSON, plus `"version": "1"` (this
/// shape) and `"source": "blastwall"` so receivers can route and evolve.
pub fn webhook_payload(escalation: &Escalation) -> Value {
    let mut body = to_object(escalation);
    body.insert("version".into(), "1".into());
    body.insert("source".into(), "blastwall".into());
    Value::Object(body)
}

/// A Slack incoming-webhook message: a one-line `text` fallback (used in
/// notifications) and `blocks` with a header, the key facts as fields, the
/// reason and a short run summary.
///
/// Every untrusted string passes through [`slack_text`]; mrkdwn objects are
/// `verbatim` so Slack does not turn bare URLs or channel names into links,
/// and unfurling is off so a hostile URL gets no preview.
pub fn slack_payload(escalation: &Escalation) -> Value {
    let e = escalation;
    let mrkdwn = |title: &str, text: String| {
        let text = format!("*{title}*\n{text}");
        json!({"type": "mrkdwn", "text": text, "verbatim": true})
    };
    let class = format!(
        "{} ({} confidence)",
        slack_text(&e.class),
        percent(e.confidence)
    );
    let mut alert = slack_text(e.alert.name());
    if let Some(summary) = e.alert.annotations.get("summary") {
        alert = format!("{alert}: {}", slack_text(summary));
    }
    let run = match &e.run {
        Some(run) => slack_text(&run_summary(run)),
        None => "nothing ran".to_string(),
    };
    json!({
        "text": slack_text(&summary_line(e)),
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": format!("blastwall: automation stopped ({})", e.severity.as_str()),
                    "emoji": false,
                },
            },
            {
                "type": "section",
                "fields": [
                    mrkdwn("Incident", slack_text(&e.incident)),
                    mrkdwn("Target", slack_text(&e.target)),
                    mrkdwn("Class", class),
                    mrkdwn("Decision", slack_text(&e.decision)),
                    mrkdwn("Alert", alert),
                    mrkdwn("Severity", e.severity.as_str().to_string()),
                ],
            },
            {"type": "section", "text": mrkdwn("Reason", slack_text(&e.reason))},
            {"type": "section", "text": mrkdwn("Run", run)},
        ],
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// A PagerDuty Events API v2 `trigger` event. The incident id is the dedup key,
/// so a repeated escalation of one incident updates one PagerDuty incident
/// instead of paging again. `custom_details` holds the whole escalation,
/// bounded if it would make the event too large (then `"truncated": true`).
pub fn pagerduty_payload(escalation: &Escalation, routing_key: &str) -> Value {
    let e = escalation;
    let field = |text: &str| one_line(text, PAGERDUTY_MAX_FIELD);
    // `kind/namespace/name`: the workload is the component, its namespace the group.
    let (component, group) = match e.target.splitn(3, '/').collect::<Vec<_>>()[..] {
        [_, namespace, name] => (field(name), field(namespace)),
        _ => (field(&e.target), String::new()),
    };
    let mut payload = json!({
        "summary": one_line(&summary_line(e), PAGERDUTY_MAX_SUMMARY),
        "source": field(&e.target),
        "severity": e.severity.as_str(),
        "component": component,
        "class": field(&e.class),
        "custom_details": pagerduty_details(e),
    });
    if !group.is_empty() {
        payload["group"] = group.into();
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": field(&e.incident),
        "client": "blastwall",
        "payload": payload,
    })
}

/// Makes untrusted text safe to embed in Slack mrkdwn: one line, at most
/// [`SLACK_MAX_TEXT`] characters, and `&`, `<`, `>` escaped so it cannot form
/// a mention (`<!channel>`, `<@U123>`) or a link with a disguised label.
pub fn slack_text(text: &str) -> String {
    let line = one_line(text, SLACK_MAX_TEXT);
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Puts text on one line and bounds it: control characters (newlines too) and
/// the invisible bidirectional and zero-width formatting characters, which can
/// disguise what a reader sees, become spaces; text longer than `max_chars`
/// characters is cut and ends in `…`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let clean = text.chars().map(|c| if is_hidden(c) { ' ' } else { c });
    truncate_chars(clean, max_chars)
}

/// The one-line summary used as Slack's fallback text and PagerDuty's summary.
/// Untrusted parts are bounded one by one, so none can crowd out the others.
pub fn summary_line(escalation: &Escalation) -> String {
    let e = escalation;
    let part = |text: &str| one_line(text, SLACK_MAX_TEXT);
    format!(
        "[{}] {} on {}: {} ({}, {} confidence): {}",
        e.severity.as_str(),
        part(e.alert.name()),
        part(&e.target),
        part(&e.decision),
        part(&e.class),
        percent(e.confidence),
        part(&e.reason),
    )
}

/// A short, human summary of the run value: its outcome, and how many effects
/// and denials it had with the first few named. Falls back to compact JSON.
pub fn run_summary(run: &Value) -> String {
    let mut parts = Vec::new();
    match run.get("outcome") {
        Some(Value::String(outcome)) => parts.push(format!("outcome {outcome}")),
        Some(Value::Object(outcome)) => {
            let kind = outcome.get("kind").and_then(Value::as_str).unwrap_or("?");
            let detail = ["summary", "message", "error", "detail"]
                .iter()
                .find_map(|key| outcome.get(*key).and_then(Value::as_str));
            parts.push(match detail {
                Some(detail) => format!("outcome {kind}: {detail}"),
                None => format!("outcome {kind}"),
            });
        }
        _ => {}
    }
    for (key, noun) in [("effects", "effect"), ("denials", "denial")] {
        if let Some(Value::Array(items)) = run.get(key) {
            let plural = if items.len() == 1 { "" } else { "s" };
            let named: Vec<String> = items.iter().take(3).map(describe_call).collect();
            let more = if items.len() > 3 { ", …" } else { "" };
            parts.push(match items.len() {
                0 => format!("no {noun}s"),
                n => format!("{n} {noun}{plural} ({}{more})", named.join(", ")),
            });
        }
    }
    if parts.is_empty() {
        return run.to_string();
    }
    parts.join("; ")
}

fn describe_call(call: &Value) -> String {
    let get = |key| call.get(key).and_then(Value::as_str).unwrap_or_default();
    [get("function"), get("target"), get("arguments")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Confidence as a whole percentage, clamped to 0–100; `unknown` if not a number.
fn percent(confidence: f32) -> String {
    if confidence.is_finite() {
        format!("{:.0}%", confidence.clamp(0.0, 1.0) * 100.0)
    } else {
        "unknown".to_string()
    }
}

/// The escalation as a JSON object (empty only if serialisation were impossible, which
/// it is not for these types; the fallback keeps `send` free of panics).
fn to_object(escalation: &Escalation) -> Map<String, Value> {
    match serde_json::to_value(escalation) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn pagerduty_details(escalation: &Escalation) -> Value {
    let full = Value::Object(to_object(escalation));
    if json_len(&full) <= PAGERDUTY_MAX_DETAILS_BYTES {
        return full;
    }
    let mut bounded = bound_json(&full, 0);
    bounded["truncated"] = true.into();
    if json_len(&bounded) <= PAGERDUTY_MAX_DETAILS_BYTES {
        return bounded;
    }
    let field = |text: &str| one_line(text, SLACK_MAX_TEXT);
    json!({
        "incident": field(&escalation.incident),
        "target": field(&escalation.target),
        "class": field(&escalation.class),
        "decision": field(&escalation.decision),
        "reason": field(&escalation.reason),
        "alertname": field(escalation.alert.name()),
        "truncated": true,
    })
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

/// Bounds every string to 1024 characters, every array and object to 64 entries and
/// nesting to 6 levels, keeping the shape readable.
fn bound_json(value: &Value, depth: usize) -> Value {
    const ITEMS: usize = 64;
    match value {
        Value::String(text) => Value::String(truncate_chars(text.chars(), 1024)),
        Value::Array(_) | Value::Object(_) if depth >= 6 => Value::String("…".into()),
        Value::Array(items) => items
            .iter()
            .take(ITEMS)
            .map(|item| bound_json(item, depth + 1))
            .collect(),
        Value::Object(map) => map
            .iter()
            .take(ITEMS)
            .map(|(key, item)| {
                (
                    truncate_chars(key.chars(), 128),
                    bound_json(item, depth + 1),
                )
            })
            .collect(),
        other => other.clone(),
    }
}

fn truncate_chars(chars: impl Iterator<Item = char>, max_chars: usize) -> String {
    let mut chars = chars.peekable();
    let mut out = String::new();
    if max_chars == 0 {
        return out;
    }
    for _ in 0..max_chars.saturating_sub(1) {
        match chars.next() {
            Some(c) => out.push(c),
            None => return out,
        }
    }
    match (chars.next(), chars.peek()) {
        (Some(last), None) => out.push(last),
        (Some(_), Some(_)) => out.push('…'),
        (None, _) => {}
    }
    out
}

/// Control characters, and the zero-width and bidirectional formatting characters.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}

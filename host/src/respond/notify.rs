//! Escalation from the loop: build the context, send, and record every delivery.

use serde_json::json;

use super::{Case, Responder};
use crate::escalate::{Escalation, Severity};
use crate::store::StoreError;

impl Responder {
    /// Tells a human. Failed deliveries are recorded like successful ones;
    /// only a failure to record stops the loop.
    pub(crate) async fn escalate(
        &self,
        case: &Case,
        decision: &str,
        reason: &str,
        run: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let severity = match decision {
            "interrupted" | "verification-failed" | "run-failed" => Severity::Critical,
            "verification-inconclusive" => Severity::Error,
            "refuse" => Severity::Error,
            "await-approval" => Severity::Warning,
            _ => Severity::Info,
        };
        let escalation = Escalation {
            incident: case.id.clone(),
            alert: case.alert.clone(),
            target: case.target_text.clone(),
            class: case.class.clone(),
            confidence: case.confidence,
            decision: decision.to_string(),
            reason: reason.to_string(),
            run,
            severity,
        };
        // The intent is on the record before anyone is paged, so a crash while
        // sending leaves a trace of the page.
        self.record(
            &case.id,
            "escalation.requested",
            json!({"decision": decision, "reason": reason, "severity": severity}),
        )
        .await?;
        let deliveries = self.escalator.send(&escalation).await;
        let note = if deliveries.is_empty() {
            Some("no notifiers are configured: this record is the only escalation")
        } else {
            None
        };
        self.record(
            &case.id,
            "escalation",
            json!({
                "decision": decision,
                "reason": reason,
                "severity": severity,
                "deliveries": deliveries,
                "note": note,
            }),
        )
        .await
    }
}

//! What operators change at run time: kill switches and windows. Every change
//! is validated, applied to the store and recorded in the audit chain, so the
//! record shows who turned automation off, when, and why.

use serde_json::json;

use crate::audit::Entry;
use crate::guardrails::{KillSwitch, Window, WindowSpec, now_ms};
use crate::policy::TargetPattern;
use crate::store::{Change, Store, StoreError};

/// Why an operator's change was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    /// The change itself is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn entry(kind: &str, body: serde_json::Value) -> Entry {
    Entry {
        incident: None,
        kind: kind.into(),
        body,
    }
}

fn check_text(what: &str, value: &str) -> Result<(), OperateError> {
    if value.trim().is_empty() || value.len() > 512 {
        return Err(OperateError::Invalid(format!(
            "{what} must be 1 to 512 characters"
        )));
    }
    Ok(())
}

/// Turns automation off for `scope` (every target when `None`).
pub async fn set_kill_switch(
    store: &dyn Store,
    scope: Option<TargetPattern>,
    reason: &str,
    by: &str,
) -> Result<KillSwitch, OperateError> {
    check_text("a kill switch's reason", reason)?;
    check_text("who sets a kill switch", by)?;
    let switch = KillSwitch {
        scope,
        reason: reason.into(),
        set_by: by.into(),
        set_at: now_ms(),
    };
    // The change and its record, atomically.
    store
        .commit(
            vec![Change::SetKillSwitch(switch.clone())],
            vec![entry("killswitch.set", json!(&switch))],
        )
        .await?;
    Ok(switch)
}

/// Clears the kill switch for `scope`; `false` if none was set.
pub async fn clear_kill_switch(
    store: &dyn Store,
    scope: Option<TargetPattern>,
    by: &str,
) -> Result<bool, OperateError> {
    check_text("who clears a kill switch", by)?;
    let exists = store
        .controls()
        .await?
        .kill_switches
        .iter()
        .any(|k| k.scope == scope);
    if !exists {
        return Ok(false);
    }
    let record = entry("killswitch.cleared", json!({"scope": &scope, "by": by}));
    store
        .commit(vec![Change::ClearKillSwitch { scope }], vec![record])
        .await?;
    Ok(true)
}

/// Adds (or replaces) a maintenance or exclusion window, after validating it.
pub async fn add_window(store: &dyn Store, spec: WindowSpec, by: &str) -> Result<(), OperateError> {
    check_text("who adds a window", by)?;
    Window::try_from(spec.clone()).map_err(|e| OperateError::Invalid(e.to_string()))?;
    let record = entry("window.added", json!({"window": &spec, "by": by}));
    store
        .commit(vec![Change::AddWindow(spec)], vec![record])
        .await?;
    Ok(())
}

/// Deletes a window by name; `false` if there was none.
pub async fn delete_window(store: &dyn Store, name: &str, by: &str) -> Result<bool, OperateError> {
    check_text("who deletes a window", by)?;
    let exists = store
        .controls()
        .await?
        .windows
        .iter()
        .any(|w| w.name == name);
    if !exists {
        return Ok(false);
    }
    let record = entry("window.deleted", json!({"name": name, "by": by}));
    let change = Change::DeleteWindow {
        name: name.to_string(),
    };
    store.commit(vec![change], vec![record]).await?;
    Ok(true)
}

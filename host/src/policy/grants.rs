//! Grants: what one run may do, checked on every capability call.
//!
//! Threat model: the plugin is untrusted. Whatever it passes to a capability
//! call (targets, replica counts, log-set names) may be wrong by mistake or by
//! design, so each call is checked here against the intersection of every
//! layer that had a say: the manifest the plugin was published with, the
//! operator's policy, and (by default) the incident's own target. A target is
//! in scope only if every layer allows it; numeric bounds take the strictest
//! value of any layer.
//!
//! Only this module can build a [`Grants`]; the sandbox accepts nothing else,
//! so no code path can run a plugin with an unchecked or hand-made grant.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::pattern::TargetPattern;
use super::scope::{Capability, CapabilityScopes, ScaleScope};
use crate::workload::Workload;

/// Targets allowed by every layer: one list of patterns per layer, a target must
/// match some pattern in each list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGrant {
    layers: Vec<Vec<TargetPattern>>,
}

impl TargetGrant {
    fn new(first: &[TargetPattern]) -> Self {
        TargetGrant {
            layers: vec![first.to_vec()],
        }
    }

    fn narrow(&mut self, patterns: &[TargetPattern]) {
        self.layers.push(patterns.to_vec());
    }

    /// Whether every layer allows `workload`.
    pub fn allows(&self, workload: &Workload) -> bool {
        self.layers
            .iter()
            .all(|layer| layer.iter().any(|pattern| pattern.matches(workload)))
    }

    fn describe(&self) -> String {
        self.layers
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect::<Vec<_>>()
            .join(", and ")
    }
}

/// The effective `scale` grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScaleGrant {
    targets: TargetGrant,
    min_replicas: u32,
    max_replicas: u32,
    max_step_up: Option<u32>,
    max_step_down: Option<u32>,
}

fn stricter(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl ScaleGrant {
    fn new(scope: &ScaleScope) -> Self {
        ScaleGrant {
            targets: TargetGrant::new(&scope.targets),
            min_replicas: scope.min_replicas,
            max_replicas: scope.max_replicas,
            max_step_up: scope.max_step_up,
            max_step_down: scope.max_step_down,
        }
    }

    fn narrow(&mut self, scope: &ScaleScope) {
        self.targets.narrow(&scope.targets);
        self.min_replicas = self.min_replicas.max(scope.min_replicas);
        self.max_replicas = self.max_replicas.min(scope.max_replicas);
        self.max_step_up = stricter(self.max_step_up, scope.max_step_up);
        self.max_step_down = stricter(self.max_step_down, scope.max_step_down);
    }
}

/// A reason a capability call was refused; returned to the plugin as `denied(reason)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

/// Why a grant could not be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The layers' replica ranges do not overlap.
    #[error(
        "scale: the manifest and the policy leave no replica count allowed (min {min} is above max {max})"
    )]
    EmptyReplicaRange {
        /// The strictest minimum.
        min: u32,
        /// The strictest maximum.
        max: u32,
    },
}

/// Log sets allowed by every layer: a name must match (`*` wildcards) some entry of each layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSetGrant {
    layers: Vec<BTreeSet<String>>,
}

impl LogSetGrant {
    fn allows(&self, name: &str) -> bool {
        self.layers.iter().all(|layer| {
            layer
                .iter()
                .any(|pattern| crate::wildcard::matches(pattern, name))
        })
    }

    fn describe(&self) -> String {
        self.layers
            .iter()
            .map(|layer| layer.iter().cloned().collect::<Vec<_>>().join(" or "))
            .collect::<Vec<_>>()
            .join(", and ")
    }
}

/// What one run may do. Built only by [`super::grant`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grants {
    scale: Option<ScaleGrant>,
    restart: Option<TargetGrant>,
    rollback: Option<TargetGrant>,
    log_rotation: Option<LogSetGrant>,
    /// Capabilities the manifest declares that a later layer withheld, and which layer.
    #[serde(skip)]
    withheld: BTreeMap<Capability, String>,
}

impl Grants {
    /// Starts from what the manifest declares: nothing undeclared can ever be granted.
    pub(super) fn from_declared(declared: &CapabilityScopes) -> Self {
        Grants {
            scale: declared.scale.as_ref().map(ScaleGrant::new),
            restart: declared
                .restart
                .as_ref()
                .map(|s| TargetGrant::new(&s.targets)),
            rollback: declared
                .rollback
                .as_ref()
                .map(|s| TargetGrant::new(&s.targets)),
            log_rotation: declared.log_rotation.as_ref().map(|l| LogSetGrant {
                layers: vec![l.log_sets.clone()],
            }),
            withheld: BTreeMap::new(),
        }
    }

    /// Intersects with another layer, named `who` in messages (e.g. `policy`):
    /// a capability absent from `layer` is removed.
    pub(super) fn narrow(&mut self, layer: &CapabilityScopes, who: &str) -> Result<(), GrantError> {
        let before = self.capabilities();
        self.scale = match (self.scale.take(), &layer.scale) {
            (Some(mut grant), Some(scope)) => {
                grant.narrow(scope);
                if grant.min_replicas > grant.max_replicas {
                    return Err(GrantError::EmptyReplicaRange {
                        min: grant.min_replicas,
                        max: grant.max_replicas,
                    });
                }
                Some(grant)
            }
            _ => None,
        };
        for (grant, scope) in [
            (&mut self.restart, &layer.restart),
            (&mut self.rollback, &layer.rollback),
        ] {
            *grant = match (grant.take(), scope) {
                (Some(mut g), Some(s)) => {
                    g.narrow(&s.targets);
                    Some(g)
                }
                _ => None,
            };
        }
        self.log_rotation = match (self.log_rotation.take(), &layer.log_rotation) {
            (Some(mut grant), Some(scope)) => {
                grant.layers.push(scope.log_sets.clone());
                Some(grant)
            }
            _ => None,
        };
        for capability in before.difference(&self.capabilities()) {
            self.withheld.insert(*capability, who.to_string());
        }
        Ok(())
    }

    /// Confines every workload capability to `only` (the incident's target,
    /// plus any explicit widening).
    pub(super) fn confine_to(&mut self, only: &[TargetPattern]) {
        if let Some(scale) = &mut self.scale {
            scale.targets.narrow(only);
        }
        for grant in [&mut self.restart, &mut self.rollback]
            .into_iter()
            .flatten()
        {
            grant.narrow(only);
        }
    }

    /// The capabilities granted; the sandbox links exactly these interfaces.
    pub fn capabilities(&self) -> BTreeSet<Capability> {
        let mut set = BTreeSet::new();
        if self.scale.is_some() {
            set.insert(Capability::Scale);
        }
        if self.restart.is_some() {
            set.insert(Capability::Restart);
        }
        if self.rollback.is_some() {
            set.insert(Capability::Rollback);
        }
        if self.log_rotation.is_some() {
            set.insert(Capability::LogRotation);
        }
        set
    }

    fn target_grant(&self, capability: Capability) -> Option<&TargetGrant> {
        match capability {
            Capability::Scale => self.scale.as_ref().map(|s| &s.targets),
            Capability::Restart => self.restart.as_ref(),
            Capability::Rollback => self.rollback.as_ref(),
            Capability::LogRotation => None,
        }
    }

    /// Whether the plugin may read `workload`'s status: only workloads some granted
    /// capability could act on are visible, so a plugin cannot map the fleet.
    pub fn may_observe(&self, workload: &Workload) -> Result<(), Denial> {
        let visible = [Capability::Scale, Capability::Restart, Capability::Rollback]
            .into_iter()
            .filter_map(|c| self.target_grant(c))
            .any(|grant| grant.allows(workload));
        if visible {
            Ok(())
        } else {
            Err(Denial(format!(
                "{workload} is outside every granted scope; its status is not visible"
            )))
        }
    }

    /// Checks a `restart` or `rollback` call on `workload`.
    pub fn check_target(&self, capability: Capability, workload: &Workload) -> Result<(), Denial> {
        let grant = self
            .target_grant(capability)
            .ok_or_else(|| self.not_granted(capability))?;
        if grant.allows(workload) {
            Ok(())
        } else {
            Err(Denial(format!(
                "{workload} is outside the {capability} grant (allowed: {})",
                grant.describe()
            )))
        }
    }

    /// Checks a `scale` call moving `workload` from `current` to `desired` replicas.
    pub fn check_scale(
        &self,
        workload: &Workload,
        current: u32,
        desired: u32,
    ) -> Result<(), Denial> {
        self.check_target(Capability::Scale, workload)?;
        let grant = self.scale.as_ref().expect("checked by check_target");
        if desired < grant.min_replicas {
            return Err(Denial(format!(
                "{desired} replicas for {workload} is below the granted minimum of {}",
                grant.min_replicas
            )));
        }
        if desired > grant.max_replicas {
            return Err(Denial(format!(
                "{desired} replicas for {workload} is above the granted maximum of {}",
                grant.max_replicas
            )));
        }
        if let Some(step) = grant.max_step_up
            && desired > current.saturating_add(step)
        {
            return Err(Denial(format!(
                "scaling {workload} from {current} to {desired} is a step of {}; at most {step} up is granted",
                desired - current
            )));
        }
        if let Some(step) = grant.max_step_down
            && desired < current.saturating_sub(step)
        {
            return Err(Denial(format!(
                "scaling {workload} from {current} to {desired} is a step of {}; at most {step} down is granted",
                current - desired
            )));
        }
        Ok(())
    }

    /// Checks a `log-rotation` call on the log set `name`.
    pub fn check_log_set(&self, name: &str) -> Result<(), Denial> {
        let grant = self
            .log_rotation
            .as_ref()
            .ok_or_else(|| self.not_granted(Capability::LogRotation))?;
        if grant.allows(name) {
            Ok(())
        } else {
            Err(Denial(format!(
                "log set {:?} is not granted (allowed: {})",
                name.chars().take(64).collect::<String>(),
                grant.describe()
            )))
        }
    }

    /// The denial of a call to a capability this run does not hold, naming
    /// the layer that withheld it when the manifest declared it.
    fn not_granted(&self, capability: Capability) -> Denial {
        match self.withheld_by(capability) {
            Some(layer) => Denial(format!(
                "capability {capability} is not granted: {layer} withholds it"
            )),
            None => Denial(format!("capability {capability} is not granted")),
        }
    }

    /// Which layer withheld `capability`, if the manifest declared it but a later layer did not grant it.
    pub fn withheld_by(&self, capability: Capability) -> Option<&str> {
        self.withheld.get(&capability).map(String::as_str)
    }
}

//! Classification: which failure class an alert is, and how sure we are.
//!
//! Rules come first (operators wrote them); an optional model classifier is
//! asked only when no rule matches, and only ever to pick a label from the
//! closed set of classes the catalog maps. Everything else becomes
//! `unknown`, which the host escalates. See [`model`] for why a model's answer
//! cannot widen what runs.

mod model;
mod rules;

use serde::{Deserialize, Serialize};

pub use model::{ModelAnswer, ModelClassifier, ModelConfig};
pub use rules::{Rule, first_match};

use crate::alert::Alert;

/// `[classify]`: rules and the optional model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClassifyConfig {
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The model classifier, asked when no rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
}

/// Who classified an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum ClassifiedBy {
    /// A rule, by its position in the configuration.
    Rule {
        /// The rule's index, from 0.
        index: usize,
    },
    /// The model.
    Model {
        /// The model's name.
        model: String,
    },
    /// Nothing matched.
    Nothing,
}

/// A classification. `class` is `None` for unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The class, or `None` when unknown.
    pub class: Option<String>,
    /// Confidence, 0 to 1 (0 when unknown).
    pub confidence: f32,
    /// Who decided.
    #[serde(flatten)]
    pub by: ClassifiedBy,
    /// Why, in a sentence.
    pub reason: String,
}

impl Classification {
    /// The class name for records: the class or `unknown`.
    pub fn label(&self) -> &str {
        self.class.as_deref().unwrap_or("unknown")
    }
}

/// The classifier, built once from configuration.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    model: Option<ModelClassifier>,
}

impl Classifier {
    /// Validates the rules and builds the model client.
    pub fn new(config: &ClassifyConfig) -> Result<Self, String> {
        for (index, rule) in config.rules.iter().enumerate() {
            rule.validate(index)?;
        }
        let model = config
            .model
            .as_ref()
            .map(ModelClassifier::new)
            .transpose()?;
        Ok(Classifier {
            rules: config.rules.clone(),
            model,
        })
    }

    /// The highest confidence a model's answer carries, and so an AI agent's
    /// proposal: the model's `max-confidence`, else its default.
    pub fn max_confidence(&self) -> f32 {
        self.model
            .as_ref()
            .map_or_else(model::default_cap, ModelClassifier::max_confidence)
    }

    /// Classifies `alert` into one of `classes` (the catalog's), or unknown.
    pub async fn classify(&self, alert: &Alert, classes: &[&str]) -> Classification {
        if let Some((index, rule)) = first_match(&self.rules, alert) {
            return Classification {
                class: Some(rule.class.clone()),
                confidence: rule.confidence,
                by: ClassifiedBy::Rule { index },
                reason: format!("rule {index} matched alert {}", alert.name()),
            };
        }
        let Some(model) = &self.model else {
            return Classification {
                class: None,
                confidence: 0.0,
                by: ClassifiedBy::Nothing,
                reason: format!(
                    "no rule matches alert {} and no model is configured",
                    alert.name()
                ),
            };
        };
        let by = ClassifiedBy::Model {
            model: model.model().to_string(),
        };
        match model.classify(alert, classes).await {
            ModelAnswer::Class { class, confidence } => Classification {
                reason: format!("the model chose {class} from {} classes", classes.len()),
                class: Some(class),
                confidence,
                by,
            },
            ModelAnswer::Unknown(reason) => Classification {
                class: None,
                confidence: 0.0,
                by,
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests;

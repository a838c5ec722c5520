//! The references between the configuration and the runbook manifests: rules and
//! `[runbooks] enabled` must name runbooks that exist, and a rule's runbook must be
//! enabled. Reading the manifests is the `runbook` module's; this only compares.

use super::{Config, ConfigError};
use crate::runbook::{ManifestError, Runbook};

impl Config {
    /// Every problem of `runbooks` (read from [`Config::runbooks_dir`]) as this file
    /// uses them: the manifests that could not be used, then each name a rule or
    /// `[runbooks] enabled` gives that is missing or would never run.
    pub fn runbook_errors(
        &self,
        runbooks: &[Runbook],
        manifest_errors: Vec<ManifestError>,
    ) -> Vec<ConfigError> {
        let mut errors: Vec<ConfigError> = manifest_errors
            .into_iter()
            .map(|error| ConfigError {
                path: error.file,
                line: None,
                message: error.message,
            })
            .collect();
        let exists = |name: &String| runbooks.iter().any(|runbook| &runbook.name == name);
        let dir = self.runbooks_dir.display();
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, name) in rule.runbooks.iter().enumerate() {
                if !exists(name) {
                    errors.push(ConfigError {
                        path: format!("rules[{i}].runbooks[{j}]"),
                        line: None,
                        message: format!(
                            "unknown runbook {name:?}; put runbooks/{name}.toml in [runbooks] dir ({dir})"
                        ),
                    });
                }
            }
        }
        // The default list (`diagnostics`) may name a runbook that is not there; only
        // a list someone wrote is held to the directory.
        if self.runbooks_enabled_listed {
            for (i, name) in self.runbooks_enabled.iter().enumerate() {
                if !exists(name) {
                    errors.push(ConfigError {
                        path: format!("runbooks.enabled[{i}]"),
                        line: None,
                        message: format!(
                            "unknown runbook {name:?}; put {name}.toml in [runbooks] dir ({dir}) or remove it from the list"
                        ),
                    });
                }
            }
        }
        // A rule naming a runbook that never runs would look like automation that is
        // not there.
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, name) in rule.runbooks.iter().enumerate() {
                if exists(name) && !self.runbooks_enabled.contains(name) {
                    errors.push(ConfigError {
                        path: format!("rules[{i}].runbooks[{j}]"),
                        line: None,
                        message: format!(
                            "runbook {name:?} is not in [runbooks] enabled, so it would never run; add it there"
                        ),
                    });
                }
            }
        }
        errors
    }
}

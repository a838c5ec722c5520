//! Reading the configuration: the file, then the runbook manifests it points at, then
//! the references between them (`load`, at start and in `check-config`); and reloading
//! it (SIGHUP and `POST /-/reload`): read again and swapped in whole, or refused with
//! every error while the running one stays.

use crate::config::{Config, ConfigError, ConfigErrors, SharedConfig};
use std::path::Path;
use std::sync::Arc;

/// Reads the configuration file and the runbooks of its `[runbooks] dir`, and checks
/// the one against the other; every error of both is reported together.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = Config::read(path)?;
    load_text(&text, &path.display().to_string())
}

/// [`load`] over configuration text already read; `file` names it in errors.
pub fn load_text(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let (mut config, mut errors) = Config::check(text);
    if let Some(config) = &mut config {
        let (runbooks, manifest_errors) = crate::runbook::load_dir(&config.runbooks_dir);
        errors.extend(config.runbook_errors(&runbooks, manifest_errors));
        config.runbooks = runbooks;
    }
    Config::finish(config, errors, text, file)
}

/// Reads the configuration file again and swaps it in whole, or keeps the running
/// one and returns every error. Listen address, storage, channels, rate limits and
/// the report's cron are read at start only; a reload that changes them says so.
pub fn reload(config: &SharedConfig, path: Option<&Path>) -> Result<String, ConfigErrors> {
    let Some(path) = path else {
        return Err(ConfigErrors {
            file: "(built-in)".into(),
            errors: vec![ConfigError {
                path: String::new(),
                line: None,
                message: "this instance was not started from a file".into(),
            }],
        });
    };
    let mut fresh = load(path)?;
    let running = config.load_full();
    let mut note = format!("reloaded {}", path.display());
    if fresh.listen != running.listen
        || fresh.storage_url != running.storage_url
        || fresh.client_timeout != running.client_timeout
    {
        note.push_str(
            "; server.listen, server.client_timeout and storage.url take effect at the next restart",
        );
    }
    // Console overrides live in the store, not the file: the mirror carries over.
    fresh.directory.stored = running.directory.stored.clone();
    // The socket stays where it is until a restart: judge exposure by it.
    fresh.listen = running.listen;
    if let Some(refusal) = fresh.exposure_refusal() {
        return Err(ConfigErrors {
            file: path.display().to_string(),
            errors: vec![ConfigError {
                path: String::new(),
                line: None,
                message: refusal,
            }],
        });
    }
    if fresh.tls.is_some() != running.tls.is_some() {
        note.push_str("; switching between HTTP and HTTPS takes effect at the next restart");
    }
    config.store(Arc::new(fresh));
    tracing::info!("{note}");
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbooks_are_read_after_the_file_and_checked_against_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fix.toml"), "command = [\"./fix.sh\"]\n").unwrap();
        std::fs::write(dir.path().join("broken.toml"), "command = 3\n").unwrap();
        let runbooks = format!("[runbooks]\ndir = \"{}\"\n", dir.path().display());
        let errors = load_text(
            &format!("{runbooks}enabled = [\"fxi\"]\n[[rules]]\nname = \"r\"\nmatch = ['check=\"x\"']\nrunbooks = [\"fix\", \"nope\"]\n[server]\nlisten = \"nowhere\"\n"),
            "t.toml",
        )
        .unwrap_err()
        .errors;
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        let broken = dir.path().join("broken.toml").display().to_string();
        assert_eq!(
            paths,
            [
                "server.listen",
                broken.as_str(),
                "rules[0].runbooks[1]",
                "runbooks.enabled[0]",
                "rules[0].runbooks[0]"
            ],
            "{errors:?}"
        );
        assert_eq!(errors[2].line, Some(7), "{errors:?}");
        assert!(
            errors[2]
                .message
                .contains("put runbooks/nope.toml in [runbooks] dir"),
            "{}",
            errors[2].message
        );
        std::fs::remove_file(dir.path().join("broken.toml")).unwrap();
        let config = load_text(&format!("{runbooks}enabled = [\"fix\"]\n"), "t.toml").unwrap();
        assert_eq!(config.runbooks.len(), 1);
        assert_eq!(config.runbooks[0].name, "fix");
    }

    #[test]
    fn the_shipped_default_config_and_runbooks_agree() {
        load_text(crate::config::DEFAULT_CONFIG, "tocsin.toml").unwrap();
    }
}

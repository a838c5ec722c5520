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
/// one and returns every error. Listen address, client timeout, storage, email and
/// SMS are read at start only (so are rate limits and the report's cron); a reload
/// that changes the first five names them.
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
    let at_start = [
        ("server.listen", fresh.listen != running.listen),
        (
            "server.client_timeout",
            fresh.client_timeout != running.client_timeout,
        ),
        ("storage.url", fresh.storage_url != running.storage_url),
        ("[email]", fresh.email != running.email),
        ("[sms]", fresh.sms != running.sms),
    ];
    let changed: Vec<&str> = at_start
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| *key)
        .collect();
    if !changed.is_empty() {
        note.push_str(&format!(
            "; {} changed and take{} effect at the next restart (the running values stay until then)",
            changed.join(", "),
            if changed.len() == 1 { "s" } else { "" }
        ));
    }
    // Console overrides live in the store, not the file: the mirror carries over.
    fresh.directory.stored = running.directory.stored.clone();
    // What is read at start stays as it runs until a restart, for every reader: the
    // socket (judge exposure by it), and the email and SMS senders, whose inbound
    // replies and message deadlines must agree with the running sender, not the file.
    fresh.listen = running.listen;
    fresh.client_timeout = running.client_timeout;
    fresh.storage_url = running.storage_url.clone();
    fresh.email = running.email.clone();
    fresh.sms = running.sms.clone();
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
    fn a_reload_names_the_start_only_keys_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tocsin.toml");
        let manifests = dir.path().join("runbooks");
        std::fs::create_dir(&manifests).unwrap();
        let runbooks = format!("[runbooks]\ndir = \"{}\"\n", manifests.display());
        std::fs::write(
            &file,
            format!(
                "{runbooks}[email]\ntransport = \"spool\"\nspool_dir = \"{}\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let config: SharedConfig = Arc::new(arc_swap::ArcSwap::from_pointee(load(&file).unwrap()));
        let note = reload(&config, Some(&file)).unwrap();
        assert!(!note.contains("restart"), "nothing changed: {note}");
        std::fs::write(
            &file,
            format!("{runbooks}[email]\ntransport = \"smtp\"\nhost = \"mail.example.net\"\n"),
        )
        .unwrap();
        let note = reload(&config, Some(&file)).unwrap();
        assert!(
            note.contains("[email] changed and takes effect at the next restart"),
            "{note}"
        );
        // Every reader keeps the running section, as the note says.
        assert!(
            matches!(
                config.load().email.as_ref().map(|email| &email.transport),
                Some(crate::config::channels::EmailTransport::Spool { .. })
            ),
            "the running [email] was replaced"
        );
    }

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

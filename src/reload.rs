//! Reloading the configuration (SIGHUP and `POST /-/reload`): the file is read again
//! and swapped in whole, or refused with every error while the running one stays.

use crate::config::{Config, ConfigError, ConfigErrors, SharedConfig};
use std::path::Path;
use std::sync::Arc;

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
    let mut fresh = Config::load(path)?;
    let running = config.load_full();
    let mut note = format!("reloaded {}", path.display());
    if fresh.listen != running.listen || fresh.storage_url != running.storage_url {
        note.push_str("; server.listen and storage.url take effect at the next restart");
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

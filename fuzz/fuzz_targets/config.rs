//! Any configuration file: check-config reports errors with a path and line, and
//! never panics (TOML parsing, ${VAR} interpolation, durations, crons, matchers,
//! link templates, every section's validation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = tocsin::config::Config::parse(text, "fuzz.toml");
});

//! Any body the prtg route might receive: the parser returns alerts or an error, and
//! never panics, hangs or allocates without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::ingest::{SourceKind, parse};

fuzz_target!(|body: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_764_385_200, 0).unwrap_or_default();
    let _ = parse(SourceKind::Prtg, body, now);
});

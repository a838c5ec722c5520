//! The tidy checks that keep the layers: a core module (the domain: alerts, incidents,
//! escalation, on-call…) names no outer module (configuration, storage, HTTP, delivery,
//! wiring), and every source file opens with its `//!` header. They read `src/`, the
//! way rust-analyzer's `tidy.rs` keeps its invariants.

use std::fs;
use std::path::{Path, PathBuf};

/// Pure domain modules: they depend on each other, `clock`, and crates only.
const CORE: &[&str] = &[
    "alert",
    "change",
    "dedup",
    "escalation",
    "flapping",
    "incident",
    "inhibit",
    "name",
    "oncall",
    "page",
    "rules",
    "silence",
    "sla",
];

/// Everything a core module must not name: the edges (I/O, configuration, wiring) and
/// the read models built on the core.
const OUTER: &[&str] = &[
    "api",
    "app",
    "cli",
    "config",
    "ingest",
    "kpi",
    "links",
    "metrics",
    "noise",
    "notify",
    "pipeline",
    "reload",
    "report",
    "runbook",
    "scheduler",
    "serde_text",
    "server",
    "simulate",
    "store",
    "supervise",
    "ticket",
    "tls",
    "webhook_signature",
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to and how deep the file's module is
/// (`src/sla.rs` and `src/incident/mod.rs`: 1, `src/incident/links.rs`: 2).
fn module_of(relative: &Path) -> (String, usize) {
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let top = parts[0].trim_end_matches(".rs").to_string();
    let depth = match parts.last().map(String::as_str) {
        Some("mod.rs") => parts.len() - 1,
        _ => parts.len(),
    };
    (top, depth)
}

/// The text with comments, string and char literals blanked, so only code is matched.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |at| at + 2);
            i += end;
        } else if let Some(raw) = rest.strip_prefix("r#\"") {
            let end = raw.find("\"#").map_or(rest.len(), |at| at + 5);
            out.push_str("\"\"");
            i += end;
        } else if let Some(len) = char_literal(rest) {
            out.push_str("' '");
            i += len;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a char literal (`'"'`, `'\\''`) at the start, not a lifetime.
fn char_literal(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('\'')?;
    if let Some(escaped) = body.strip_prefix('\\') {
        return escaped.find('\'').map(|at| at + 3);
    }
    let c = body.chars().next()?;
    body[c.len_utf8()..]
        .starts_with('\'')
        .then_some(c.len_utf8() + 2)
}

fn ident_at(code: &str) -> &str {
    let end = code
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(code.len());
    &code[..end]
}

/// The first names of a `use` group: `a, b::c, d::{e, f}` → a, b, d.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut item) = (0, String::new());
    for c in group.chars().chain([',']) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                let head = head.split_whitespace().next().unwrap_or("");
                if !head.is_empty() {
                    heads.push(head.to_string());
                }
                item.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(c);
        }
    }
    heads
}

/// The names after a path prefix: one module, or every head of a `{…}` group.
fn names_after(rest: &str) -> Vec<String> {
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let end = group
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(group.len(), |(at, _)| at);
        group_heads(&group[..end])
    } else {
        vec![ident_at(rest).to_string()]
    }
}

/// Every top-level module the code names: `crate::x`, `use crate::{x, y::z}`, and
/// `super::` chains that climb out of the file's top-level module.
fn named_modules(code: &str, file_depth: usize) -> Vec<String> {
    let mut names = Vec::new();
    // Inline `mod x { … }` blocks deepen `super::`; track them with the braces.
    let mut braces: Vec<bool> = Vec::new();
    let mut i = 0;
    let bytes = code.as_bytes();
    while i < bytes.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && rest.starts_with("mod ") {
            let after = rest[4..].trim_start();
            let name = ident_at(after);
            if after[name.len()..].trim_start().starts_with('{') {
                let open = i + rest.find('{').unwrap();
                braces.push(true);
                i = open + 1;
                continue;
            }
        }
        if boundary && rest.starts_with("crate::") {
            names.extend(names_after(&rest[7..]));
        } else if boundary && rest.starts_with("super::") {
            let mut climbed = 0;
            let mut tail = rest;
            while let Some(next) = tail.strip_prefix("super::") {
                climbed += 1;
                tail = next;
            }
            let depth = file_depth + braces.iter().filter(|inline| **inline).count();
            if climbed >= depth {
                names.extend(names_after(tail));
            }
            i += rest.len() - tail.len();
            continue;
        }
        match bytes[i] {
            b'{' => braces.push(false),
            b'}' => {
                braces.pop();
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// `file: names outer module` lines for every core file that names one.
fn layer_violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    source_files(root, &mut files);
    let mut found = Vec::new();
    for path in files {
        let relative = path.strip_prefix(root).unwrap();
        let (module, depth) = module_of(relative);
        if !CORE.contains(&module.as_str()) {
            continue;
        }
        let code = code_only(&fs::read_to_string(&path).unwrap());
        let mut named = named_modules(&code, depth);
        named.sort();
        named.dedup();
        for outer in named.iter().filter(|name| OUTER.contains(&name.as_str())) {
            found.push(format!(
                "src/{}: core module `{module}` names outer module `{outer}`",
                relative.display()
            ));
        }
    }
    found
}

#[test]
fn core_modules_name_no_outer_module() {
    let violations = layer_violations(&src());
    assert!(
        violations.is_empty(),
        "the core (ARCHITECTURE.md, \"Layers\") must not depend on the edges; move the \
         type into the core module that owns it, or do the work in the outer caller:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_source_file_starts_with_its_header() {
    let mut files = Vec::new();
    source_files(&src(), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "every file starts with a `//!` header saying what it owns; add one to:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_check_sees_every_form_of_naming_a_module() {
    let code = code_only(
        "use crate::{alert::Alert, config::{Config, X}, store};\n\
         // crate::api in a comment is no dependency\n\
         let s = \"crate::notify\"; let q = '\"'; let t: &'static str = \"\";\n\
         fn f() { super::ticket::x(); }\n\
         mod tests { use super::*; use super::super::report; }\n",
    );
    let mut named = named_modules(&code, 1);
    named.sort();
    assert_eq!(
        named,
        ["alert", "config", "report", "store", "ticket"],
        "`super::` from a top-level file names a crate module; inside `mod tests` it takes two"
    );
    assert!(named_modules("use super::Writer;", 2).is_empty());
}

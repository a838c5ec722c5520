//! Serde's and axum's refusal texts in the words of whoever sent the document: they
//! name Rust types ("expected struct GenericAlert with 9 elements", "expected u64",
//! "untagged enum LinkField") that mean nothing to a sender or an operator reading
//! the 400 or `check-config`'s list.

use regex::Regex;
use std::sync::LazyLock;

/// Pattern and replacement, applied in order.
const REWRITES: &[(&str, &str)] = &[
    (
        r"Failed to deserialize the JSON body into the target type: ",
        "",
    ),
    (
        r"Failed to deserialize query string: duplicate field `(\w+)`",
        "the query string gives `$1` more than once; give it once",
    ),
    (r"Failed to deserialize query string: ", "query string: "),
    // The standard library's words for a number that is not one (query values).
    (
        r"(?:invalid digit found in string|cannot parse integer from empty string)",
        "is not a whole number; give digits only",
    ),
    (
        r"number too (?:large|small) to fit in target type",
        "is out of range; give a smaller whole number",
    ),
    (
        r"Failed to buffer the request body: length limit exceeded",
        "the body is larger than server.max_body_bytes; send a smaller one",
    ),
    (
        r"Failed to parse the request body as JSON: ",
        "the body is not JSON: ",
    ),
    (
        r"Invalid URL: Invalid UTF-8 in `(\w+)`",
        "the path's {$1} is not valid UTF-8; percent-encode UTF-8 text",
    ),
    (
        r"data did not match any variant of untagged enum \w+",
        "matches none of the shapes this field takes",
    ),
    (
        r"expected struct \w+(?: with \d+ elements?)?",
        "expected a JSON object",
    ),
    (
        r"expected enum \w+",
        "expected one of the documented values",
    ),
    (r"expected u8\b", "expected a whole number from 0 to 255"),
    (r"expected u16\b", "expected a whole number from 0 to 65535"),
    (
        r"expected u32\b",
        "expected a whole number from 0 to 4294967295",
    ),
    (
        r"expected (?:u64|u128|usize)\b",
        "expected a whole number, 0 or more",
    ),
    (
        r"expected (?:i8|i16|i32|i64|i128|isize)\b",
        "expected an integer",
    ),
    (r"expected (?:f32|f64)\b", "expected a number"),
    (r" as [iu](?:8|16|32|64|128|size)\b", ""),
    // toml repeats the key the error's path already names, on a line of its own.
    (r"\s*\nin `[^`]*`\s*$", ""),
];

static COMPILED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    REWRITES
        .iter()
        .filter_map(|(pattern, with)| Regex::new(pattern).ok().map(|regex| (regex, *with)))
        .collect()
});

/// `message` without the Rust type names serde and axum put in it.
pub fn readable(message: &str) -> String {
    COMPILED
        .iter()
        .fold(message.to_string(), |text, (regex, with)| {
            regex.replace_all(&text, *with).into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rewrite_compiles() {
        assert_eq!(COMPILED.len(), REWRITES.len());
    }

    #[test]
    fn type_names_become_what_to_send() {
        for (said, meant) in [
            (
                "invalid type: null, expected struct GenericAlert at line 1 column 4",
                "invalid type: null, expected a JSON object at line 1 column 4",
            ),
            (
                "invalid length 0, expected struct Webhook with 9 elements",
                "invalid length 0, expected a JSON object",
            ),
            (
                "incident_id: invalid type: string \"1\", expected i64",
                "incident_id: invalid type: string \"1\", expected an integer",
            ),
            (
                "Failed to buffer the request body: length limit exceeded",
                "the body is larger than server.max_body_bytes; send a smaller one",
            ),
            (
                "invalid value: integer `-1`, expected u64",
                "invalid value: integer `-1`, expected a whole number, 0 or more",
            ),
            (
                "invalid value: integer `70000`, expected u16",
                "invalid value: integer `70000`, expected a whole number from 0 to 65535",
            ),
            (
                "Failed to deserialize query string: duplicate field `limit`",
                "the query string gives `limit` more than once; give it once",
            ),
            (
                "Failed to deserialize the JSON body into the target type: links[0]: data did not match any variant of untagged enum Link",
                "links[0]: matches none of the shapes this field takes",
            ),
            (
                "Failed to deserialize query string: before: invalid digit found in string",
                "query string: before: is not a whole number; give digits only",
            ),
            (
                "unknown field `x`, expected `a` or `b`",
                "unknown field `x`, expected `a` or `b`",
            ),
        ] {
            assert_eq!(readable(said), meant);
        }
    }
}

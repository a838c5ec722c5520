//! Flat key/value payloads (Nagios, Icinga, PRTG, Datadog): a form body or a JSON
//! object read into one case-insensitive map, with the sender prefixes stripped and
//! unexpanded template placeholders treated as empty.

use super::IngestError;
use serde_json::Value;
use std::collections::HashMap;

/// The pairs of a form body. Bytes that are not UTF-8 are read as ISO-8859-1, as
/// older Nagios and PRTG hosts write accented names: every byte stays a character of
/// its own, so `hé` and `hè` stay two hosts (replacing the bytes would make both `h�`
/// and merge their outages into one alert). PRTG may also send raw bytes it did not
/// URL-encode; they are read the same way.
fn form_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    body.split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|byte| *byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            (form_text(key), form_text(value))
        })
}

/// One form-encoded name or value: `+` is a space, then percent-decoded; the UTF-8
/// in it is kept, and each byte that is not UTF-8 is read as ISO-8859-1.
fn form_text(encoded: &[u8]) -> String {
    let spaced: Vec<u8> = encoded
        .iter()
        .map(|byte| if *byte == b'+' { b' ' } else { *byte })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.extend(chunk.invalid().iter().copied().map(char::from));
    }
    text
}

/// Lower-cased keys to values.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    values: HashMap<String, String>,
}

impl Fields {
    /// Reads a JSON object or, when the body does not start with `{`, a form. Nested
    /// JSON objects are flattened with dots (`org.id`); `prefixes` are stripped from keys.
    pub fn read(body: &[u8], prefixes: &[&str]) -> Result<Self, IngestError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        let mut fields = Self::default();
        match first {
            None => {
                return Err(IngestError::body(
                    "the body is empty; send a form or a JSON object",
                ));
            }
            Some(b'{') => {
                let object: serde_json::Map<String, Value> = super::from_json(body)?;
                fields.flatten("", &Value::Object(object), prefixes);
            }
            Some(b'[') => {
                return Err(IngestError::body(
                    "send one notification per request, as a form or a JSON object",
                ));
            }
            Some(_) => {
                for (key, value) in form_pairs(body) {
                    fields.insert(&key, value, prefixes);
                }
                if fields.values.is_empty() {
                    return Err(IngestError::body("the form holds no field"));
                }
            }
        }
        Ok(fields)
    }

    fn flatten(&mut self, prefix: &str, value: &Value, strip: &[&str]) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let key = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    self.flatten(&key, inner, strip);
                }
            }
            Value::String(text) => self.insert(prefix, text.clone(), strip),
            Value::Null => self.insert(prefix, String::new(), strip),
            Value::Array(items) => {
                let joined = items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                self.insert(prefix, joined, strip);
            }
            other => self.insert(prefix, other.to_string(), strip),
        }
    }

    fn insert(&mut self, key: &str, value: String, strip: &[&str]) {
        let mut key = key.trim().to_ascii_lowercase();
        for prefix in strip {
            if let Some(rest) = key.strip_prefix(prefix).filter(|rest| !rest.is_empty()) {
                key = rest.to_string();
                break;
            }
        }
        self.values.insert(key, value);
    }

    /// The first non-empty value among `names` (lower-case), placeholders excluded.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .filter_map(|name| self.values.get(*name))
            .map(|value| value.trim())
            .find(|value| !value.is_empty() && !is_placeholder(value))
    }

    /// Every field, for `details`; credentials named in `secret` are left out.
    pub fn details(&self, secret: &[&str]) -> Value {
        let mut keys: Vec<&String> = self
            .values
            .keys()
            .filter(|key| !secret.contains(&key.as_str()))
            .collect();
        keys.sort();
        Value::Object(
            keys.into_iter()
                .map(|key| (key.clone(), Value::from(self.values[key].clone())))
                .collect(),
        )
    }
}

/// `$HOSTNAME$` (Nagios), `$ALERT_ID` (Datadog) or `%sensorid` (PRTG) left unexpanded.
fn is_placeholder(value: &str) -> bool {
    let upper_snake = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    if let Some(inner) = value.strip_prefix('$') {
        return upper_snake(inner.strip_suffix('$').unwrap_or(inner));
    }
    if let Some(inner) = value.strip_prefix('%') {
        return !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == '%');
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_that_is_not_utf8_keeps_every_byte_apart() {
        let read = |body: &[u8]| {
            Fields::read(body, &[])
                .unwrap()
                .get(&["hostname"])
                .unwrap()
                .to_string()
        };
        assert_eq!(read(b"HOSTNAME=h%E9&x=1"), "h\u{e9}");
        assert_eq!(read(b"HOSTNAME=h%E8"), "h\u{e8}");
        assert_eq!(read(b"HOSTNAME=h\xe9"), "h\u{e9}", "raw, not URL-encoded");
        assert_eq!(read(b"HOSTNAME=h%C3%A9"), "h\u{e9}", "UTF-8 stays UTF-8");
        assert_eq!(
            read(b"HOSTNAME=Z%C3%BCrich+h%E9"),
            "Z\u{fc}rich h\u{e9}",
            "only the stray byte is read as ISO-8859-1"
        );
        assert_eq!(read(b"HOSTNAME=db+01%2B%26=x"), "db 01+&=x");
    }

    #[test]
    fn forms_and_json_read_the_same_way() {
        let form = Fields::read(
            b"NAGIOS_HOSTNAME=db-01&SERVICEDESC=&x=%24HOSTSTATE%24",
            &["nagios_", "icinga_"],
        )
        .unwrap();
        assert_eq!(form.get(&["hostname"]), Some("db-01"));
        assert_eq!(form.get(&["servicedesc"]), None, "empty counts as absent");
        assert_eq!(
            form.get(&["x"]),
            None,
            "an unexpanded macro counts as absent"
        );
        let json =
            Fields::read(br#"{"org": {"id": "1"}, "n": 2, "tags": ["a", "b"]}"#, &[]).unwrap();
        assert_eq!(json.get(&["org.id"]), Some("1"));
        assert_eq!(json.get(&["n"]), Some("2"));
        assert_eq!(json.get(&["tags"]), Some("a\nb"));
        assert!(Fields::read(b"  ", &[]).is_err());
        assert!(Fields::read(b"{\"a\":", &[]).is_err());
    }

    #[test]
    fn placeholders() {
        assert!(is_placeholder("$HOSTNAME$"));
        assert!(is_placeholder("$ALERT_ID"));
        assert!(is_placeholder("%sensorid"));
        assert!(!is_placeholder("$5 off"));
        assert!(!is_placeholder("%"));
    }
}

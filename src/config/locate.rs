//! Finds the line of a key path (`escalation_policies[0].tiers[1].after`) in the
//! original text, so every configuration error can point at its line.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Parses the path syntax used in error messages: `a.b[2].c`.
pub fn parse_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            segments.push(Segment::Key(key.to_string()));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(index) = index.parse() {
                segments.push(Segment::Index(index));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    segments
}

/// The 1-based line of the deepest part of `path` present in `text`.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for segment in parse_path(path) {
        let next = match (&segment, table, value.map(Spanned::get_ref)) {
            (Segment::Key(key), Some(table), _) => table
                .iter()
                .find(|(name, _)| name.get_ref().as_ref() == key.as_str())
                .map(|(_, value)| value),
            (Segment::Index(index), _, Some(DeValue::Array(array))) => array.get(*index),
            _ => None,
        };
        let Some(next) = next else { break };
        span = Some(next.span());
        value = Some(next);
        table = match next.get_ref() {
            DeValue::Table(inner) => Some(inner),
            _ => None,
        };
    }
    // Arrays of tables have no span of their own in some forms; fall back to the
    // nearest enclosing one that does.
    let start = span.filter(|span| span.start < text.len())?.start;
    Some(text[..start].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_array_items() {
        let text = "[server]\nlisten = \"x\"\n\n[[escalation_policies]]\nname = \"d\"\ntiers = [\n  { level = \"L1\", targets = [\"user:a\"], after = \"0s\" },\n  { level = \"L2\", targets = [\"user:ghost\"], after = \"10 minutes\" },\n]\n";
        assert_eq!(line_of(text, "server.listen"), Some(2));
        assert_eq!(line_of(text, "escalation_policies[0].name"), Some(5));
        assert_eq!(
            line_of(text, "escalation_policies[0].tiers[1].after"),
            Some(8)
        );
        assert_eq!(
            line_of(text, "escalation_policies[0].tiers[1].targets[0]"),
            Some(8)
        );
    }
}

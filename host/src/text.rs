//! Untrusted text on its way to a person.
//!
//! Threat model: alert labels and annotations, plugin summaries, log lines,
//! captured output and error messages are written by whoever controls an
//! alert rule, a plugin or a model. Shown raw in a terminal, a chat message
//! or a web page, a Unicode bidirectional override (U+202E) or isolate can
//! make `restart deployment/prod/api` read as something else, zero-width
//! characters make two different names look alike (the "Trojan Source"
//! family of attacks), and control characters move a terminal's cursor or
//! forge log lines.
//!
//! One list of such characters ([`is_deceptive`]) and two ways out:
//! - [`visible`] for text (tables, one-line summaries, the host's log): each
//!   character becomes a visible escape such as `\u{202e}`;
//! - [`to_json`] and [`to_json_pretty`] for JSON (the API, the CLI's JSON,
//!   notifier payloads): the same characters are written as JSON escapes
//!   (`\u202e`), so a JSON parser reads back exactly the original string
//!   while the bytes on screen never contain the character itself.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// Whether `c` must never reach a person's screen raw: control characters
/// (C0, DEL, C1), bidirectional formatting characters, zero-width and other
/// invisible characters, and the Unicode line and paragraph separators.
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, soft hyphen, Mongolian vowel separator.
            '\u{061C}' | '\u{00AD}' | '\u{180E}'
            // Zero-width space, non-joiner, joiner; left-to-right and right-to-left marks.
            | '\u{200B}'..='\u{200F}'
            // Line and paragraph separators; embeddings and overrides (LRE, RLE, PDF, LRO, RLO).
            | '\u{2028}'..='\u{202E}'
            // Word joiner, invisible operators, isolates (LRI, RLI, FSI, PDI), deprecated formatting.
            | '\u{2060}'..='\u{206F}'
            // Byte order mark / zero-width no-break space; interlinear annotations.
            | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every [`is_deceptive`] character replaced by a visible
/// escape (`\n` for a newline, `\u{202e}` for the rest). Borrows when there
/// is nothing to replace.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_deceptive) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_deceptive(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`visible`] for text of several lines: newlines stay (they are the
/// text's own structure, e.g. a table's rows); everything else deceptive is
/// escaped. Use it on a rendered table or report as a whole.
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_deceptive(c)) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<Cow<'_, str>> = text.split('\n').map(visible).collect();
    Cow::Owned(lines.join("\n"))
}

/// `value` as compact JSON in which no string holds a deceptive character raw.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    write_json(value, CompactFormatter)
}

/// `value` as indented JSON in which no string holds a deceptive character raw.
pub fn to_json_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    write_json(value, PrettyFormatter::new())
}

/// `value` as compact JSON bytes (see [`to_json`]).
pub fn to_json_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, Escaping(CompactFormatter));
    value.serialize(&mut serializer)?;
    Ok(out)
}

fn write_json<T: Serialize + ?Sized, F: Formatter>(
    value: &T,
    formatter: F,
) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Escaping(formatter));
    value.serialize(&mut serializer)?;
    // serde_json writes only UTF-8, and the escapes are ASCII.
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// A JSON formatter that escapes deceptive characters inside strings and
/// otherwise formats exactly like the formatter it wraps.
struct Escaping<F>(F);

impl<F: Formatter> Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if is_deceptive(c) {
                self.0.write_string_fragment(writer, &fragment[start..at])?;
                // Every deceptive character is in the Basic Multilingual
                // Plane, so one `\uXXXX` escape is the whole character.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = at + c.len_utf8();
            }
        }
        self.0.write_string_fragment(writer, &fragment[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        self.0.write_char_escape(writer, escape)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOSTILE: &str =
        "restart \u{202E}dorp/tnemyolped\u{202C} ok\u{200B}\u{2066}x\u{2069}\u{9B}31m\n";

    #[test]
    fn visible_text_shows_every_override_isolate_and_invisible_character_as_an_escape() {
        let shown = visible(HOSTILE);
        assert_eq!(
            shown,
            "restart \\u{202e}dorp/tnemyolped\\u{202c} ok\\u{200b}\\u{2066}x\\u{2069}\\u{009b}31m\\n"
        );
        assert!(!shown.chars().any(is_deceptive), "{shown}");
    }

    #[test]
    fn a_rendered_table_keeps_its_rows_and_loses_its_overrides() {
        let table = format!("name  summary\nrestart  {HOSTILE}tail\n");
        let shown = visible_lines(&table);
        assert_eq!(shown.lines().count(), 3, "{shown}");
        assert!(
            !shown.chars().any(|c| c != '\n' && is_deceptive(c)),
            "{shown}"
        );
        assert!(shown.contains("\\u{202e}"), "{shown}");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            visible("deployment/prod/api é 日本"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_escapes_deceptive_characters_and_reads_back_exactly() {
        let value = json!({ "summary": HOSTILE, HOSTILE: [HOSTILE] });
        for text in [to_json(&value).unwrap(), to_json_pretty(&value).unwrap()] {
            assert!(
                !text.chars().any(|c| is_deceptive(c) && c != '\n'),
                "{text}"
            );
            assert!(text.contains("\\u202e"), "{text}");
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value, "lossless");
        }
        assert_eq!(
            to_json_vec(&value).unwrap(),
            to_json(&value).unwrap().into_bytes()
        );
    }

    #[test]
    fn json_of_ordinary_values_is_what_serde_json_writes() {
        let value = json!({ "a": [1, 2.5, null, true], "b": { "c": "dé\"\\" } });
        assert_eq!(
            to_json(&value).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
        assert_eq!(
            to_json_pretty(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }
}

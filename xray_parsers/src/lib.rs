//! Parsers for the JSON output of the ProjectDiscovery scanners (naabu, httpx,
//! tlsx, nuclei) and for nmap's XML ([`nmap`]) into contract observations, and
//! the SPF / DMARC / DKIM assessment of DNS TXT records ([`email`]).
//!
//! They are pure: text in, observations plus per-record errors out. A bad
//! record never aborts a parse; it becomes an [`ErrorEntry`] with
//! `kind = "parse_error"` and a `line N:` message so that one truncated line
//! (a tool killed by a timeout, two writers on one file) costs one record, not
//! the scan. The field names and their history are documented in
//! `fixtures/tool-output/FIELDS.md` of the shared specs.

pub mod cert;
pub mod email;
pub mod httpx;
pub mod naabu;
pub mod nmap;
pub mod nuclei;
pub mod tlsx;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use xray_engine::contract::{ErrorEntry, Timestamp};

pub use httpx::{parse_httpx, HttpxRecord};
pub use naabu::{parse_naabu, NaabuHit};
pub use nmap::{parse_nmap, NmapObservations};
pub use nuclei::{nuclei_hits, parse_nuclei, NucleiHit};
pub use tlsx::{parse_tlsx, TlsxRecord};

/// What a parser returns: the records it understood and one error per record
/// it did not.
#[derive(Debug, Clone)]
pub struct ToolParse<T> {
    pub items: Vec<T>,
    pub errors: Vec<ErrorEntry>,
    /// Non-JSON lines that were skipped without an error (log lines, banners,
    /// plain-text output). Callers may want to warn when this is non-zero and
    /// `items` is empty: the tool was probably run without `-json`.
    pub ignored_lines: usize,
}

impl<T> Default for ToolParse<T> {
    fn default() -> Self {
        ToolParse {
            items: Vec::new(),
            errors: Vec::new(),
            ignored_lines: 0,
        }
    }
}

impl<T> ToolParse<T> {
    /// Puts errors in input order; stream-level and record-level errors are
    /// found in two passes.
    pub(crate) fn sort_errors(&mut self) {
        self.errors.sort_by_key(|e| {
            e.details
                .as_ref()
                .and_then(|d| d.get("line"))
                .and_then(serde_json::Value::as_u64)
        });
    }
}

/// One JSON object read from tool output, with the line it started on.
#[derive(Debug, Clone)]
pub(crate) struct JsonRecord {
    pub line: usize,
    pub object: Map<String, Value>,
}

/// A docs/contract.md §P-8 error for a record the parser could not use.
pub fn parse_error(tool: &str, line: usize, message: impl std::fmt::Display) -> ErrorEntry {
    ErrorEntry {
        scope: Some("tool".into()),
        tool: Some(tool.into()),
        message: Some(format!("line {line}: {message}")),
        kind: Some("parse_error".into()),
        details: Some(json!({ "line": line })),
    }
}

/// Splits tool output into JSON objects.
///
/// The input is a stream of concatenated JSON values, not strictly one per
/// line: JSONL, pretty-printed objects (`jq .` output, test fixtures) and JSON
/// array exports (`nuclei -je`) all occur. Top-level arrays are flattened.
/// Lines that do not start a JSON value are log or banner lines; they are
/// skipped and counted unless they look like broken JSON.
pub(crate) fn read_json_records(text: &str, tool: &str) -> ToolParse<JsonRecord> {
    let mut out = ToolParse::default();
    let bytes = text.as_bytes();
    let mut pos = 0usize;
    let mut line = 1usize;
    while pos < bytes.len() {
        // Skip blank space between values, keeping the line count.
        let c = bytes[pos];
        if c.is_ascii_whitespace() || c == b',' {
            if c == b'\n' {
                line += 1;
            }
            pos += 1;
            continue;
        }
        if text[pos..].starts_with('\u{feff}') {
            pos += '\u{feff}'.len_utf8();
            continue;
        }
        let line_end = text[pos..].find('\n').map_or(bytes.len(), |i| pos + i);
        let current = &text[pos..line_end];
        let starts_value = c == b'{' || (c == b'[' && !is_log_line(current));
        if !starts_value {
            if looks_like_json(current) {
                out.errors
                    .push(parse_error(tool, line, format!("not JSON: {}", excerpt(current))));
            } else {
                out.ignored_lines += usize::from(!is_banner_line(current));
            }
            pos = line_end;
            continue;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let consumed = stream.byte_offset();
                push_value(&mut out, tool, line, value);
                line += text[pos..pos + consumed].matches('\n').count();
                pos += consumed;
            }
            Some(Err(e)) => {
                out.errors
                    .push(parse_error(tool, line, format!("invalid JSON: {}", serde_message(&e))));
                // Resume at the next line that can start a record at the same
                // or lower indentation: the rest of a broken pretty-printed
                // object is skipped silently, and a truncated JSONL line costs
                // only itself.
                let indent = pos - text[..pos].rfind('\n').map_or(0, |i| i + 1);
                let (next_pos, next_line) = resync(text, line_end, line, indent);
                pos = next_pos;
                line = next_line;
            }
            None => break,
        }
    }
    out
}

fn push_value(out: &mut ToolParse<JsonRecord>, tool: &str, line: usize, value: Value) {
    match value {
        Value::Object(object) => out.items.push(JsonRecord { line, object }),
        Value::Array(items) => {
            for item in items {
                push_value(out, tool, line, item);
            }
        }
        other => out.errors.push(parse_error(
            tool,
            line,
            format!("expected a JSON object, got {}", excerpt(&other.to_string())),
        )),
    }
}

fn resync(text: &str, mut pos: usize, mut line: usize, indent: usize) -> (usize, usize) {
    while pos < text.len() {
        // `pos` is at a '\n'.
        pos += 1;
        line += 1;
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let l = &text[pos..end];
        let trimmed = l.trim_start();
        let this_indent = l.len() - trimmed.len();
        if this_indent <= indent && (trimmed.starts_with('{') || (trimmed.starts_with('[') && !is_log_line(trimmed))) {
            return (pos + this_indent, line);
        }
        pos = end;
    }
    (text.len(), line)
}

/// serde_json's message without its " at line L column C" suffix, which is
/// relative to the slice it was given and would only mislead.
fn serde_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    }
}

/// `[INF] ...`, `[WRN] ...`: ProjectDiscovery's gologger prefixes.
fn is_log_line(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix('[') else {
        return false;
    };
    let Some(end) = rest.find(']') else { return false };
    let tag = &rest[..end];
    (3..=7).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_uppercase())
}

/// A line that a person would read as JSON gone wrong rather than as a log line.
fn looks_like_json(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('"') || t.starts_with('}') || t.starts_with(']') || t.contains("\":")
}

/// The ASCII-art banner, its URL and disclaimer, and gologger lines.
fn is_banner_line(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || is_log_line(t) || t == "projectdiscovery.io" {
        return true;
    }
    if t.starts_with("Use with caution") || t.starts_with("Developers assume no liability") {
        return true;
    }
    // Art lines are punctuation only, save a trailing version such as "v3.1.0".
    t.split_whitespace()
        .filter(|w| !(w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit())))
        .all(|w| !w.chars().any(|c| c.is_ascii_alphanumeric()))
}

// ---- shared field helpers -------------------------------------------------

/// The first present key among `keys` (for dashed/underscored/camel spellings).
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
}

pub(crate) fn str_field(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    match field(obj, keys)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

pub(crate) fn bool_field(obj: &Map<String, Value>, keys: &[&str]) -> Option<bool> {
    match field(obj, keys)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A list of strings given as a JSON array or as one comma-separated string
/// (nuclei `info.tags` was a string in older templates).
pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// A TCP/UDP port given as a number or a string (httpx, tlsx and nuclei print
/// strings). `Ok(None)` for a missing or empty value, `Err` for a bad one.
pub(crate) fn port_value(v: Option<&Value>) -> Result<Option<u16>, String> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("port {n} is not a port number"))?,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("port {s:?} is not a port number"))?,
        Some(other) => return Err(format!("port has unexpected type: {other}")),
    };
    u16::try_from(n)
        .map(Some)
        .map_err(|_| format!("port {n} is out of range"))
}

/// An RFC 3339 timestamp with any offset, as the contract's UTC `Z` form
/// (docs/contract.md §P-12). Tools print local offsets (`-07:00`, `+05:30`).
pub fn utc_timestamp(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| Timestamp(d.with_timezone(&Utc)))
}

/// A Go `time.Duration` string ("221.605004ms", "1.412761315s", "1m2.5s",
/// "850µs") in milliseconds.
pub fn go_duration_ms(s: &str) -> Option<f64> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" | "μs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Is this string an IPv4 or IPv6 address?
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_pretty_and_arrays_are_all_read() {
        let text = "{\"a\":1}\n{\n  \"b\": 2\n}\n[{\"c\":3},{\"d\":4}]\n";
        let p = read_json_records(text, "t");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let lines: Vec<usize> = p.items.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 2, 5, 5]);
    }

    #[test]
    fn truncated_line_costs_only_itself() {
        let text = "{\"a\":1}\n{\"b\":\n{\"c\":3}\n{\"d\":4}\n";
        let p = read_json_records(text, "naabu");
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.errors.len(), 1);
        let msg = p.errors[0].message.clone().unwrap_or_default();
        assert!(msg.starts_with("line 2: invalid JSON"), "{msg}");
        assert_eq!(p.items[1].line, 3);
        assert_eq!(p.items[2].line, 4);
    }

    #[test]
    fn broken_pretty_object_is_one_error() {
        let text = "{\n  \"a\": 1,\n  \"b\": \n}\n{\n  \"c\": 1\n}\n";
        let p = read_json_records(text, "t");
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].line, 5);
    }

    #[test]
    fn banners_and_log_lines_are_skipped_silently() {
        let text = r#"
                  __
  ___  ___  ___ _/ /  __ __
 / _ \/ _ \/ _ \/ _ \/ // /
/_//_/\_,_/\_,_/_.__/\_,_/   v2.3.1

		projectdiscovery.io

[INF] Current naabu version 2.3.1 (latest)
[WRN] UI Dashboard is disabled
{"ip":"192.0.2.1","port":22}
"#;
        let p = read_json_records(text, "naabu");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.ignored_lines, 0);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].line, 11);
    }

    #[test]
    fn plain_text_is_counted_and_broken_json_is_reported() {
        let text = "192.0.2.1:80\n  \"port\": 80,\n{\"ip\":\"192.0.2.1\"}\n";
        let p = read_json_records(text, "naabu");
        assert_eq!(p.ignored_lines, 1);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].message.as_deref(), Some("line 2: not JSON: \"port\": 80,"));
        assert_eq!(p.errors[0].kind.as_deref(), Some("parse_error"));
        assert_eq!(p.errors[0].scope.as_deref(), Some("tool"));
        assert_eq!(p.errors[0].tool.as_deref(), Some("naabu"));
        assert_eq!(p.items.len(), 1);
    }

    #[test]
    fn scalars_are_not_records() {
        let p = read_json_records("42\n{\"a\":1}\n", "t");
        // "42" does not start a value, so it is plain text; a scalar inside an
        // array is an error.
        assert_eq!(p.ignored_lines, 1);
        let p = read_json_records("[1]\n", "t");
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_ms("221.605004ms"), Some(221.605004));
        assert!((go_duration_ms("1.412761315s").unwrap() - 1412.761315).abs() < 1e-9);
        assert_eq!(go_duration_ms("1m2.5s"), Some(62_500.0));
        assert_eq!(go_duration_ms("850µs"), Some(0.85));
        assert_eq!(go_duration_ms("0"), Some(0.0));
        assert_eq!(go_duration_ms("fast"), None);
        assert_eq!(go_duration_ms("12"), None);
    }

    #[test]
    fn offsets_become_utc_z() {
        let t = utc_timestamp("2025-06-09T20:54:32.427033872-07:00").unwrap();
        assert_eq!(t.to_string(), "2025-06-10T03:54:32.427033872Z");
        let t = utc_timestamp("2022-08-22T21:22:59.799053+05:30").unwrap();
        assert_eq!(t.to_string(), "2022-08-22T15:52:59.799053Z");
        assert!(utc_timestamp("yesterday").is_none());
    }

    #[test]
    fn ports_as_numbers_or_strings() {
        assert_eq!(port_value(Some(&json!(443))), Ok(Some(443)));
        assert_eq!(port_value(Some(&json!("8443"))), Ok(Some(8443)));
        assert_eq!(port_value(Some(&json!(""))), Ok(None));
        assert_eq!(port_value(None), Ok(None));
        assert!(port_value(Some(&json!(70000))).is_err());
        assert!(port_value(Some(&json!("http"))).is_err());
        assert!(port_value(Some(&json!(-1))).is_err());
    }

    #[test]
    fn tags_as_list_or_comma_string() {
        assert_eq!(string_list(Some(&json!(["a", " b "]))), vec!["a", "b"]);
        assert_eq!(
            string_list(Some(&json!("panel, login,,x"))),
            vec!["panel", "login", "x"]
        );
        assert!(string_list(Some(&json!(null))).is_empty());
    }
}

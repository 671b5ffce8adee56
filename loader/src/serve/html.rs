//! HTML by hand: one layout, a table helper, and escaping of every value that came from
//! the database (scan banners and products are attacker-chosen text).

use axum::http::StatusCode;
use serde_json::Value;

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A JSON value as escaped cell text ("" for null).
pub fn t(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => esc(s),
        Value::Array(a) => esc(&a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect::<Vec<_>>().join(", ")),
        other => esc(&other.to_string()),
    }
}

/// A link whose query part is already URL-encoded (Params::with) or a plain path.
pub fn a(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), text)
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub type Col<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

pub fn table(rows: &[Value], cols: &[Col]) -> String {
    if rows.is_empty() {
        return "<p class=\"empty\">No rows.</p>".into();
    }
    let mut o = String::from("<table><thead><tr>");
    for (h, _) in cols {
        o.push_str(&format!("<th>{}</th>", esc(h)));
    }
    o.push_str("</tr></thead><tbody>");
    for r in rows {
        o.push_str("<tr>");
        for (_, f) in cols {
            o.push_str(&format!("<td>{}</td>", f(r)));
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    o
}

/// Key/value rows for one record.
pub fn fields(r: &Value, keys: &[(&str, &str)]) -> String {
    let mut o = String::from("<table class=\"kv\"><tbody>");
    for (label, k) in keys {
        o.push_str(&format!("<tr><th>{}</th><td class=\"{k}\">{}</td></tr>", esc(label), t(&r[*k])));
    }
    o.push_str("</tbody></table>");
    o
}

pub fn next_link(next: Option<&str>) -> String {
    match next {
        Some(href) => format!("<p class=\"pager\">{}</p>", a(href, "Next page &rarr;")),
        None => String::new(),
    }
}

pub fn error_body(status: StatusCode, message: &str) -> String {
    format!(
        "<h1>{} {}</h1><p class=\"error\">{}</p>",
        status.as_u16(),
        esc(status.canonical_reason().unwrap_or("")),
        esc(message)
    )
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}\
header{background:#0d2538;color:#fff;padding:.6em 1.2em}header a{color:#cfe3ff;margin-right:1.1em;text-decoration:none}\
header b{margin-right:1.6em}main{padding:1em 1.4em;max-width:1200px}\
table{border-collapse:collapse;background:#fff;margin:.6em 0;width:100%}\
th,td{border:1px solid #d0d7de;padding:.3em .55em;text-align:left;vertical-align:top;font-size:13px}\
th{background:#eef2f6}td{font-family:ui-monospace,monospace;word-break:break-all}\
table.kv{width:auto}table.kv th{width:12em}form{background:#fff;border:1px solid #d0d7de;padding:.6em;margin:.4em 0}\
form label{margin-right:.8em}input{width:9em}.error{color:#b3261e;font-weight:600}\
.verified{color:#116329;font-weight:600}.invalid{color:#b3261e;font-weight:600}.pending{color:#9a6700}\
.empty{color:#57606a}img.shot{max-width:480px;border:1px solid #d0d7de}";

pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} - Watchtower nweb</title>\
         <style>{CSS}</style></head><body><header><b>Watchtower nweb</b>\
         <a href=\"/search\">Search</a><a href=\"/bundles\">Bundles</a><a href=\"/challenges\">Challenges</a>\
         <a href=\"/submitters\">Submitters</a><a href=\"/search#xray\">XRAY (choose a tenant)</a></header><main>{body}</main></body></html>",
        esc(title)
    )
}

pub fn status_class(status: &Value) -> String {
    let s = status.as_str().unwrap_or("");
    format!("<span class=\"{}\">{}</span>", esc(s), esc(s))
}

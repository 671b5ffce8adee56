//! httpx `-json` output → [`HttpObservation`]s.
//!
//! History that matters here (FIELDS.md):
//! - <= v1.2.4 used dashed keys (`status-code`, `content-length`, `final-url`,
//!   `technologies`, `response-header`, `cdn-name`, `favicon-mmh3`, ...).
//! - `port` is a string; `host` is the resolved IP up to v1.7.2, and from
//!   v1.7.3 the hostname with the IP in `host_ip`.
//! - `jarm` became `jarm_hash` at v1.6.7.
//! - `header` (with `-irh`/`-irr`) maps lower-cased, `-`→`_` names to values
//!   joined with ", "; `raw_header` has the header block as sent.
//! - `time` is a Go duration string.
//! - `tls` (with `-tls-grab`) embeds a full tlsx object.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::tlsx::{self, TlsxRecord};
use super::{
    field, go_duration_ms, is_ip, parse_error, port_value, read_json_records, str_field, string_list, utc_timestamp,
    ToolParse,
};
use xray_engine::contract::{ErrorEntry, HttpObservation, Timestamp};

pub const TOOL: &str = "httpx";

/// Fields that are too large or too sensitive to keep in `raw.httpx_json`.
const DROPPED_RAW_KEYS: &[&str] = &[
    "body",
    "response-body",
    "raw_header",
    "response-header",
    "request",
    "raw-request",
    "headless_body",
    "screenshot_bytes",
    "header",
];

/// One answered HTTP probe.
#[derive(Debug, Clone)]
pub struct HttpxRecord {
    pub observation: HttpObservation,
    /// docs/contract.md §P-6.2 fields the typed [`HttpObservation`] does not model
    /// (`response_time_ms`, `content_length`, `cdn`, `favicon_hash`,
    /// `body_hash`, `headers_hash`, `body_simhash`, `redirect_chain`). Merge
    /// them into the serialised observation.
    pub extra: Map<String, Value>,
    /// The tlsx object embedded by `-tls-grab`, parsed like tlsx output.
    pub tls: Option<TlsxRecord>,
    pub input: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub line: usize,
}

impl HttpxRecord {
    /// The observation as contract JSON, including the extra fields.
    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(&self.observation).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            for (k, x) in &self.extra {
                m.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
        v
    }
}

/// Parses httpx output. Rows with `"failed": true` (httpx `-probe`) carry no
/// answer: they become `network_error` entries with the URL and port in
/// `details`, not observations.
pub fn parse_httpx(text: &str) -> ToolParse<HttpxRecord> {
    let records = read_json_records(text, TOOL);
    let mut out = ToolParse {
        items: Vec::new(),
        errors: records.errors,
        ignored_lines: records.ignored_lines,
    };
    for r in records.items {
        match record(&r.object, r.line) {
            Ok(Parsed::Answer(h)) => out.items.push(*h),
            Ok(Parsed::Failed(e)) => out.errors.push(e),
            Err(msg) => out.errors.push(parse_error(TOOL, r.line, msg)),
        }
    }
    out.sort_errors();
    out
}

enum Parsed {
    Answer(Box<HttpxRecord>),
    Failed(ErrorEntry),
}

fn record(obj: &Map<String, Value>, line: usize) -> Result<Parsed, String> {
    let url = str_field(obj, &["url"]).ok_or("record has no url")?;
    let parsed_url = url::Url::parse(&url).ok();
    let scheme = str_field(obj, &["scheme"])
        .map(|s| s.to_ascii_lowercase())
        .or_else(|| parsed_url.as_ref().map(|u| u.scheme().to_string()));
    let port = match port_value(obj.get("port"))? {
        Some(p) => Some(p),
        None => parsed_url.as_ref().and_then(url::Url::port_or_known_default),
    };
    let url_host = parsed_url
        .as_ref()
        .and_then(|u| u.host_str())
        .map(|h| h.trim_matches(['[', ']']).to_string());
    let raw_host = str_field(obj, &["host"]);
    let (host, ip) = match str_field(obj, &["host_ip"]) {
        // v1.7.3+: host is the name, host_ip the address.
        Some(host_ip) => (raw_host.or(url_host), Some(host_ip)),
        // <= v1.7.2: host is the resolved address. Some wrappers sanitise it
        // into something that is no longer an address; then it says nothing.
        None => {
            let ip = raw_host
                .clone()
                .filter(|h| is_ip(h))
                .or_else(|| str_field(obj, &["ip"]));
            let host = url_host.or_else(|| raw_host.filter(|h| !is_ip(h)));
            (host, ip)
        }
    };

    let failed = obj.get("failed").and_then(Value::as_bool).unwrap_or(false);
    let status_code = match field(obj, &["status_code", "status-code"]) {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0),
        _ => None,
    };
    if failed || status_code.is_none() {
        let error = str_field(obj, &["error"]).unwrap_or_else(|| "no HTTP response".into());
        return Ok(Parsed::Failed(ErrorEntry {
            scope: Some("endpoint".into()),
            tool: Some(TOOL.into()),
            message: Some(format!("{url}: {error}")),
            kind: Some("network_error".into()),
            details: Some(json!({"url": url, "port": port, "line": line})),
        }));
    }

    let headers = header_map(obj)
        .or_else(|| str_field(obj, &["raw_header", "response-header"]).and_then(|raw| parse_raw_header(&raw)));
    let technologies = field(obj, &["tech", "technologies"]).map(|v| string_list(Some(v)));

    let embedded = obj.get("tls").and_then(Value::as_object);
    let tls_record = embedded
        .and_then(|t| tlsx::record(t, line).ok())
        .and_then(tlsx::TlsParsed::handshake);
    let sni = str_field(obj, &["sni"]).or_else(|| embedded.and_then(|t| str_field(t, &["sni"])));
    let jarm = str_field(obj, &["jarm_hash", "jarm"])
        .or_else(|| embedded.and_then(|t| str_field(t, &["jarm_hash", "jarm-hash"])));
    let tls = (sni.is_some() || jarm.is_some()).then(|| json!({"sni": sni, "jarm": jarm}));

    let mut extra = Map::new();
    if let Some(ms) = str_field(obj, &["time", "response-time"])
        .as_deref()
        .and_then(go_duration_ms)
    {
        extra.insert("response_time_ms".into(), json!(ms.round() as u64));
    }
    if let Some(n) = field(obj, &["content_length", "content-length"]).and_then(Value::as_u64) {
        extra.insert("content_length".into(), json!(n));
    }
    if let Some(cdn) = str_field(obj, &["cdn_name", "cdn-name"]) {
        extra.insert("cdn".into(), json!(cdn));
    }
    if let Some(fav) = field(obj, &["favicon", "favicon-mmh3"]) {
        let fav = match fav {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        if let Some(f) = fav {
            extra.insert("favicon_hash".into(), json!(f));
        }
    }
    if let Some(hash) = field(obj, &["hash", "hashes"]).and_then(Value::as_object) {
        for (from, to) in [
            ("body_sha256", "body_hash"),
            ("header_sha256", "headers_hash"),
            ("body_simhash", "body_simhash"),
        ] {
            if let Some(v) = str_field(hash, &[from]) {
                extra.insert(to.into(), json!(v));
            }
        }
    }
    let chain: Vec<String> = obj
        .get("chain")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|hop| {
                    hop.as_object()
                        .and_then(|h| str_field(h, &["request-url", "request_url"]))
                })
                .collect()
        })
        .unwrap_or_default();
    if !chain.is_empty() {
        extra.insert("redirect_chain".into(), json!(chain));
    }

    let mut raw = obj.clone();
    for k in DROPPED_RAW_KEYS {
        raw.remove(*k);
    }
    if let Some(Value::Array(hops)) = raw.get_mut("chain") {
        for hop in hops.iter_mut().filter_map(Value::as_object_mut) {
            hop.remove("request");
            hop.remove("response");
        }
    }

    Ok(Parsed::Answer(Box::new(HttpxRecord {
        observation: HttpObservation {
            tool: Some(TOOL.into()),
            url,
            final_url: str_field(obj, &["final_url", "final-url"]),
            host,
            ip,
            port,
            scheme,
            status_code,
            title: str_field(obj, &["title"]),
            headers,
            technologies,
            tls,
            raw: Some(json!({ "httpx_json": Value::Object(raw) })),
            // The other typed fields travel in `extra`, merged into the JSON.
            ..Default::default()
        },
        extra,
        tls: tls_record,
        input: str_field(obj, &["input"]),
        timestamp: str_field(obj, &["timestamp"]).as_deref().and_then(utc_timestamp),
        line,
    })))
}

/// httpx's `header` map back to HTTP header names: lower case with dashes.
/// `None` when the output has no header map; `Some(empty)` means httpx saw
/// a response without headers.
fn header_map(obj: &Map<String, Value>) -> Option<BTreeMap<String, Value>> {
    let map = obj.get("header")?.as_object()?;
    Some(
        map.iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                Some((k.to_ascii_lowercase().replace('_', "-"), Value::String(value)))
            })
            .collect(),
    )
}

/// Headers from a raw header block: the status line, then `Name: value`
/// lines; repeated names are joined with ", " like httpx does.
pub fn parse_raw_header(raw: &str) -> Option<BTreeMap<String, Value>> {
    let mut lines = raw.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next()?;
    if !first.starts_with("HTTP/") {
        return None;
    }
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for l in lines {
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let value = value.trim();
        out.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    Some(out.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../fixtures/tool-output/httpx/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn only(p: &ToolParse<HttpxRecord>) -> &HttpxRecord {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.items.len(), 1);
        &p.items[0]
    }

    #[test]
    fn header_map_and_raw_header_bbot() {
        let p = parse_httpx(&fixture("irr_header_map_rawheader_bbot_io_2024-06-21.jsonl"));
        let h = only(&p);
        let o = &h.observation;
        assert_eq!(o.url, "https://blacklanternsecurity.com:443");
        assert_eq!(o.host.as_deref(), Some("blacklanternsecurity.com"));
        assert_eq!(o.ip.as_deref(), Some("104.16.185.241"));
        assert_eq!(o.port, Some(443));
        assert_eq!(o.scheme.as_deref(), Some("https"));
        assert_eq!(o.status_code, Some(200));
        let headers = o.headers.as_ref().expect("headers collected");
        assert_eq!(headers["server"], json!("cloudflare"));
        assert_eq!(headers["content-length"], json!("14"));
        assert_eq!(headers["access-control-allow-origin"], json!("*"));
        assert_eq!(headers["cf-ray"], json!("897587313c7353b7-ATL"));
        assert!(!headers.contains_key("strict-transport-security"));
        assert!(!headers.contains_key("content_type"), "names use dashes");
        assert_eq!(h.extra["response_time_ms"], json!(222));
        assert_eq!(h.extra["content_length"], json!(14));
        assert_eq!(
            h.extra["body_hash"],
            json!("21c2d35e468a03e7b663d81a8f0317e56d090d3eeb356f4fadda5a5f9e30753f")
        );
        let raw = &o.raw.as_ref().unwrap()["httpx_json"];
        assert!(raw.get("body").is_none() && raw.get("request").is_none() && raw.get("raw_header").is_none());
        assert_eq!(raw["webserver"], json!("cloudflare"));
        assert_eq!(h.timestamp.unwrap().to_string(), "2024-06-21T16:55:46.154206378Z");
    }

    #[test]
    fn raw_header_is_the_fallback() {
        let mut obj: Map<String, Value> =
            serde_json::from_str(fixture("irr_header_map_rawheader_bbot_io_2024-06-21.jsonl").trim()).unwrap();
        obj.remove("header");
        let p = parse_httpx(&Value::Object(obj).to_string());
        let headers = only(&p).observation.headers.clone().expect("from raw_header");
        assert_eq!(headers["server"], json!("cloudflare"));
        assert_eq!(headers["connection"], json!("close"));
        assert_eq!(headers["alt-svc"], json!("h3=\":443\"; ma=86400"));
    }

    #[test]
    fn nemo_three_rows_without_headers_and_embedded_tls() {
        let p = parse_httpx(&fixture("nemo_go_test_md_httpx_2024-06-27.jsonl"));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.items.len(), 3);
        let urls: Vec<(&str, Option<u16>, Option<&str>)> = p
            .items
            .iter()
            .map(|h| {
                (
                    h.observation.url.as_str(),
                    h.observation.port,
                    h.observation.title.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            urls,
            vec![
                ("http://127.0.0.1:9200", Some(9200), None),
                ("http://127.0.0.1:80", Some(80), Some("在线资产管理平台")),
                ("https://127.0.0.1:443", Some(443), None),
            ]
        );
        // No -irh: no header information at all, which is not "no headers".
        assert!(p.items.iter().all(|h| h.observation.headers.is_none()));
        assert!(p.items.iter().all(|h| h.observation.ip.as_deref() == Some("127.0.0.1")));
        let https = &p.items[2];
        assert_eq!(
            https.observation.tls,
            Some(json!({"sni": null, "jarm": "3fd3fd20d00000000043d3fd3fd43d684d61a135bd962c8dd9c541ddbaefa8"}))
        );
        assert_eq!(https.extra["response_time_ms"], json!(1413));
        assert_eq!(https.extra["favicon_hash"], json!("673152537"));
        let tls = https.tls.as_ref().expect("embedded tlsx object");
        assert_eq!(tls.observation.port, 443);
        assert_eq!(tls.observation.tls_versions, vec!["TLS1.3"]);
        let cert = tls.observation.certificate.as_ref().unwrap();
        assert_eq!(cert.is_self_signed, Some(true));
        assert_eq!(cert.not_after.unwrap().to_string(), "2034-05-27T02:32:47Z");
        assert_eq!(p.items[0].extra["response_time_ms"], json!(4));
    }

    #[test]
    fn pretty_pr1614_cdn_and_tech() {
        let p = parse_httpx(&fixture("PR1614_v1.5.0-dev_jq_pretty_cdn_tech.json"));
        let h = only(&p);
        let o = &h.observation;
        assert_eq!(o.url, "https://projectdiscovery.io");
        assert_eq!(o.host.as_deref(), Some("projectdiscovery.io"));
        assert_eq!(o.ip.as_deref(), Some("172.67.74.214"));
        assert_eq!(o.port, Some(443));
        assert_eq!(o.technologies, Some(vec!["Cloudflare".to_string(), "HSTS".to_string()]));
        assert!(o.headers.is_none());
        assert_eq!(h.extra["cdn"], json!("cloudflare"));
        assert_eq!(h.extra["content_length"], json!(701099));
        assert_eq!(h.extra["response_time_ms"], json!(512));
        assert_eq!(h.timestamp.unwrap().to_string(), "2024-03-04T15:57:01.153253Z");
    }

    #[test]
    fn secator_pretty_final_url_and_sanitised_host() {
        let p = parse_httpx(&fixture("secator_fixture_2023-01-19_pretty_sanitized.json"));
        let o = &only(&p).observation;
        assert_eq!(o.title.as_deref(), Some("Jellyfin"));
        assert_eq!(
            o.final_url.as_deref(),
            Some("https://media.example.synology.me/web/index.html")
        );
        assert_eq!(o.host.as_deref(), Some("media.example.synology.me"));
        // The fixture's "82.61.151.800" was sanitised into a non-address.
        assert_eq!(o.ip, None);
        assert_eq!(
            o.technologies.as_deref(),
            Some(&["HSTS".to_string(), "Nginx".to_string()][..])
        );
    }

    #[test]
    fn dashed_keys_of_v1_2_4_and_older() {
        // No recorded sample; keys as listed in FIELDS.md for <= v1.2.4.
        let text = r#"{"url":"http://192.0.2.5:8080","host":"192.0.2.5","port":"8080","scheme":"http","status-code":302,"content-length":0,"final-url":"http://192.0.2.5:8080/login","technologies":["Jetty"],"response-header":"HTTP/1.1 302 Found\r\nLocation: /login\r\nX-Frame-Options: DENY\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n","response-time":"12.5ms","cdn-name":"akamai","jarm":"abc"}"#;
        let p = parse_httpx(text);
        let h = only(&p);
        let o = &h.observation;
        assert_eq!(o.status_code, Some(302));
        assert_eq!(o.final_url.as_deref(), Some("http://192.0.2.5:8080/login"));
        assert_eq!(o.ip.as_deref(), Some("192.0.2.5"));
        assert_eq!(o.technologies, Some(vec!["Jetty".to_string()]));
        let headers = o.headers.as_ref().unwrap();
        assert_eq!(headers["x-frame-options"], json!("DENY"));
        assert_eq!(headers["set-cookie"], json!("a=1, b=2"));
        assert_eq!(h.extra["response_time_ms"], json!(13));
        assert_eq!(h.extra["content_length"], json!(0));
        assert_eq!(h.extra["cdn"], json!("akamai"));
        assert_eq!(o.tls, Some(json!({"sni": null, "jarm": "abc"})));
    }

    #[test]
    fn host_ip_of_v1_7_3_and_empty_header_map() {
        let text = r#"{"url":"https://www.example.com","host":"www.example.com","host_ip":"192.0.2.80","port":"443","scheme":"https","status_code":200,"header":{},"jarm_hash":"29d29d"}"#;
        let o = only(&parse_httpx(text)).observation.clone();
        assert_eq!(o.host.as_deref(), Some("www.example.com"));
        assert_eq!(o.ip.as_deref(), Some("192.0.2.80"));
        assert_eq!(o.headers, Some(BTreeMap::new()));
        assert_eq!(o.tls, Some(json!({"sni": null, "jarm": "29d29d"})));
    }

    #[test]
    fn failed_rows_and_garbage() {
        let text = r#"{"url":"https://192.0.2.9:8443","input":"192.0.2.9:8443","port":"8443","failed":true,"error":"context deadline exceeded","status_code":0,"content_length":0}
this is not json
{"url":"http://192.0.2.9","status_code":200,"port":"eighty"}
{"status_code":200}
{"url":"http://192.0.2.9","host":"192.0.2.9","port":"80","status_code":200}"#;
        let p = parse_httpx(text);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].observation.port, Some(80));
        assert_eq!(p.ignored_lines, 1);
        assert_eq!(p.errors.len(), 3, "{:?}", p.errors);
        assert_eq!(p.errors[0].kind.as_deref(), Some("network_error"));
        assert_eq!(p.errors[0].details.as_ref().unwrap()["port"], json!(8443));
        assert_eq!(
            p.errors[1].message.as_deref(),
            Some("line 3: port \"eighty\" is not a port number")
        );
        assert_eq!(p.errors[2].message.as_deref(), Some("line 4: record has no url"));
    }

    #[test]
    fn to_value_merges_extra_fields_and_round_trips() {
        let p = parse_httpx(&fixture("irr_header_map_rawheader_bbot_io_2024-06-21.jsonl"));
        let v = p.items[0].to_value();
        assert_eq!(v["response_time_ms"], json!(222));
        let back: HttpObservation = serde_json::from_value(v).unwrap();
        assert_eq!(back.status_code, Some(200));
    }

    #[test]
    fn v1_10_0_nf_prints_both_schemes_with_the_input() {
        let p = parse_httpx(&fixture("v1.10.0_demo-services_watchtower.test.jsonl"));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let mut got: Vec<(String, Option<u16>, Option<String>)> = p
            .items
            .iter()
            .map(|h| (h.observation.url.clone(), h.observation.status_code, h.input.clone()))
            .collect();
        got.sort();
        let mut want: Vec<(String, Option<u16>, Option<String>)> = ["127.0.0.1", "127.0.0.2"]
            .iter()
            .flat_map(|ip| {
                [("http", 400), ("https", 200)].map(|(scheme, status)| {
                    (
                        format!("{scheme}://{ip}:18443"),
                        Some(status),
                        Some(format!("watchtower.test,{ip}:18443")),
                    )
                })
            })
            .collect();
        want.sort();
        assert_eq!(got, want);
        let https = p.items.iter().find(|h| h.observation.scheme.as_deref() == Some("https")).unwrap();
        assert!(!https.observation.headers.as_ref().unwrap().contains_key("x-frame-options"));
    }
}

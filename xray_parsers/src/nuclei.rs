//! nuclei `-jsonl` output → [`NucleiFinding`]s.
//!
//! v2.3–v2.5 wrote `templateID`, `matcher_name`, `extractor_name`, `matched`,
//! `extracted_results`; hyphenated names since v2.6.0 (`template-id`,
//! `matched-at`, ...), `template-path` since v2.9, `port`/`scheme`/`url` since
//! ~v3.2. `host` was a URL in v2 and is `host:port` in v3.

use serde_json::{json, Map, Value};

use super::{field, parse_error, port_value, read_json_records, str_field, string_list, utc_timestamp, ToolParse};
use xray_engine::contract::{NucleiFinding, NucleiMetadata};

pub const TOOL: &str = "nuclei";

/// Keys left out of `raw.nuclei_json`: request and response bodies can be
/// megabytes, and the encoded template is the template again.
const DROPPED_RAW_KEYS: &[&str] = &["request", "response", "template-encoded"];

/// Parses nuclei output. Events with `"matcher-status": false` (printed with
/// `-ms`) are non-matches and are skipped.
pub fn parse_nuclei(text: &str) -> ToolParse<NucleiFinding> {
    let records = read_json_records(text, TOOL);
    let mut out = ToolParse {
        items: Vec::new(),
        errors: records.errors,
        ignored_lines: records.ignored_lines,
    };
    for r in records.items {
        if r.object.get("matcher-status").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        match finding(&r.object) {
            Ok(f) => out.items.push(f),
            Err(msg) => out.errors.push(parse_error(TOOL, r.line, msg)),
        }
    }
    out.sort_errors();
    out
}

/// One template run against one target, matched or not: with `-ms`
/// (`-matcher-status`) nuclei prints a record for every template it ran on a
/// target, so a target without any record was never scanned (nuclei skips
/// hosts after errors, and `-silent` hides that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NucleiHit {
    pub template_id: String,
    /// The address nuclei connected to.
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub matched: bool,
}

/// Every record of a `-ms` run as a [`NucleiHit`]; records that cannot be
/// read are left out (`parse_nuclei` reports them).
pub fn nuclei_hits(text: &str) -> Vec<NucleiHit> {
    read_json_records(text, TOOL)
        .items
        .into_iter()
        .filter_map(|r| {
            let f = finding(&r.object).ok()?;
            Some(NucleiHit {
                template_id: f.template_id,
                ip: f.ip,
                port: f.port,
                matched: r.object.get("matcher-status").and_then(Value::as_bool) != Some(false),
            })
        })
        .collect()
}

fn finding(obj: &Map<String, Value>) -> Result<NucleiFinding, String> {
    let template_id =
        str_field(obj, &["template-id", "templateID", "template_id"]).ok_or("record has no template-id")?;
    let kind = str_field(obj, &["type"]).map(|t| t.to_ascii_lowercase());
    let scheme = str_field(obj, &["scheme"]).map(|s| s.to_ascii_lowercase());
    let raw_host = str_field(obj, &["host"]);
    let matched_at = matched_url(obj, kind.as_deref(), scheme.as_deref(), raw_host.as_deref())
        .ok_or_else(|| format!("{template_id}: record has no matched-at, url or host"))?;
    let port = match port_value(obj.get("port"))? {
        Some(p) => Some(p),
        None => [Some(matched_at.as_str()), raw_host.as_deref()]
            .into_iter()
            .flatten()
            .find_map(port_of),
    };
    let info = obj.get("info").and_then(Value::as_object);
    let metadata = info.map(|i| NucleiMetadata {
        name: str_field(i, &["name"]),
        description: str_field(i, &["description"]),
        tags: string_list(i.get("tags")),
    });
    let severity = info
        .and_then(|i| str_field(i, &["severity"]))
        .map(|s| s.to_ascii_lowercase());

    let mut raw = obj.clone();
    for k in DROPPED_RAW_KEYS {
        raw.remove(*k);
    }
    if let Some(Value::Object(interaction)) = raw.get_mut("interaction") {
        interaction.remove("raw-request");
        interaction.remove("raw-response");
    }

    Ok(NucleiFinding {
        tool: Some(TOOL.into()),
        template_id,
        template_path: str_field(obj, &["template-path", "template_path", "template"]),
        severity,
        kind,
        matched_at,
        host: raw_host.as_deref().map(hostname_of),
        ip: str_field(obj, &["ip"]),
        port,
        timestamp: str_field(obj, &["timestamp"]).as_deref().and_then(utc_timestamp),
        matcher_name: str_field(obj, &["matcher-name", "matcher_name"]),
        extracted_results: string_list(field(obj, &["extracted-results", "extracted_results"])),
        metadata,
        raw: Some(json!({ "nuclei_json": Value::Object(raw) })),
    })
}

/// `matched-at` (or v2 `matched`), else `url`, else `host`. HTTP matches
/// without a scheme get one so that the result parses as a URL.
fn matched_url(
    obj: &Map<String, Value>,
    kind: Option<&str>,
    scheme: Option<&str>,
    host: Option<&str>,
) -> Option<String> {
    let m = str_field(obj, &["matched-at", "matched", "matched_at"])
        .or_else(|| str_field(obj, &["url"]))
        .or_else(|| host.map(str::to_string))?;
    if m.contains("://") || !matches!(kind, None | Some("http" | "headless")) {
        return Some(m);
    }
    Some(format!("{}://{m}", scheme.unwrap_or("http")))
}

/// The host name of a v2 URL-style or v3 `host:port` host value.
fn hostname_of(host: &str) -> String {
    if let Ok(u) = url::Url::parse(host) {
        if let Some(h) = u.host_str() {
            return h.trim_matches(['[', ']']).to_string();
        }
    }
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

fn port_of(s: &str) -> Option<u16> {
    if let Ok(u) = url::Url::parse(s) {
        if u.host_str().is_some() {
            return u.port_or_known_default();
        }
    }
    let (_, p) = s.rsplit_once(':')?;
    p.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../fixtures/tool-output/nuclei/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_prismatic_file_parses_completely() {
        let files = [
            ("prismatic_api-findings.jsonl", 1),
            ("prismatic_backup-findings.jsonl", 2),
            ("prismatic_config-findings.jsonl", 6),
            ("prismatic_exposure-findings.jsonl", 8),
            ("prismatic_git-findings.jsonl", 1),
            ("prismatic_misc-findings.jsonl", 2),
            ("prismatic_tech-findings.jsonl", 7),
        ];
        for (name, n) in files {
            let p = parse_nuclei(&fixture(name));
            assert!(p.errors.is_empty(), "{name}: {:?}", p.errors);
            assert_eq!(p.items.len(), n, "{name}");
            for f in &p.items {
                assert_eq!(f.host.as_deref(), Some("localhost"), "{name}");
                assert_eq!(f.port, Some(8888));
                // One run resolved localhost to ::1.
                let ip = if name.contains("git") { "::1" } else { "127.0.0.1" };
                assert_eq!(f.ip.as_deref(), Some(ip), "{name}");
                assert!(f.matched_at.starts_with("http://localhost:8888"));
                let raw = &f.raw.as_ref().unwrap()["nuclei_json"];
                assert!(raw.get("request").is_none() && raw.get("response").is_none(), "{name}");
                assert!(raw.get("curl-command").is_some());
            }
        }
    }

    #[test]
    fn swagger_api_v3_event() {
        let p = parse_nuclei(&fixture("prismatic_api-findings.jsonl"));
        let f = &p.items[0];
        assert_eq!(f.template_id, "swagger-api");
        assert_eq!(
            f.template_path.as_deref(),
            Some("/home/joshsymonds/nuclei-templates/http/exposures/apis/swagger-api.yaml")
        );
        assert_eq!(f.severity.as_deref(), Some("info"));
        assert_eq!(f.kind.as_deref(), Some("http"));
        assert_eq!(f.matched_at, "http://localhost:8888/swagger.json");
        // -07:00 converted to UTC.
        assert_eq!(f.timestamp.unwrap().to_string(), "2025-06-10T03:54:32.427033872Z");
        let m = f.metadata.as_ref().unwrap();
        assert_eq!(m.name.as_deref(), Some("Public Swagger API - Detect"));
        assert_eq!(m.tags, vec!["exposure", "api", "swagger"]);
        assert_eq!(
            f.raw.as_ref().unwrap()["nuclei_json"]["info"]["classification"]["cwe-id"],
            json!(["cwe-200"])
        );
    }

    #[test]
    fn config_findings_severities_and_templates() {
        let p = parse_nuclei(&fixture("prismatic_config-findings.jsonl"));
        let ids: Vec<(&str, &str)> = p
            .items
            .iter()
            .map(|f| (f.template_id.as_str(), f.severity.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("codeigniter-env", "high"),
                ("laravel-env", "high"),
                ("generic-env", "high"),
                ("wordpress-db-repair", "low"),
                ("git-config", "medium"),
                ("config-json", "medium"),
            ]
        );
        assert_eq!(p.items[3].matched_at, "http://localhost:8888/wp-admin/maint/repair.php");
    }

    #[test]
    fn tech_findings_matcher_names_and_extracts() {
        let p = parse_nuclei(&fixture("prismatic_tech-findings.jsonl"));
        let apache = p.items.iter().find(|f| f.template_id == "apache-detect").unwrap();
        assert_eq!(apache.extracted_results, vec!["Apache/2.4.41 (Ubuntu)"]);
        assert_eq!(apache.matcher_name, None);
        let tech = p.items.iter().find(|f| f.template_id == "tech-detect").unwrap();
        assert_eq!(tech.matcher_name.as_deref(), Some("php"));
        let waf = p.items.iter().find(|f| f.template_id == "waf-detect").unwrap();
        assert_eq!(waf.matcher_name.as_deref(), Some("apachegeneric"));
        let wp = p.items.iter().find(|f| f.template_id == "wordpress-detect").unwrap();
        assert_eq!(
            wp.metadata.as_ref().unwrap().tags,
            vec!["tech", "wordpress", "cms", "wp"]
        );
    }

    #[test]
    fn v2_shape_with_url_host_and_comma_tags() {
        // nuclei v2.3–v2.5 keys; FIELDS.md quotes a v2 sample whose host is
        // "https://example.synology.me". Minimal literal, not a recording.
        let text = r#"{"templateID":"synology-dsm-panel","info":{"name":"Synology DSM Panel","severity":"INFO","tags":"panel,synology"},"type":"http","host":"https://example.synology.me","matched":"https://example.synology.me/webman/index.cgi","matcher_name":"title","extracted_results":["DSM 7"],"ip":"192.0.2.50","timestamp":"2021-09-01T10:00:00.5+02:00"}"#;
        let p = parse_nuclei(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let f = &p.items[0];
        assert_eq!(f.template_id, "synology-dsm-panel");
        assert_eq!(f.host.as_deref(), Some("example.synology.me"));
        assert_eq!(f.matched_at, "https://example.synology.me/webman/index.cgi");
        assert_eq!(f.port, Some(443));
        assert_eq!(f.severity.as_deref(), Some("info"));
        assert_eq!(f.matcher_name.as_deref(), Some("title"));
        assert_eq!(f.extracted_results, vec!["DSM 7"]);
        assert_eq!(f.metadata.as_ref().unwrap().tags, vec!["panel", "synology"]);
        assert_eq!(f.timestamp.unwrap().to_string(), "2021-09-01T08:00:00.500Z");
    }

    #[test]
    fn matched_at_is_made_a_url_for_http_and_kept_for_network() {
        let text = r#"{"template-id":"a","type":"http","host":"192.0.2.1:8080","matched-at":"192.0.2.1:8080/admin","info":{"severity":"low"}}
{"template-id":"b","type":"network","host":"192.0.2.1:22","matched-at":"192.0.2.1:22","port":"22","info":{"severity":"info"}}
{"template-id":"c","type":"http","host":"localhost:8888","url":"https://localhost:8888","info":{}}
{"template-id":"d","matcher-status":false,"type":"http","host":"x","info":{}}"#;
        let p = parse_nuclei(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.items.len(), 3, "non-match skipped");
        assert_eq!(p.items[0].matched_at, "http://192.0.2.1:8080/admin");
        assert_eq!(p.items[0].port, Some(8080));
        assert_eq!(p.items[1].matched_at, "192.0.2.1:22");
        assert_eq!(p.items[1].port, Some(22));
        assert_eq!(p.items[1].host.as_deref(), Some("192.0.2.1"));
        assert_eq!(p.items[2].matched_at, "https://localhost:8888");
        assert_eq!(p.items[2].port, Some(8888));
    }

    #[test]
    fn html_escaped_text_and_garbage_lines() {
        let good = fixture("prismatic_misc-findings.jsonl");
        let first = good.lines().next().unwrap();
        let text = format!(
            "[INF] Templates loaded for current scan: 2\n{first}\n{{\"info\":{{}}}}\n{{\"template-id\":\"x\",\"port\":\"99999\",\"host\":\"h\"}}\n{{\"template-id\":\"esc\",\"type\":\"http\",\"host\":\"h\",\"extracted-results\":[\"\\u003cscript\\u003e\"]}}\n{{truncated"
        );
        let p = parse_nuclei(&text);
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.items[0].template_id, "robots-txt-endpoint");
        assert_eq!(p.items[1].extracted_results, vec!["<script>"]);
        let msgs: Vec<String> = p.errors.iter().filter_map(|e| e.message.clone()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert_eq!(msgs[0], "line 3: record has no template-id");
        assert_eq!(msgs[1], "line 4: port 99999 is out of range");
        assert_eq!(msgs[2], "line 6: invalid JSON: key must be a string");
    }

    #[test]
    fn v3_11_1_matcher_status_records_every_template_run() {
        let text = fixture("v3.11.1_demo-services_watchtower.test.jsonl");
        let p = parse_nuclei(&text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let found: Vec<(&str, Option<&str>)> = p.items.iter().map(|f| (f.template_id.as_str(), f.ip.as_deref())).collect();
        assert_eq!(
            found,
            vec![("watchtower-admin-panel", Some("127.0.0.1")), ("watchtower-admin-panel", Some("127.0.0.2"))]
        );
        let hits = nuclei_hits(&text);
        assert_eq!(hits.len(), 4, "two templates on two addresses");
        assert_eq!(hits.iter().filter(|h| !h.matched).count(), 2);
        assert!(hits.iter().all(|h| h.port == Some(18443)));
    }
}

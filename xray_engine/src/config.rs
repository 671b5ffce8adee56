//! Engine configuration: the knobs the specs leave to the operator. The
//! extension fills this from its configuration tables; `Default` is the
//! shipped v1 baseline.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// RB1 ports and their service family (docs/contract.md §P-7.1).
    pub admin_ports: BTreeMap<u16, String>,
    /// RB2: nuclei templates that count as exposed panels (docs/contract.md §P-7.2).
    pub panel_template_ids: Vec<String>,
    pub panel_tags: Vec<String>,
    pub panel_path_fragments: Vec<String>,
    /// Port allowlist per scan profile. A 1.0/1.1 payload has no coverage
    /// block, so these say which ports a port scan was authoritative for.
    pub profile_ports: BTreeMap<String, Vec<u16>>,
    /// Days before `not_after` at which a certificate counts as near expiry.
    pub near_expiry_days: i64,
}

pub const BASELINE_PROFILE: &str = "baseline";

impl Default for EngineConfig {
    fn default() -> Self {
        let admin_ports = [
            (22, "ssh"),
            (2222, "ssh"),
            (3389, "rdp"),
            (5900, "vnc"),
            (5901, "vnc"),
            (5985, "winrm"),
            (5986, "winrm"),
        ]
        .into_iter()
        .map(|(p, s)| (p, s.to_string()))
        .collect();
        let baseline: Vec<u16> = vec![
            21, 22, 23, 25, 53, 80, 110, 143, 443, 445, 465, 587, 993, 995, 1433, 1521, 2222,
            3306, 3389, 5432, 5900, 5901, 5985, 5986, 6379, 8000, 8008, 8080, 8443, 8888, 9200,
            9443, 27017,
        ];
        let mut profile_ports = BTreeMap::new();
        profile_ports.insert(BASELINE_PROFILE.to_string(), baseline.clone());
        // A verify or fast re-check scan probes the ports of the exposures
        // it re-checks, not the whole baseline: without a coverage block
        // (schema 1.0/1.1) only the ports it reports prove anything.
        profile_ports.insert("verify".to_string(), Vec::new());
        profile_ports.insert("fast_recheck".to_string(), Vec::new());
        EngineConfig {
            admin_ports,
            panel_template_ids: Vec::new(),
            panel_tags: vec!["panel".into()],
            panel_path_fragments: vec!["exposed-panels/".into()],
            profile_ports,
            near_expiry_days: 30,
        }
    }
}

impl EngineConfig {
    /// An `EngineConfig` from the object `xray.engine_config()` builds. Absent or
    /// null keys keep the shipped default, so `xray_normalize(payload, config)`
    /// accepts a partial override; unknown keys are refused to catch typos.
    /// The extension and the loader both read the tables through this, so they
    /// cannot disagree on what a configuration means.
    pub fn from_json(v: &Value) -> Result<EngineConfig, String> {
        let obj = match v {
            Value::Object(o) => o,
            Value::Null => return Ok(EngineConfig::default()),
            _ => return Err("config: must be a JSON object".into()),
        };
        let port = |key: &str, p: &Value| -> Result<u16, String> {
            let n = match p {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse::<u64>().ok(),
                _ => None,
            };
            n.and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("config.{key}: {p} is not a port number 1..65535"))
        };
        let strings = |key: &str, val: &Value| -> Result<Vec<String>, String> {
            val.as_array()
                .ok_or_else(|| format!("config.{key}: must be an array of strings"))?
                .iter()
                .map(|s| s.as_str().map(str::to_string).ok_or_else(|| format!("config.{key}: {s} is not a string")))
                .collect()
        };
        let mut c = EngineConfig::default();
        for (key, val) in obj {
            if val.is_null() {
                continue;
            }
            match key.as_str() {
                "admin_ports" => {
                    let map = val.as_object().ok_or("config.admin_ports: must be an object {port: service_family}")?;
                    c.admin_ports = map
                        .iter()
                        .map(|(p, family)| {
                            let family = family
                                .as_str()
                                .ok_or_else(|| format!("config.admin_ports.{p}: service family must be a string"))?;
                            Ok((port(key, &Value::String(p.clone()))?, family.to_string()))
                        })
                        .collect::<Result<BTreeMap<_, _>, String>>()?;
                }
                "panel_template_ids" => c.panel_template_ids = strings(key, val)?,
                "panel_tags" => c.panel_tags = strings(key, val)?,
                "panel_path_fragments" => c.panel_path_fragments = strings(key, val)?,
                "profile_ports" => {
                    let map = val.as_object().ok_or("config.profile_ports: must be an object {profile: [ports]}")?;
                    c.profile_ports = map
                        .iter()
                        .map(|(profile, ports)| {
                            let ports = ports
                                .as_array()
                                .ok_or_else(|| format!("config.profile_ports.{profile}: must be an array of ports"))?
                                .iter()
                                .map(|p| port(key, p))
                                .collect::<Result<Vec<u16>, String>>()?;
                            Ok((profile.clone(), ports))
                        })
                        .collect::<Result<BTreeMap<_, _>, String>>()?;
                }
                "near_expiry_days" => {
                    c.near_expiry_days = val
                        .as_i64()
                        .filter(|d| (0..=3650).contains(d))
                        .ok_or_else(|| format!("config.near_expiry_days: {val} is not a number of days 0..3650"))?;
                }
                other => return Err(format!("config.{other}: unknown key")),
            }
        }
        Ok(c)
    }

    /// Ports of a profile; unknown or absent profiles fall back to baseline.
    pub fn ports_for_profile(&self, profile: Option<&str>) -> &[u16] {
        profile
            .and_then(|p| self.profile_ports.get(p))
            .or_else(|| self.profile_ports.get(BASELINE_PROFILE))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The ports a 1.0/1.1 payload's port scan counts as probed: the named
    /// profile's, the baseline's when the payload names none, and none for a
    /// profile this configuration does not know (docs/design.md D10, D12).
    pub fn profile_coverage(&self, profile: Option<&str>) -> &[u16] {
        match profile {
            None => self.baseline_ports(),
            Some(p) => self.profile_ports.get(p).map(Vec::as_slice).unwrap_or(&[]),
        }
    }

    /// The baseline allowlist, which gates RB6 (docs/contract.md §P-7.6).
    pub fn baseline_ports(&self) -> &[u16] {
        self.ports_for_profile(Some(BASELINE_PROFILE))
    }

    pub fn is_panel_template(&self, template_id: &str, path: Option<&str>, tags: &[String]) -> bool {
        self.panel_template_ids.iter().any(|t| t == template_id)
            || tags.iter().any(|t| self.panel_tags.iter().any(|p| p.eq_ignore_ascii_case(t)))
            || path.is_some_and(|p| self.panel_path_fragments.iter().any(|f| p.contains(f.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The shape `xray.engine_config()` returns for the shipped rows.
    fn shipped_json() -> Value {
        let d = EngineConfig::default();
        json!({
            "admin_ports": d.admin_ports.iter().map(|(p, f)| (p.to_string(), json!(f))).collect::<serde_json::Map<_, _>>(),
            "panel_template_ids": d.panel_template_ids,
            "panel_tags": d.panel_tags,
            "panel_path_fragments": d.panel_path_fragments,
            "profile_ports": d.profile_ports,
            "near_expiry_days": d.near_expiry_days,
        })
    }

    #[test]
    fn the_shipped_tables_and_null_give_the_default() {
        assert_eq!(EngineConfig::from_json(&shipped_json()), Ok(EngineConfig::default()));
        assert_eq!(EngineConfig::from_json(&Value::Null), Ok(EngineConfig::default()));
        assert_eq!(EngineConfig::from_json(&json!({})), Ok(EngineConfig::default()));
    }

    #[test]
    fn a_partial_override_keeps_the_other_defaults() {
        let c = EngineConfig::from_json(&json!({"near_expiry_days": 60, "panel_tags": null})).unwrap();
        assert_eq!(c, EngineConfig { near_expiry_days: 60, ..EngineConfig::default() });

        // A key that is present replaces that whole value: the tables are the
        // complete list, not additions to the shipped one.
        let c = EngineConfig::from_json(&json!({
            "admin_ports": {"2375": "docker", "22": "ssh"},
            "profile_ports": {"baseline": [443, "8443"], "lab": [2375]},
        }))
        .unwrap();
        assert_eq!(c.admin_ports, BTreeMap::from([(22, "ssh".to_string()), (2375, "docker".to_string())]));
        assert_eq!(c.baseline_ports(), [443, 8443]);
        assert_eq!(c.ports_for_profile(Some("lab")), [2375]);
        assert_eq!(c.ports_for_profile(Some("verify")), [443, 8443], "absent profiles fall back to baseline");
        let d = EngineConfig::default();
        assert_eq!(
            (&c.panel_template_ids, &c.panel_tags, &c.panel_path_fragments, c.near_expiry_days),
            (&d.panel_template_ids, &d.panel_tags, &d.panel_path_fragments, d.near_expiry_days)
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_field() {
        let cases = [
            (json!({"near_expiry_day": 60}), "config.near_expiry_day: unknown key"),
            (json!([1]), "config: must be a JSON object"),
            (json!({"admin_ports": {"0": "ssh"}}), "config.admin_ports: \"0\" is not a port number 1..65535"),
            (json!({"admin_ports": {"65536": "ssh"}}), "config.admin_ports: \"65536\" is not a port number 1..65535"),
            (json!({"admin_ports": {"ssh": "ssh"}}), "config.admin_ports: \"ssh\" is not a port number 1..65535"),
            (json!({"admin_ports": {"22": 1}}), "config.admin_ports.22: service family must be a string"),
            (json!({"admin_ports": [22]}), "config.admin_ports: must be an object {port: service_family}"),
            (
                json!({"profile_ports": {"baseline": [22, 70000]}}),
                "config.profile_ports: 70000 is not a port number 1..65535",
            ),
            (json!({"profile_ports": {"baseline": [-1]}}), "config.profile_ports: -1 is not a port number 1..65535"),
            (json!({"profile_ports": {"baseline": 22}}), "config.profile_ports.baseline: must be an array of ports"),
            (json!({"panel_tags": "panel"}), "config.panel_tags: must be an array of strings"),
            (json!({"panel_template_ids": [1]}), "config.panel_template_ids: 1 is not a string"),
            (json!({"near_expiry_days": 3651}), "config.near_expiry_days: 3651 is not a number of days 0..3650"),
            (json!({"near_expiry_days": "30"}), "config.near_expiry_days: \"30\" is not a number of days 0..3650"),
        ];
        for (v, want) in cases {
            assert_eq!(EngineConfig::from_json(&v), Err(want.to_string()), "{v}");
        }
    }
}

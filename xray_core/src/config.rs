//! Engine configuration: the knobs the specs leave to the operator. The
//! extension fills this from its configuration tables; `Default` is the
//! shipped v1 baseline.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// RB1 ports and their service family (contract §7.1).
    pub admin_ports: BTreeMap<u16, String>,
    /// RB2: nuclei templates that count as exposed panels (contract §7.2).
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
        profile_ports.insert("verify".to_string(), baseline.clone());
        profile_ports.insert("fast_recheck".to_string(), baseline);
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
    /// Ports of a profile; unknown or absent profiles fall back to baseline.
    pub fn ports_for_profile(&self, profile: Option<&str>) -> &[u16] {
        profile
            .and_then(|p| self.profile_ports.get(p))
            .or_else(|| self.profile_ports.get(BASELINE_PROFILE))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The baseline allowlist, which gates RB6 (contract §7.6).
    pub fn baseline_ports(&self) -> &[u16] {
        self.ports_for_profile(Some(BASELINE_PROFILE))
    }

    pub fn is_panel_template(&self, template_id: &str, path: Option<&str>, tags: &[String]) -> bool {
        self.panel_template_ids.iter().any(|t| t == template_id)
            || tags.iter().any(|t| self.panel_tags.iter().any(|p| p.eq_ignore_ascii_case(t)))
            || path.is_some_and(|p| self.panel_path_fragments.iter().any(|f| p.contains(f.as_str())))
    }
}

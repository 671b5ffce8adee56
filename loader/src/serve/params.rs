//! Query-string validation. Every parameter is parsed here before any query runs, so bad
//! input becomes a 400 naming the field and the problem, and no text reaches SQL except as
//! a bound parameter of a known shape. Unknown parameters are refused too: a misspelt
//! filter silently ignored would show a person the wrong rows.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use ipnet::IpNet;
use uuid::Uuid;

use super::AppError;

/// Rows per page when none is asked for, and the most a page may hold.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
/// Longest accepted value of any parameter (a CID is 59 characters, a cursor about 120).
const MAX_VALUE: usize = 200;

/// The parsed query string: each name once, every name known to the page.
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, AppError> {
        let mut map = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                let k: String = k.chars().take(40).collect();
                return Err(AppError::bad(format!(
                    "unknown parameter {k:?}; this page takes {}",
                    allowed.join(", ")
                )));
            }
            if v.len() > MAX_VALUE {
                return Err(AppError::bad(format!("{k}: longer than {MAX_VALUE} characters")));
            }
            if v.is_empty() {
                continue; // an empty form field means "no filter"
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(AppError::bad(format!("{k}: given more than once")));
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// The parameters again, for links that keep the filters (pagination).
    pub fn with(&self, k: &str, v: Option<&str>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.0 {
            if name != k {
                s.append_pair(name, value);
            }
        }
        if let Some(v) = v {
            s.append_pair(k, v);
        }
        s.finish()
    }

    pub fn limit(&self) -> Result<i64, AppError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                Ok(_) => Err(AppError::bad(format!("limit: must be between 1 and {MAX_LIMIT}"))),
                Err(_) => Err(AppError::bad("limit: not a number")),
            },
        }
    }

    /// `ip`: an address or a CIDR block; returned as PostgreSQL inet text.
    pub fn net(&self, k: &str) -> Result<Option<String>, AppError> {
        self.get(k).map(|v| parse_net(k, v)).transpose()
    }

    pub fn port(&self) -> Result<Option<i32>, AppError> {
        self.get("port")
            .map(|v| {
                v.parse::<u16>()
                    .map(i32::from)
                    .map_err(|_| AppError::bad("port: not a port number (0-65535)"))
            })
            .transpose()
    }

    /// A name such as a service (`http`, `ssh`, `ms-wbt-server`).
    pub fn word(&self, k: &str) -> Result<Option<String>, AppError> {
        self.get(k)
            .map(|v| {
                if v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                    Ok(v.to_ascii_lowercase())
                } else {
                    Err(AppError::bad(format!("{k}: letters, digits, '.', '_' and '-' only, at most 64")))
                }
            })
            .transpose()
    }

    /// Free text such as a product name (`OpenSSH`, `Apache httpd`); quotes, semicolons and
    /// comment markers are refused because no product has them and they are how SQL
    /// injection attempts look (the value is a bound parameter either way).
    pub fn text(&self, k: &str) -> Result<Option<String>, AppError> {
        self.get(k)
            .map(|v| {
                let ok = v.len() <= 100
                    && v.chars().all(|c| c.is_alphanumeric() || " ._-/+()".contains(c))
                    && !v.contains("--");
                if ok {
                    Ok(v.to_string())
                } else {
                    Err(AppError::bad(format!(
                        "{k}: letters, digits, spaces and . _ - / + ( ) only, at most 100 characters"
                    )))
                }
            })
            .transpose()
    }

    /// RFC 3339 (`2026-01-31T12:00:00Z`) or a date (`2026-01-31`, midnight UTC).
    pub fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, AppError> {
        self.get(k)
            .map(|v| {
                if let Ok(t) = DateTime::parse_from_rfc3339(v) {
                    return Ok(t.with_timezone(&Utc));
                }
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                    .map_err(|_| AppError::bad(format!("{k}: not a time (2026-01-31 or 2026-01-31T12:00:00Z)")))
            })
            .transpose()
    }

    pub fn uuid(&self, k: &str) -> Result<Option<Uuid>, AppError> {
        self.get(k)
            .map(|v| v.parse::<Uuid>().map_err(|_| AppError::bad(format!("{k}: not a UUID"))))
            .transpose()
    }

    pub fn choice(&self, k: &str, options: &[&str]) -> Result<Option<String>, AppError> {
        self.get(k)
            .map(|v| {
                if options.contains(&v) {
                    Ok(v.to_string())
                } else {
                    Err(AppError::bad(format!("{k}: one of {}", options.join(", "))))
                }
            })
            .transpose()
    }
}

pub fn parse_net(k: &str, v: &str) -> Result<String, AppError> {
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    match v.parse::<IpNet>() {
        // 192.0.2.7/24 means the block, as PostgreSQL's cidr would insist.
        Ok(net) => Ok(net.trunc().to_string()),
        Err(_) => Err(AppError::bad(format!("{k}: not an IP address or CIDR block (192.0.2.7, 192.0.2.0/24)"))),
    }
}

pub fn parse_ip(k: &str, v: &str) -> Result<String, AppError> {
    v.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| AppError::bad(format!("{k}: not an IP address")))
}

/// A CID as the bundles table stores it (its check constraint: base32/base58 characters).
pub fn parse_cid(v: &str) -> Result<String, AppError> {
    if (1..=100).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(v.to_string())
    } else {
        Err(AppError::bad("cid: not a CID (letters and digits only)"))
    }
}

/// Keyset cursors are the sort key of the last row shown, joined by '|'.
pub fn cursor(p: &Params, parts: usize) -> Result<Option<Vec<&str>>, AppError> {
    match p.get("after") {
        None => Ok(None),
        Some(v) => {
            let items: Vec<&str> = v.split('|').collect();
            if items.len() == parts {
                Ok(Some(items))
            } else {
                Err(AppError::bad("after: not a cursor from a 'next page' link"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str, allowed: &[&str]) -> Result<Params, AppError> {
        Params::parse(Some(q), allowed)
    }

    #[test]
    fn refuses_bad_input_with_the_field_named() {
        let all = &["ip", "port", "limit", "product", "service", "from"];
        let msg = |r: Result<(), AppError>| r.unwrap_err().message().to_string();
        assert!(msg(p("ip=10.0.0.300/8", all).and_then(|p| p.net("ip").map(drop))).starts_with("ip:"));
        assert!(msg(p("limit=100000", all).and_then(|p| p.limit().map(drop))).starts_with("limit:"));
        assert!(msg(p("port=70000", all).and_then(|p| p.port().map(drop))).starts_with("port:"));
        let sql = "product=x%27%3B+DROP+TABLE+nweb.bundles%3B--";
        assert!(msg(p(sql, all).and_then(|p| p.text("product").map(drop))).starts_with("product:"));
        assert!(msg(p("service=a b", all).and_then(|p| p.word("service").map(drop))).starts_with("service:"));
        assert!(msg(p("from=yesterday", all).and_then(|p| p.time("from").map(drop))).starts_with("from:"));
        assert!(msg(p("nope=1", all).map(drop)).contains("unknown parameter"));
        assert!(msg(p("port=1&port=2", all).map(drop)).contains("more than once"));
    }

    #[test]
    fn accepts_what_a_person_types() {
        let q = p("ip=192.0.2.7%2F24&port=443&product=Apache+httpd&from=2026-01-31&limit=", &[
            "ip", "port", "product", "from", "limit",
        ])
        .unwrap();
        assert_eq!(q.net("ip").unwrap().unwrap(), "192.0.2.0/24");
        assert_eq!(q.port().unwrap(), Some(443));
        assert_eq!(q.text("product").unwrap().unwrap(), "Apache httpd");
        assert_eq!(q.limit().unwrap(), DEFAULT_LIMIT);
        assert!(q.time("from").unwrap().is_some());
    }
}

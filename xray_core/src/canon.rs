//! Canonicalisation of hosts and URLs (exposure-identity "Canonicalization highlights").
//! Identity strings are built only from canonical values, so two spellings of
//! the same endpoint never produce two exposures.

use url::Url;

/// Lowercase, no trailing dot; IDNA is deliberately not applied (`idna=none`).
pub fn canonical_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A URL with scheme and host lowercased, default port dropped, query and
/// fragment dropped (`query_handling: drop`) and dot segments removed.
/// Input without a scheme is read as `http://` (nuclei network matches print `host:port`).
pub fn canonical_url(raw: &str) -> Option<String> {
    let url = parse_lenient(raw)?;
    let mut url = url;
    url.set_query(None);
    url.set_fragment(None);
    if let Some(host) = url.host_str() {
        let h = canonical_host(host);
        if url.set_host(Some(&h)).is_err() {
            return None;
        }
    }
    Some(url.to_string())
}

/// `scheme://host[:port]/` of a URL, the unit RB5 is judged on.
pub fn canonical_url_root(raw: &str) -> Option<String> {
    let url = parse_lenient(raw)?;
    let host = canonical_host(url.host_str()?);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Some(match url.port() {
        Some(p) => format!("{}://{}:{}/", url.scheme(), host, p),
        None => format!("{}://{}/", url.scheme(), host),
    })
}

/// Scheme and effective port of a URL (default port when none is written).
pub fn url_scheme_port(raw: &str) -> Option<(String, u16)> {
    let url = parse_lenient(raw)?;
    Some((url.scheme().to_string(), url.port_or_known_default()?))
}

fn parse_lenient(raw: &str) -> Option<Url> {
    let raw = raw.trim();
    // `url` already lowercases scheme and host, drops default ports and
    // resolves dot segments per the WHATWG URL standard.
    let url = if raw.contains("://") {
        Url::parse(raw).ok()?
    } else {
        Url::parse(&format!("http://{raw}")).ok()?
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    Some(url)
}

/// Canonical TLS/SSL version label (`TLS1.0`, `SSL3.0`, ...) with its rank in
/// protocol order, from any spelling the tools use (`tls10`, `TLSv1.0`,
/// `TLS 1.0`, `tls1`). `None` for an unknown version.
pub fn tls_version(v: &str) -> Option<(u8, &'static str)> {
    let s = v.trim().to_ascii_lowercase().replace(['.', ' ', '_', 'v'], "");
    Some(match s.as_str() {
        "ssl2" | "ssl20" => (0, "SSL2.0"),
        "ssl3" | "ssl30" => (1, "SSL3.0"),
        "tls1" | "tls10" => (2, "TLS1.0"),
        "tls11" => (3, "TLS1.1"),
        "tls12" => (4, "TLS1.2"),
        "tls13" => (5, "TLS1.3"),
        _ => return None,
    })
}

/// Does `name` match a certificate name, allowing one leading wildcard label?
pub fn cert_name_matches(pattern: &str, name: &str) -> bool {
    let pattern = canonical_host(pattern);
    let name = canonical_host(name);
    if let Some(suffix) = pattern.strip_prefix("*.") {
        match name.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        }
    } else {
        pattern == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_lowercased_without_trailing_dot() {
        assert_eq!(canonical_host("WWW.Example.COM."), "www.example.com");
        assert_eq!(canonical_host("203.0.113.10"), "203.0.113.10");
    }

    #[test]
    fn url_drops_default_port_query_fragment_and_dot_segments() {
        assert_eq!(
            canonical_url("HTTPS://Example.COM:443/a/./b/../login?x=1#frag").unwrap(),
            "https://example.com/a/login"
        );
        assert_eq!(
            canonical_url("http://example.com:8080/login").unwrap(),
            "http://example.com:8080/login"
        );
        assert_eq!(canonical_url("http://example.com:80").unwrap(), "http://example.com/");
        assert_eq!(canonical_url("example.com:8080").unwrap(), "http://example.com:8080/");
        assert_eq!(canonical_url("ftp://example.com/"), None);
    }

    #[test]
    fn url_root_keeps_only_scheme_host_and_non_default_port() {
        assert_eq!(
            canonical_url_root("https://Example.com:443/login?a=b").unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            canonical_url_root("http://example.com:8443/x").unwrap(),
            "http://example.com:8443/"
        );
        assert_eq!(canonical_url_root("http://[::1]:8080/").unwrap(), "http://[::1]:8080/");
    }

    #[test]
    fn scheme_port_uses_known_defaults() {
        assert_eq!(url_scheme_port("https://a.example/").unwrap(), ("https".into(), 443));
        assert_eq!(url_scheme_port("http://a.example:8080/").unwrap(), ("http".into(), 8080));
    }

    #[test]
    fn tls_versions_from_every_spelling() {
        for v in ["tls10", "TLSv1.0", "TLS 1.0", "TLS1.0", "tls1"] {
            assert_eq!(tls_version(v), Some((2, "TLS1.0")), "{v}");
        }
        assert_eq!(tls_version("SSLv3"), Some((1, "SSL3.0")));
        assert_eq!(tls_version("tls13"), Some((5, "TLS1.3")));
        assert_eq!(tls_version("quic"), None);
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        assert!(cert_name_matches("*.example.com", "www.example.com"));
        assert!(!cert_name_matches("*.example.com", "example.com"));
        assert!(!cert_name_matches("*.example.com", "a.b.example.com"));
        assert!(cert_name_matches("Example.com.", "example.com"));
    }
}

//! Canonicalisation of hosts and URLs (docs/contract.md §I-5).
//! Identity strings are built only from canonical values, so two spellings of
//! the same endpoint never produce two exposures.

use url::Url;

/// Lowercase, no trailing dot; IDNA is deliberately not applied (`idna=none`).
/// An IP address is written in its canonical form (RFC 5952 for IPv6:
/// compressed, lowercase), with or without the brackets of a URL, so
/// `2001:db8::10` and `[2001:DB8:0:0:0:0:0:10]` are one host.
pub fn canonical_host(host: &str) -> String {
    let h = host.trim();
    let unbracketed = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    if let Ok(ip) = unbracketed.parse::<std::net::IpAddr>() {
        return canonical_ip(ip);
    }
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// The text of an address: RFC 5952 for IPv6 (Rust's `Display` is exactly
/// that, including `::ffff:a.b.c.d` for IPv4-mapped addresses).
pub fn canonical_ip(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

/// An address given as text, canonical; anything else unchanged.
pub fn canonical_ip_text(ip: &str) -> String {
    ip.trim().parse::<std::net::IpAddr>().map_or_else(|_| ip.to_string(), canonical_ip)
}

/// A URL with scheme and host lowercased, default port dropped, query and
/// fragment dropped (`query_handling: drop`), dot segments removed, an empty
/// path written `/`, no userinfo (credentials are never stored), and
/// percent-encoding normalised (RFC 3986 §6.2.2: unreserved characters
/// decoded, hex digits upper case).
/// Input without a scheme is read as `http://` (nuclei network matches print `host:port`).
pub fn canonical_url(raw: &str) -> Option<String> {
    let mut url = parse_lenient(raw)?;
    url.set_query(None);
    url.set_fragment(None);
    // Never fails for http(s) URLs with a host, which is all parse_lenient returns.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if let Some(host) = url.host_str() {
        let h = canonical_host(host);
        let h = if h.contains(':') { format!("[{h}]") } else { h };
        if url.set_host(Some(&h)).is_err() {
            return None;
        }
    }
    let path = normalize_percent_encoding(url.path());
    url.set_path(&path);
    Some(url.to_string())
}

/// `raw` with the `user:password@` of every URL in it removed, for evidence
/// that keeps what a tool printed (a URL, or a request line that holds one).
pub fn redact_userinfo(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// RFC 3986 §6.2.2.1–2 on a path: `%7e` → `~`, `%2f` → `%2F`.
fn normalize_percent_encoding(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let hex = &path[i + 1..i + 3];
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        // Not part of an escape: copy the whole character (paths from `url`
        // are ASCII, but nothing here relies on it).
        let ch = path[i..].chars().next().unwrap_or('%');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `scheme://host[:port]/` of a URL, the unit RB5 is judged on.
pub fn canonical_url_root(raw: &str) -> Option<String> {
    let url = parse_lenient(raw)?;
    let host = canonical_host(url.host_str()?);
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
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
/// Both sides are compared as IDNA A-labels, so `bücher.example` matches a
/// certificate for `xn--bcher-kva.example`.
pub fn cert_name_matches(pattern: &str, name: &str) -> bool {
    let pattern = a_label(&canonical_host(pattern));
    let name = a_label(&canonical_host(name));
    if let Some(suffix) = pattern.strip_prefix("*.") {
        match name.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        }
    } else {
        pattern == name
    }
}

/// The IDNA A-label form of a host name (UTS 46, as browsers map it). A
/// leading `*.` of a certificate name is kept; a name IDNA refuses is
/// compared as it is.
fn a_label(host: &str) -> String {
    let (wild, rest) = match host.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", host),
    };
    match idna::domain_to_ascii(rest) {
        Ok(a) if !a.is_empty() => format!("{wild}{a}"),
        _ => host.to_string(),
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

//! What the loader says on stderr: one `xray-loader: <message>` line per failure,
//! whatever the error chain looks like, so cron mail and log scrapers read it whole.

/// Messages are printed on one line whatever the error chain looks like.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn fail(msg: impl std::fmt::Display) {
    eprintln!("xray-loader: {}", one_line(&msg.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b\r\n\nc"), "a b c");
    }
}

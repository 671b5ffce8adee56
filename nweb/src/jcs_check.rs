//! A one-pass test of whether text is already in RFC 8785 canonical form.
//!
//! Scanprint lines are written canonical (`scanprint::to_jsonl`), so the
//! Merkle root can hash them as they are instead of parsing and re-writing
//! every line. Anything this checker is unsure about answers `false` and takes
//! the full JCS path, so a `true` must only ever be given for text that
//! `jcs::canonicalize_str` would return unchanged.

/// `true` when `s` is one JSON object exactly as JCS would write it.
pub fn is_canonical_object(s: &str) -> bool {
    let b = s.as_bytes();
    let mut p = Checker { b, i: 0 };
    b.first() == Some(&b'{') && p.value() && p.i == b.len()
}

struct Checker<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Checker<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> bool {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn object(&mut self) -> bool {
        self.i += 1; // '{'
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&'a [u8]> = None;
        loop {
            let Some(key) = self.string() else { return false };
            // Keys sort by UTF-16 code units. For keys without escapes and
            // without characters outside the BMP (no 4-byte UTF-8), that is
            // byte order; anything else goes the slow way.
            if key.contains(&b'\\') || key.iter().any(|&c| c >= 0xF0) {
                return false;
            }
            if previous.is_some_and(|p| p >= key) {
                return false; // unsorted or duplicate
            }
            previous = Some(key);
            if !self.eat(b':') || !self.value() {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self) -> bool {
        self.i += 1; // '['
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value() {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// The raw bytes between the quotes, if the string is written canonically.
    fn string(&mut self) -> Option<&'a [u8]> {
        let b: &'a [u8] = self.b;
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    let raw = &b[start..self.i];
                    self.i += 1;
                    return Some(raw);
                }
                0x00..=0x1f => return None, // must be escaped
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    match e {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        // JCS writes \u00xx (lowercase hex) only for control
                        // characters without a short form.
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            let code = std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                            let lower = hex.iter().all(|h| !h.is_ascii_uppercase());
                            match code {
                                Some(c) if c < 0x20 && lower && hex.starts_with(b"00")
                                    && !matches!(c, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) => self.i += 6,
                                _ => return None,
                            }
                        }
                        _ => return None,
                    }
                }
                _ => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let Ok(text) = std::str::from_utf8(&self.b[start..self.i]) else { return false };
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => ryu_js::Buffer::new().format_finite(f) == text,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jcs::canonicalize_str;

    /// The checker may only say yes when JCS would leave the text unchanged.
    fn agrees(s: &str) {
        let canonical = canonicalize_str(s).ok();
        let fast = is_canonical_object(s);
        if fast {
            assert_eq!(canonical.as_deref(), Some(s), "checker accepted non-canonical {s:?}");
        }
    }

    #[test]
    fn canonical_lines_are_recognised() {
        for s in [
            r#"{}"#,
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"{"ip":"203.0.113.42","port":443,"ts":1693526400}"#,
            r#"{"m":1e-7,"n":1e+21,"x":0.000001,"y":-5,"z":333333333.3333333}"#,
            "{\"s\":\"tab\\tquote\\\"back\\\\ctl\\u001f/€\"}",
        ] {
            assert!(is_canonical_object(s), "{s}");
            assert_eq!(canonicalize_str(s).unwrap(), s);
        }
    }

    #[test]
    fn non_canonical_lines_take_the_slow_path() {
        for s in [
            r#"{"b":1,"a":2}"#,      // unsorted
            r#"{"a":1,"a":1}"#,      // duplicate
            r#"{ "a":1}"#,           // whitespace
            r#"{"a":1.0}"#,          // number form
            r#"{"a":-0}"#,
            r#"{"a":1E3}"#,
            r#"{"a":"\u0041"}"#,     // needless escape
            r#"{"a":"\u001F"}"#,     // uppercase hex
            r#"{"a":"\u0009"}"#,     // has a short form
            r#"{"a":"\/"}"#,
            r#"[1]"#,                // not an object
            r#"{"a":1} "#,
            r#"{"a":1}{"#,
            r#"{"😀":1,"a":2}"#,     // outside the BMP: decided by the slow path
            r#"{"a":tru}"#,
        ] {
            assert!(!is_canonical_object(s), "{s}");
            agrees(s);
        }
    }

    #[test]
    fn the_checker_never_accepts_what_jcs_would_change() {
        // A deterministic sweep of small mutations of a canonical line.
        let base = r#"{"a":[1,2.5,"x"],"b":{"c":null,"d":true},"e":"\n","f":-12}"#;
        assert!(is_canonical_object(base));
        let bytes = base.as_bytes();
        let alphabet = b" {}[]\",:0123456789.-+eE\\abcdefnrtul";
        for i in 0..bytes.len() {
            for &c in alphabet {
                let mut m = bytes.to_vec();
                m[i] = c;
                if let Ok(s) = std::str::from_utf8(&m) {
                    agrees(s);
                }
                let mut ins = bytes.to_vec();
                ins.insert(i, c);
                if let Ok(s) = std::str::from_utf8(&ins) {
                    agrees(s);
                }
            }
        }
    }
}

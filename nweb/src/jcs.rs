//! RFC 8785 JSON Canonicalization Scheme (JCS) over `serde_json::Value`.
//!
//! docs/design.md D6 hashes each scanprint line in this form, so two parties holding the same
//! data agree on the Merkle root byte for byte, whatever JSON library wrote the file.

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::NwebError;

/// Canonical form of `value` as a string (UTF-8 is the canonical encoding).
///
/// Fails only for numbers JCS cannot represent, which a `Value` parsed by serde_json
/// never holds unless its `arbitrary_precision` feature lets `1e400` through.
pub fn canonicalize(value: &Value) -> Result<String, NwebError> {
    let mut out = String::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical form of `value` to `out`, so a caller hashing many lines can
/// reuse one buffer.
pub fn write_canonical(value: &Value, out: &mut String) -> Result<(), NwebError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // RFC 8785 3.2.3: order by UTF-16 code units, not by UTF-8 bytes or code points.
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(member, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Parses one JSON text under the I-JSON rules JCS requires (RFC 8785 3.1): duplicate
/// member names are an error instead of "last one wins", so two readers cannot see two
/// different objects in the same bytes.
pub fn parse_strict(json: &str) -> Result<Value, NwebError> {
    serde_json::from_str::<StrictValue>(json)
        .map(|v| v.0)
        .map_err(|e| NwebError::Json(e.to_string()))
}

/// Parses `json` strictly and returns its canonical form.
pub fn canonicalize_str(json: &str) -> Result<String, NwebError> {
    canonicalize(&parse_strict(json)?)
}

/// ECMAScript `Number.prototype.toString` of `f`, which is how JCS writes every number
/// (RFC 8785 3.2.2.3). Integers beyond 2^53 are no exception: they are doubles too.
pub fn number_to_string(f: f64) -> Result<String, NwebError> {
    if !f.is_finite() {
        return Err(NwebError::NonFiniteNumber(f));
    }
    // ryu-js implements the ECMAScript algorithm, including "-0" -> "0" and the
    // switch to exponent form below 1e-6 and from 1e21 on.
    Ok(ryu_js::Buffer::new().format_finite(f).to_owned())
}

fn write_number(n: &Number, out: &mut String) -> Result<(), NwebError> {
    // as_f64 rounds u64/i64 beyond 2^53 to the nearest double, as JavaScript would.
    match n.as_f64() {
        Some(f) if f.is_finite() => {
            out.push_str(ryu_js::Buffer::new().format_finite(f));
            Ok(())
        }
        Some(f) => Err(NwebError::NonFiniteNumber(f)),
        None => Err(NwebError::Json(format!(
            "number {n} does not fit an IEEE 754 double"
        ))),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            b'\t' => Some("\\t"),
            b'\n' => Some("\\n"),
            0x0c => Some("\\f"),
            b'\r' => Some("\\r"),
            0x00..=0x1f => Some(""),
            _ => None,
        };
        let Some(escape) = escape else { continue };
        // Every byte handled here is ASCII, so the slice boundaries are char boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A `Value` whose deserialisation rejects duplicate member names.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("number {v} is not finite")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate member name {key:?}")));
            }
            let StrictValue(member) = map.next_value()?;
            members.insert(key, member);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their required serialisation.
    const APPENDIX_B: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];

    #[test]
    fn appendix_b_numbers() {
        for &(bits, want) in APPENDIX_B {
            let f = f64::from_bits(bits);
            assert_eq!(number_to_string(f).unwrap(), want, "bits 0x{bits:016x}");
            // The same value reached through a Value must serialise the same way.
            let v = Value::Number(Number::from_f64(f).unwrap());
            assert_eq!(
                canonicalize(&v).unwrap(),
                want,
                "bits 0x{bits:016x} via Value"
            );
        }
    }

    #[test]
    fn appendix_b_invalid_numbers_are_errors() {
        for bits in [
            0x7fffffffffffffff_u64,
            0x7ff0000000000000,
            0xfff0000000000000,
        ] {
            let f = f64::from_bits(bits);
            assert!(
                matches!(number_to_string(f), Err(NwebError::NonFiniteNumber(_))),
                "bits 0x{bits:016x} must be rejected"
            );
        }
    }

    #[test]
    fn rfc_3_2_2_main_example() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let want = "{\"literals\":[null,true,false],\
                    \"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
                    \"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        assert_eq!(canonicalize_str(input).unwrap(), want);
    }

    #[test]
    fn non_ascii_is_raw_utf8_and_control_escapes_are_lower_case() {
        // The Euro sign must come out as its UTF-8 bytes e2 82 ac, never as \u20ac.
        let out = canonicalize_str(r#"{"string":"\u20ac$\u000F"}"#).unwrap();
        assert_eq!(
            hex::encode(out.as_bytes()),
            "7b22737472696e67223a22e282ac245c7530303066227d"
        );
    }

    #[test]
    fn rfc_3_2_3_sorting_uses_utf16_code_units() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let out = canonicalize_str(input).unwrap();
        let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                    \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                    \"\u{1f600}\":\"Emoji: Grinning Face\",\
                    \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(out, want);
        // The emoji (a surrogate pair, D83D) sorts before U+FB33 only in UTF-16 order;
        // UTF-8/code-point order would put it last.
        assert!(out.find("Emoji").unwrap() < out.find("Hebrew").unwrap());
    }

    #[test]
    fn nested_objects_are_sorted_and_arrays_keep_their_order() {
        let v = json!({"b": [3, 1, {"z": 1, "a": 2}], "a": {"y": null, "x": true}});
        assert_eq!(
            canonicalize(&v).unwrap(),
            r#"{"a":{"x":true,"y":null},"b":[3,1,{"a":2,"z":1}]}"#
        );
        assert_eq!(canonicalize(&json!({})).unwrap(), "{}");
        assert_eq!(canonicalize(&json!([])).unwrap(), "[]");
    }

    #[test]
    fn whitespace_is_removed_everywhere() {
        let out = canonicalize_str(" { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : \"x y\" } ").unwrap();
        assert_eq!(out, r#"{"a":[1,2],"b":"x y"}"#);
    }

    #[test]
    fn only_mandatory_escapes_are_used() {
        let s = "\u{0}\u{1}\u{7}\u{8}\t\n\u{b}\u{c}\r\u{1f} \"\\/<>&'\u{7f}\u{2028}é";
        let out = canonicalize(&Value::String(s.to_owned())).unwrap();
        assert_eq!(
            out,
            "\"\\u0000\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\\u001f \\\"\\\\/<>&'\u{7f}\u{2028}é\""
        );
    }

    #[test]
    fn integers_beyond_2_pow_53_follow_double_formatting() {
        assert_eq!(
            canonicalize_str("9007199254740993").unwrap(),
            "9007199254740992"
        );
        assert_eq!(
            canonicalize_str("18446744073709551615").unwrap(),
            "18446744073709552000"
        );
        assert_eq!(
            canonicalize_str("-9223372036854775808").unwrap(),
            "-9223372036854776000"
        );
        assert_eq!(
            canonicalize_str("100000000000000000000000").unwrap(),
            "1e+23"
        );
        assert_eq!(
            canonicalize(&json!(u64::MAX)).unwrap(),
            "18446744073709552000"
        );
        // Small integers print without a fraction, however they were written.
        assert_eq!(
            canonicalize_str("[1.00, 1e0, 10E1, -0, -0.0]").unwrap(),
            "[1,1,100,0,0]"
        );
    }

    #[test]
    fn exponent_boundaries() {
        assert_eq!(
            canonicalize_str("[1e20, 1e21, 1e-6, 1e-7]").unwrap(),
            "[100000000000000000000,1e+21,0.000001,1e-7]"
        );
    }

    #[test]
    fn decimal_parsing_is_correctly_rounded() {
        // serde_json without `float_roundtrip` reads each of these one ULP off; the
        // canonical form would then differ from every other JCS implementation.
        for s in [
            "1289.8126064735945",
            "0.9215686321258545",
            "10587.436593658975",
        ] {
            assert_eq!(canonicalize_str(s).unwrap(), s);
        }
        assert_eq!(
            canonicalize_str("122.416294033786585").unwrap(),
            "122.41629403378658"
        );
        assert_eq!(
            canonicalize_str("0.9999999999999999").unwrap(),
            "0.9999999999999999"
        );
    }

    #[test]
    fn duplicate_member_names_are_rejected() {
        let err = canonicalize_str(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate member name \"a\""),
            "{err}"
        );
        let err = canonicalize_str(r#"{"x":[{"k":1,"k":1}]}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate member name \"k\""),
            "{err}"
        );
        // Same name in different objects is fine.
        assert_eq!(
            canonicalize_str(r#"{"k":{"k":1}}"#).unwrap(),
            r#"{"k":{"k":1}}"#
        );
    }

    #[test]
    fn invalid_json_is_an_error() {
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "\"\\ud800\"",
            "1e400",
            "NaN",
            "{} {}",
        ] {
            assert!(
                matches!(canonicalize_str(bad), Err(NwebError::Json(_))),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn canonicalisation_is_idempotent() {
        let input = r#"{"z":[1.5e3,"é\u0001"],"a":{"c":-0.0000001,"b":false}}"#;
        let once = canonicalize_str(input).unwrap();
        assert_eq!(once, r#"{"a":{"b":false,"c":-1e-7},"z":[1500,"é\u0001"]}"#);
        assert_eq!(canonicalize_str(&once).unwrap(), once);
    }
}

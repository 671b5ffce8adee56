//! The one error type of the nweb module.

use thiserror::Error;

/// Everything that can go wrong in nweb. Each message names where (a line, a field, an
/// index) and what, because these errors end up in front of a person who has to find the
/// bad record in a file of a million lines.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NwebError {
    /// A problem tied to one line of a line-oriented input (scanprint JSONL, masscan, the
    /// line an XML element starts on in nmap output). `line` is 1-based.
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },

    /// A problem with a named field that does not come from a numbered line.
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },

    /// One line of a line-oriented input is not well-formed JSON. Kept apart from
    /// [`NwebError::Line`] so callers can report malformed text (SQLSTATE 22P02)
    /// differently from well-formed JSON of the wrong shape.
    #[error("line {line}: invalid JSON: {problem}")]
    LineJson { line: usize, problem: String },

    /// Input that should have been one JSON document was not.
    #[error("invalid JSON: {0}")]
    Json(String),

    /// A content-addressed block is missing, malformed, or does not hash to its CID.
    /// The CID is always named: it is what a person retries, blocks or reports.
    #[error("block {cid}: {problem}")]
    Block { cid: String, problem: String },

    /// A CAR file that cannot be read at all (header, framing, truncation before a
    /// CID could be read).
    #[error("invalid CAR: {0}")]
    Car(String),

    /// JCS has no representation for NaN or infinities (RFC 8785 section 3.2.2.3).
    #[error("number {0} is not finite; RFC 8785 cannot represent it")]
    NonFiniteNumber(f64),

    /// An inclusion proof was asked for a leaf that the tree does not have.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },

    /// Untrusted input went past one of our own bounds ([`crate::unixfs::Limits`]): a
    /// block, a fan-out, a depth or a total that no honest Kubo DAG reaches. Kept apart
    /// from [`NwebError::Block`] on purpose: a limit is our decision not to do the work,
    /// not proof that the content is invalid, so callers that accuse a submitter (a
    /// FORMAT_INVALID challenge) must not do it on this error.
    #[error("{}{what} exceeds our limit of {limit}", at_prefix(.at))]
    Limit {
        /// What was counted, in words ("block size in bytes", "links in one node").
        what: &'static str,
        limit: u64,
        /// The block where the limit was reached, when there is one.
        at: Option<String>,
    },

    /// The input is not the format the caller said it was, so nothing could be read.
    #[error("not {expected}: {problem}")]
    WrongFormat {
        expected: &'static str,
        problem: String,
    },
}

fn at_prefix(at: &Option<String>) -> String {
    at.as_ref().map(|c| format!("block {c}: ")).unwrap_or_default()
}

impl NwebError {
    /// A [`NwebError::Limit`] reached at block `cid`, or in the input as a whole.
    pub(crate) fn limit(what: &'static str, limit: u64, cid: Option<&cid::Cid>) -> Self {
        NwebError::Limit {
            what,
            limit,
            at: cid.map(ToString::to_string),
        }
    }

    /// Whether this is one of our own limits rather than a fault of the input: the
    /// content may be valid, we just refused to read that much of it.
    pub fn is_limit(&self) -> bool {
        matches!(self, NwebError::Limit { .. })
    }

    /// Shorthand for the most common case, a problem on a numbered line.
    pub(crate) fn line(line: usize, problem: impl Into<String>) -> Self {
        NwebError::Line {
            line,
            problem: problem.into(),
        }
    }

    /// Shorthand for a problem with a named field.
    pub(crate) fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        NwebError::Field {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The 1-based line number this error points at, when it has one, so callers can
    /// highlight the record without parsing the message.
    pub fn line_number(&self) -> Option<usize> {
        match self {
            NwebError::Line { line, .. } | NwebError::LineJson { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// Shorthand for a problem with one block.
    pub(crate) fn block(cid: impl ToString, problem: impl Into<String>) -> Self {
        NwebError::Block {
            cid: cid.to_string(),
            problem: problem.into(),
        }
    }

    /// The PostgreSQL SQLSTATE for this error, so the extension and any other SQL
    /// front end report the same class: malformed text is `22P02`
    /// (invalid_text_representation), broken binary framing or content that does not
    /// match its hash is `22P03` (invalid_binary_representation), and everything else
    /// is a well-formed value that is not acceptable, `22023` (invalid_parameter_value).
    /// Our own limits are `54000` (program_limit_exceeded), which PostgreSQL uses for
    /// the same idea: the statement may be fine, this server will not do that much.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            NwebError::Limit { .. } => "54000",
            NwebError::LineJson { .. } | NwebError::Json(_) => "22P02",
            NwebError::Block { .. } | NwebError::Car(_) => "22P03",
            _ => "22023",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_line_and_the_problem() {
        let e = NwebError::line(3, "not a JSON object");
        assert_eq!(e.to_string(), "line 3: not a JSON object");
        assert_eq!(e.line_number(), Some(3));
    }

    #[test]
    fn field_errors_name_the_field_and_have_no_line() {
        let e = NwebError::field("root", "expected 0x and 64 hex digits");
        assert_eq!(e.to_string(), "root: expected 0x and 64 hex digits");
        assert_eq!(e.line_number(), None);
    }

    #[test]
    fn json_line_errors_have_their_own_sqlstate() {
        let e = NwebError::LineJson {
            line: 4,
            problem: "EOF while parsing".into(),
        };
        assert_eq!(e.to_string(), "line 4: invalid JSON: EOF while parsing");
        assert_eq!(e.line_number(), Some(4));
        assert_eq!(e.sqlstate(), "22P02");
        assert_eq!(NwebError::line(4, "not a JSON object").sqlstate(), "22023");
        let b = NwebError::block("bafkqaaa", "bytes do not hash to the CID");
        assert_eq!(
            b.to_string(),
            "block bafkqaaa: bytes do not hash to the CID"
        );
        assert_eq!(b.sqlstate(), "22P03");
    }

    #[test]
    fn limit_errors_name_the_limit_and_say_they_are_ours() {
        let at: cid::Cid = "bafkqaaa".parse().unwrap();
        let e = NwebError::limit("links in one node", 8192, Some(&at));
        assert_eq!(e.to_string(), "block bafkqaaa: links in one node exceeds our limit of 8192");
        assert!(e.is_limit());
        assert_eq!(e.sqlstate(), "54000");
        let e = NwebError::limit("CAR size in bytes", 10, None);
        assert_eq!(e.to_string(), "CAR size in bytes exceeds our limit of 10");
        assert!(!NwebError::block(at, "missing").is_limit());
    }

    #[test]
    fn index_errors_name_both_numbers() {
        let e = NwebError::IndexOutOfRange { index: 9, size: 4 };
        assert_eq!(e.to_string(), "leaf index 9 is outside a tree of 4 leaves");
    }
}

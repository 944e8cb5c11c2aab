//! Which ClickHouse failures will never succeed, however often they are retried.
//!
//! The one place that decides it. A failure is `Permanent` only when it depends on the data
//! sent (the same rows or keys always fail the same way): parse, type, range and size errors,
//! and a query longer than `max_query_size`. Everything else is `Transient` and retried as
//! before: network errors, timeouts, ClickHouse down or overloaded (`TOO_MANY_PARTS`,
//! memory limits), and also errors of the deployment (unknown table or column, missing
//! rights, read-only): those are the operator's to fix, and treating them as permanent would
//! dead-letter every record.

use super::write::SinkError;

/// How a failed ClickHouse operation is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retried with the same rows and token until it succeeds.
    Transient,
    /// The data is refused; retrying cannot help. `code` is ClickHouse's exception code.
    Permanent { code: u32 },
}

/// ClickHouse exception codes that depend only on the data sent
/// (`src/Common/ErrorCodes.cpp` in ClickHouse).
const PERMANENT_CODES: &[(u32, &str)] = &[
    (6, "CANNOT_PARSE_TEXT"),
    (27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED"),
    (38, "CANNOT_PARSE_DATE"),
    (41, "CANNOT_PARSE_DATETIME"),
    (43, "ILLEGAL_TYPE_OF_ARGUMENT"),
    (53, "TYPE_MISMATCH"),
    // our statements are fixed and parameterized: a syntax error is `Max query size exceeded`
    (62, "SYNTAX_ERROR"),
    (69, "ARGUMENT_OUT_OF_BOUND"),
    (70, "CANNOT_CONVERT_TYPE"),
    (72, "CANNOT_PARSE_NUMBER"),
    (117, "INCORRECT_DATA"),
    (128, "TOO_LARGE_ARRAY_SIZE"),
    (131, "TOO_LARGE_STRING_SIZE"),
    (167, "TOO_DEEP_SUBQUERIES"),
    (168, "TOO_DEEP_AST"),
    (190, "SIZES_OF_ARRAYS_DONT_MATCH"),
    (306, "TOO_DEEP_RECURSION"),
    (321, "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"),
    (407, "DECIMAL_OVERFLOW"),
];

/// `TOO_MANY_PARTS`: transient when merges lag, but the same code says an insert block spans
/// more partitions (months of `occurred_at`) than `max_partitions_per_insert_block`, which
/// only a smaller block can fix.
const TOO_MANY_PARTS: u32 = 252;
const TOO_MANY_PARTITIONS_TEXT: &str = "partitions for single insert block";

/// ClickHouse's exception code in an error text: `Code: 62. DB::Exception: ...` (the body of a
/// failed request), or the bare `X-ClickHouse-Exception-Code` value when the body was empty.
pub fn exception_code(text: &str) -> Option<u32> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let at = text.find("Code: ")? + "Code: ".len();
    let digits: &str = text.get(at..)?.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// Classifies a ClickHouse error text (see the module doc).
pub fn classify_text(text: &str) -> Failure {
    match exception_code(text) {
        Some(TOO_MANY_PARTS) if text.to_ascii_lowercase().contains(TOO_MANY_PARTITIONS_TEXT) => Failure::Permanent { code: TOO_MANY_PARTS },
        Some(code) if PERMANENT_CODES.iter().any(|(c, _)| *c == code) => Failure::Permanent { code },
        _ => Failure::Transient,
    }
}

/// Classifies a failed operation.
pub fn classify(error: &SinkError) -> Failure {
    match error {
        SinkError::ClickHouse(clickhouse::error::Error::BadResponse(text)) => classify_text(text),
        // network, timeouts, (de)compression, row decoding (a schema mismatch is the deployment's)
        SinkError::ClickHouse(_) => Failure::Transient,
        // (our row declaration, not the data: the operator's to fix, as a schema out of step)
        SinkError::Encode(_) => Failure::Transient,
    }
}

/// The name of a permanent code, for dead-letter reasons (`None` for an unknown code).
pub fn code_name(code: u32) -> Option<&'static str> {
    if code == TOO_MANY_PARTS {
        return Some("TOO_MANY_PARTS");
    }
    PERMANENT_CODES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error;

    fn bad(text: &str) -> SinkError {
        SinkError::ClickHouse(Error::BadResponse(text.into()))
    }

    #[test]
    fn data_errors_are_permanent_everything_else_transient() {
        // texts as ClickHouse (and the devstack endpoint) send them
        let too_large = "Code: 62. DB::Exception: Syntax error: failed at position 262127: 'x@example.com'. Max query size exceeded: 'x@example.com'. (SYNTAX_ERROR) (version 24.8.1.1)";
        assert_eq!(classify(&bad(too_large)), Failure::Permanent { code: 62 });
        assert_eq!(classify(&bad("Code: 53. DB::Exception: Type mismatch in IN or VALUES section. (TYPE_MISMATCH)")), Failure::Permanent { code: 53 });
        assert_eq!(classify(&bad("Code: 321. DB::Exception: Value out of range. (VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE)")), Failure::Permanent { code: 321 });
        assert_eq!(classify(&bad("Code: 27. DB::Exception: Cannot parse input: expected ',' (CANNOT_PARSE_INPUT_ASSERTION_FAILED)")), Failure::Permanent { code: 27 });
        let partitions = "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting. (TOO_MANY_PARTS)";
        assert_eq!(classify(&bad(partitions)), Failure::Permanent { code: 252 });
        assert_eq!(classify(&bad("62")), Failure::Permanent { code: 62 }, "the header code of an empty body");
        // merges lagging, overload, deployment errors, no code at all: retried
        for transient in [
            "Code: 252. DB::Exception: Too many parts (300) in table 'sendtrace.events'. Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            "Code: 159. DB::Exception: Timeout exceeded. (TIMEOUT_EXCEEDED)",
            "Code: 60. DB::Exception: Table sendtrace.events does not exist. (UNKNOWN_TABLE)",
            "Code: 16. DB::Exception: No such column foo in table sendtrace.events. (NO_SUCH_COLUMN_IN_TABLE)",
            "Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)",
            "Code: 164. DB::Exception: Cannot execute query in readonly mode. (READONLY)",
            "503 Service Unavailable",
            "Code: nonsense",
            "",
        ] {
            assert_eq!(classify(&bad(transient)), Failure::Transient, "{transient}");
        }
        assert_eq!(classify(&SinkError::ClickHouse(Error::TimedOut)), Failure::Transient);
        assert_eq!(classify(&SinkError::ClickHouse(Error::Network("connection refused".into()))), Failure::Transient);
        assert_eq!(code_name(62), Some("SYNTAX_ERROR"));
        assert_eq!(code_name(252), Some("TOO_MANY_PARTS"));
    }

    #[test]
    fn exception_code_parses_what_clickhouse_sends() {
        assert_eq!(exception_code("Code: 62. DB::Exception: x"), Some(62));
        assert_eq!(exception_code("row data...Code: 241. DB::Exception: y"), Some(241));
        assert_eq!(exception_code(" 53 "), Some(53));
        assert_eq!(exception_code("Code: . DB"), None);
        assert_eq!(exception_code("Code: 99999999999999999999. DB"), None);
        assert_eq!(exception_code("500 Internal Server Error"), None);
    }
}

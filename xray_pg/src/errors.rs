//! Turning engine errors into PostgreSQL errors with a proper SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raises an ERROR with the given five-character SQLSTATE. Never returns.
pub fn raise(sqlstate: &str, message: impl Into<String>) -> ! {
    ErrorReport::new(code(sqlstate), message.into(), "xray_pg").report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// SQLSTATE text → PostgreSQL's packed error code (MAKE_SQLSTATE).
fn code(sqlstate: &str) -> PgSqlErrorCode {
    let packed = sqlstate
        .bytes()
        .take(5)
        .enumerate()
        .fold(0i32, |acc, (i, ch)| acc + (((i32::from(ch) - i32::from(b'0')) & 0x3F) << (6 * i)));
    PgSqlErrorCode::from(packed)
}

pub fn raise_contract(err: &xray_engine::ContractError) -> ! {
    raise(err.sqlstate(), format!("invalid scan payload: {err}"))
}

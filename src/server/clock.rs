//! Wall-clock time as the APIs show it: RFC 3339 in UTC, and unix seconds for ordering.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Nanoseconds since the epoch, now: a fine-grained creation order for deployments.
pub fn unix_nanos() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// `secs` since the epoch as RFC 3339 UTC (`2026-11-28T17:35:19Z`).
pub fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

/// Parses RFC 3339 into unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339(&rfc3339(1_800_000_000)), Some(1_800_000_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}

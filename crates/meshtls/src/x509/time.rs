//! The one time codec of the crate: Unix seconds to and from [`SystemTime`] and rustls'
//! [`UnixTime`], RFC 5280 `UTCTime`/`GeneralizedTime` (the `Z` forms) to and from Unix seconds,
//! and RFC 3339 text (messages, and Kubernetes' `creationTimestamp`). Every other module converts
//! times through these functions, so a time before the epoch or past the year 9999 gets one
//! answer everywhere.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::UnixTime;

use super::der::{self, Reader, tag};
use crate::error::CaError;

/// Unix seconds of `t`, rounded towards the past (so that "now" is never in the future); a
/// time before the epoch is negative, one past `i64` saturates.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            -i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
        }
    }
}

/// The [`SystemTime`] of Unix seconds (negative: before the epoch).
pub(crate) fn system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

/// rustls' [`UnixTime`] of Unix seconds; it cannot hold a time before the epoch, which becomes
/// the epoch.
pub(crate) fn unix_time(unix: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(unix).unwrap_or(0)))
}

/// Unix seconds of rustls' [`UnixTime`] (saturating past `i64`).
pub(crate) fn unix_time_seconds(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// Reads RFC 3339 text (Kubernetes' `metav1.Time`, with any fraction and offset) as
/// nanoseconds since the Unix epoch; `None` when it is not RFC 3339.
pub(crate) fn parse_rfc3339_nanos(text: &str) -> Option<i128> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// RFC 3339 text (UTC, as Kubernetes writes it) of nanoseconds since the Unix epoch; a time
/// outside the years 0000 to 9999 is written as a count of nanoseconds.
pub(crate) fn format_rfc3339_nanos(nanos: i128) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{nanos}ns"))
}

/// Reads a UTCTime (`YYMMDDHHMMSSZ`, 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix
/// seconds; `what` names the field in errors.
pub(crate) fn read_time(r: &mut Reader<'_>, what: &'static str) -> Result<i64, String> {
    let (tag, value, _) = r.read_any()?;
    let digits = |s: &[u8]| -> Result<i64, String> {
        s.iter().try_fold(0i64, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(format!("{what}: malformed time"))
            }
        })
    };
    let (year, rest) = match (tag, value.len()) {
        (tag::UTC_TIME, 13) => {
            let yy = digits(&value[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (tag::GENERALIZED_TIME, 15) => (digits(&value[..4])?, &value[4..]),
        _ => {
            return Err(format!(
                "{what}: expected UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ"
            ));
        }
    };
    if rest[10] != b'Z' {
        return Err(format!("{what}: time must be in UTC (end in Z)"));
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!("{what}: date or time out of range"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A calendar date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

/// Unix seconds to the proleptic Gregorian calendar (the inverse of [`days_from_civil`]).
fn civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: month as u8,
        day: day as u8,
        hour: (secs / 3600) as u8,
        minute: (secs % 3600 / 60) as u8,
        second: (secs % 60) as u8,
    }
}

fn time_out_of_range(unix: i64) -> CaError {
    CaError::InvalidParam {
        param: "validity",
        value: unix.to_string(),
        rule: "a certificate time must fall in years 0000 to 9999".to_owned(),
    }
}

/// Appends an RFC 5280 time: UTCTime for 1950–2049, GeneralizedTime otherwise.
pub(crate) fn push_time(out: &mut Vec<u8>, unix: i64) -> Result<(), CaError> {
    let t = civil(unix);
    if !(0..=9999).contains(&t.year) {
        return Err(time_out_of_range(unix));
    }
    let two = |out: &mut Vec<u8>, v: u8| {
        out.push(b'0' + v / 10);
        out.push(b'0' + v % 10);
    };
    let year = t.year as u16;
    if (1950..2050).contains(&year) {
        out.extend_from_slice(&[tag::UTC_TIME, 13]);
        two(out, (year % 100) as u8);
    } else {
        out.extend_from_slice(&[tag::GENERALIZED_TIME, 15]);
        two(out, (year / 100) as u8);
        two(out, (year % 100) as u8);
    }
    two(out, t.month);
    two(out, t.day);
    two(out, t.hour);
    two(out, t.minute);
    two(out, t.second);
    out.push(b'Z');
    Ok(())
}

/// Size of an encoded time.
fn time_size(unix: i64) -> usize {
    // 1950-01-01T00:00:00Z and 2050-01-01T00:00:00Z.
    if (-631_152_000..2_524_608_000).contains(&unix) {
        15
    } else {
        17
    }
}

/// `Validity ::= SEQUENCE { notBefore, notAfter }`.
pub(crate) fn validity(not_before: i64, not_after: i64) -> Result<Vec<u8>, CaError> {
    let len = time_size(not_before) + time_size(not_after);
    let mut out = Vec::with_capacity(2 + len);
    der::header(&mut out, tag::SEQUENCE, len);
    push_time(&mut out, not_before)?;
    push_time(&mut out, not_after)?;
    Ok(out)
}

/// RFC 3339 text of a Unix time, for messages (whole seconds, `Z`); a time outside the years
/// 0000 to 9999 is written as seconds after the epoch.
pub(crate) fn fmt_time(secs: i64) -> String {
    let t = civil(secs);
    if (0..=9999).contains(&t.year) {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    } else {
        format!("{secs} s after the Unix epoch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1950, 1, 1), -7_305);
    }

    #[test]
    fn times_round_trip_across_the_utc_time_boundary() {
        for unix in [
            -631_152_000i64,
            0,
            1_700_000_000,
            2_524_607_999,
            2_524_608_000,
            4_102_444_800,
            253_402_300_798,
        ] {
            let enc = validity(unix, unix + 1).unwrap_or_default();
            let mut r = Reader::new(&enc);
            let mut v = Reader::new(r.read(tag::SEQUENCE).unwrap_or_default());
            assert_eq!(read_time(&mut v, "t"), Ok(unix));
            assert_eq!(read_time(&mut v, "t"), Ok(unix + 1));
        }
        // 2049-12-31T23:59:59Z is the last UTCTime; 2050 switches to GeneralizedTime.
        let mut out = Vec::new();
        push_time(&mut out, 2_524_607_999).unwrap_or_default();
        assert_eq!(out[0], tag::UTC_TIME);
        out.clear();
        push_time(&mut out, 2_524_608_000).unwrap_or_default();
        assert_eq!(out[0], tag::GENERALIZED_TIME);
    }

    #[test]
    fn civil_dates_agree_with_the_time_crate() {
        let mut unix: i64 = -62_167_219_200; // 0000-01-01
        while unix < 253_402_300_800 {
            let ours = civil(unix);
            let theirs = time::OffsetDateTime::from_unix_timestamp(unix)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            assert_eq!(ours.year, i64::from(theirs.year()), "{unix}");
            assert_eq!(ours.month, u8::from(theirs.month()), "{unix}");
            assert_eq!(ours.day, theirs.day(), "{unix}");
            assert_eq!(ours.hour, theirs.hour(), "{unix}");
            assert_eq!(ours.minute, theirs.minute(), "{unix}");
            assert_eq!(ours.second, theirs.second(), "{unix}");
            let fmt = theirs
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            if unix >= 0 {
                assert_eq!(fmt_time(unix), fmt, "{unix}");
            }
            // Decoding what we encode gives the same instant back.
            let mut enc = Vec::new();
            push_time(&mut enc, unix).unwrap_or_default();
            assert_eq!(read_time(&mut Reader::new(&enc), "t"), Ok(unix));
            unix += 86_399 * 3 + 7_777;
        }
        assert!(
            push_time(&mut Vec::new(), 253_402_300_800).is_err(),
            "year 10000"
        );
        assert!(
            push_time(&mut Vec::new(), -62_167_219_201).is_err(),
            "year -1"
        );
    }

    #[test]
    fn bad_times_are_refused() {
        for bad in [
            &b"\x17\x0d2402300000000Z"[..],
            b"\x17\x0d240230000000+",
            b"\x17\x0b2402280000Z",
            b"\x18\x0f20241301000000Z",
            b"\x17\x0d24022825000 Z",
        ] {
            assert!(read_time(&mut Reader::new(bad), "t").is_err(), "{bad:?}");
        }
    }
}

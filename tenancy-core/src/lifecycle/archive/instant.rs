//! Dates and times as an archive carries them: days since 1970 as a calendar date and back
//! (proleptic Gregorian), and a timestamp with an offset as the same instant in UTC, for the
//! targets that store no offset (a column without time zone, MySQL's `TIMESTAMP`).

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian (Hinnant's
/// `civil_from_days`).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day), proleptic Gregorian, as days since 1970-01-01 (Hinnant's
/// `days_from_civil`).
fn days(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `digits` as a number if it is only ASCII digits (and there are some).
fn number(digits: &str) -> Option<i64> {
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// An offset (`Z`, `±HH`, `±HHMM`, `±HH:MM`, `±HH:MM:SS`) in seconds east of UTC.
fn offset_seconds(offset: &str) -> Option<i64> {
    if offset.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &offset[1..];
    let parts: Vec<&str> = match rest.len() {
        4 if !rest.contains(':') => vec![&rest[..2], &rest[2..]],
        _ => rest.split(':').collect(),
    };
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let mut seconds = 0;
    for (part, unit) in parts.iter().zip([3_600, 60, 1]) {
        seconds += number(part)? * unit;
    }
    Some(sign * seconds)
}

/// A timestamp with an offset (`2024-02-29T01:15:00.25+05:30`, a space or `T` between date and
/// time, seconds and their fraction optional) as the same instant's date and time in UTC,
/// without offset (`2024-02-28T19:45:00.25`): what a column without time zone stores of an
/// instant. Text of another form (no offset, a year outside 1 to 9999, `infinity`, …) is
/// kept as it is, for the server to read or refuse.
pub(crate) fn utc(text: String) -> String {
    in_utc(&text).unwrap_or(text)
}

/// [`utc`]'s conversion; `None` for text of another form.
fn in_utc(text: &str) -> Option<String> {
    let text = text.trim();
    let (date, time) = text.split_at_checked(10)?;
    let time = time.strip_prefix(['T', 't', ' '])?;
    let at = time.find(['+', '-', 'Z', 'z'])?;
    let (clock, offset) = time.split_at(at);
    let offset = offset_seconds(offset)?;
    let (hms, fraction) = match clock.find('.') {
        Some(dot) => clock.split_at(dot),
        None => (clock, ""),
    };
    if fraction.len() > 1 && number(&fraction[1..]).is_none() {
        return None;
    }
    let mut fields = hms.split(':');
    let (hour, minute) = (number(fields.next()?)?, number(fields.next()?)?);
    let second = fields.next().map_or(Some(0), number)?;
    let mut ymd = date.split('-');
    let (year, month, day) = (
        number(ymd.next()?)?,
        number(ymd.next()?)?,
        number(ymd.next()?)?,
    );
    if fields.next().is_some() || ymd.next().is_some() || hour > 24 || minute > 59 || second > 60 {
        return None;
    }
    let (month, day) = (u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    let date = days(year, month, day);
    if civil(date) != (year, month, day) {
        return None; // no such day (`2024-02-30`, month 13)
    }
    let seconds = date * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    let (year, month, day) = civil(seconds.div_euclid(86_400));
    if !(1..=9999).contains(&year) {
        return None;
    }
    let clock = seconds.rem_euclid(86_400);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}",
        clock / 3_600,
        clock / 60 % 60,
        clock % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_convert_both_ways() {
        for d in [-719_468, -1, 0, 19_782, 2_932_896] {
            let (y, m, dd) = civil(d);
            assert_eq!(days(y, m, dd), d);
        }
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(days(1970, 1, 1), 0);
    }

    #[test]
    fn an_offset_becomes_the_same_instant_in_utc() {
        let utc = |t: &str| in_utc(t);
        for (given, expected) in [
            ("2024-02-29T01:15:00.25+05:30", "2024-02-28T19:45:00.25"),
            ("2024-02-28 20:15:00-08:00", "2024-02-29T04:15:00"),
            ("2024-12-31T23:30:00.000001Z", "2024-12-31T23:30:00.000001"),
            ("2023-03-01T00:00+0100", "2023-02-28T23:00:00"),
            ("2024-01-01T00:00:00+00", "2024-01-01T00:00:00"),
            ("2024-01-01T12:00:00-03:30:15", "2024-01-01T15:30:15"),
        ] {
            assert_eq!(utc(given).as_deref(), Some(expected), "{given}");
        }
        // Without an offset, or not a timestamp this reads: kept as it is by the caller.
        for other in [
            "2024-02-29T01:15:00",
            "infinity",
            "0044-03-15T12:00:00+00:00 BC",
            "0001-01-01T00:30:00+01:00",
            "2024-02-29T01:15:00+5:30",
            "2024-02-29T01:15:00.x+01:00",
            "2024-13-29T01:15:00+01:00",
            "2023-02-29T01:15:00+01:00",
            "2024-02-29T01:15:00+01:00x",
            "",
        ] {
            assert_eq!(utc(other), None, "{other}");
        }
    }
}

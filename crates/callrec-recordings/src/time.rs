//! UTC times as the API and the sidecars write them (RFC 3339), to and
//! from Unix milliseconds, without a time-zone database.

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads exactly `n` ASCII digits at the start of `s`.
fn digits(s: &[u8], n: usize) -> Option<u32> {
    let part = s.get(..n)?;
    part.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Unix milliseconds of `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`
/// (RFC 3339; `t` and a space are accepted for `T`, `z` for `Z`), years
/// 1970–9999. `None` for anything else.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    let s = text.as_bytes();
    let year = digits(s, 4)?;
    let month = digits(s.get(5..)?, 2)?;
    let day = digits(s.get(8..)?, 2)?;
    if s[4] != b'-' || s[7] != b'-' || !(1970..=9999).contains(&year) {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    let date_ms = days_from_civil(i64::from(year), month, day) * 86_400_000;
    if s.len() == 10 {
        return Some(date_ms);
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let hour = digits(s.get(11..)?, 2)?;
    let minute = digits(s.get(14..)?, 2)?;
    let second = digits(s.get(17..)?, 2)?;
    if s[13] != b':' || s[16] != b':' || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        for (i, &b) in fraction[..n.min(3)].iter().enumerate() {
            millis += i64::from(b - b'0') * [100, 10, 1][i];
        }
        rest = &fraction[n..];
    }
    let offset_ms = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if rest.len() == 6 && rest[3] == b':' => {
            let h = digits(&rest[1..], 2)?;
            let m = digits(&rest[4..], 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let ms = i64::from(h * 60 + m) * 60_000;
            if *sign == b'+' { ms } else { -ms }
        }
        _ => return None,
    };
    let secs = i64::from(hour * 3600 + minute * 60 + second.min(59));
    Some(date_ms + secs * 1000 + millis - offset_ms)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (or with `.mmm` when the milliseconds are not
/// zero) of Unix milliseconds.
pub fn format_time_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, frac) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    if frac == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{frac:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_times() {
        assert_eq!(parse_time_ms("1970-01-01"), Some(0));
        assert_eq!(
            parse_time_ms("2026-12-01T08:09:38Z"),
            Some(1_796_112_578_000)
        );
        assert_eq!(
            parse_time_ms("2026-12-01T10:09:38.5+02:00"),
            Some(1_796_112_578_500)
        );
        assert_eq!(parse_time_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(format_time_ms(1_796_112_578_000), "2026-12-01T08:09:38Z");
        assert_eq!(
            format_time_ms(1_796_112_578_007),
            "2026-12-01T08:09:38.007Z"
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2023-02-29",
            "2026-12-01T25:00:00Z",
            "2026-12-01T08:09:38",
            "2026-12-01T08:09:38+0200",
            "2026-12-01X08:09:38Z",
            "1969-12-31",
            "２０２６-12-01",
            "2026-12-01T08:09:38.Z",
        ] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in 0i64..253_402_300_799_999) {
            prop_assert_eq!(parse_time_ms(&format_time_ms(ms)), Some(ms));
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_time_ms(&text);
        }
    }
}

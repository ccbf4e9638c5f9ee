//! UTC times as the API and the sidecars write them (RFC 3339), to and
//! from Unix milliseconds, without a time-zone database (the calendar
//! arithmetic is callrec-file's `RecordTime`).

use callrec_file::RecordTime;

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
    if s[4] != b'-' || s[7] != b'-' || year < 1970 {
        return None;
    }
    let date = RecordTime::new(year as u16, month as u8, day as u8, 0, 0, 0).ok()?;
    let date_ms = date.to_unix_seconds()? as i64 * 1000;
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
    let ms = ms.clamp(0, 253_402_300_799_999);
    let t = RecordTime::from_unix_seconds((ms / 1000) as u64)
        .unwrap_or_else(|_| unreachable!("clamped to the year 9999"));
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match ms % 1000 {
        0 => format!("{date}Z"),
        frac => format!("{date}.{frac:03}Z"),
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

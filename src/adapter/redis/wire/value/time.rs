//! Time: the MessagePack timestamp extension read as milliseconds, and milliseconds
//! written as JavaScript writes a `Date` (`toISOString`, and `toString` in UTC).

use crate::adapter::redis::wire::WireError;

/// Milliseconds since the epoch of a MessagePack timestamp (32, 64 or 96 bit), truncated
/// toward zero as `new Date(ms)` does; `None` outside the range of a JavaScript `Date`.
pub(super) fn timestamp_ms(data: &[u8]) -> Result<Option<i64>, WireError> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(be_u32(data)), 0),
        8 => {
            let word = u64::from(be_u32(&data[..4])) << 32 | u64::from(be_u32(&data[4..]));
            ((word & 0x3_ffff_ffff) as i64, (word >> 34) as u32)
        }
        12 => {
            let mut secs = [0u8; 8];
            secs.copy_from_slice(&data[4..]);
            (i64::from_be_bytes(secs), be_u32(&data[..4]))
        }
        n => return Err(WireError::shape(format!("timestamp of {n} bytes"))),
    };
    if nanos >= 1_000_000_000 {
        return Err(WireError::shape("timestamp nanoseconds out of range"));
    }
    let whole = i128::from(secs) * 1000 + i128::from(nanos / 1_000_000);
    let ms = if whole < 0 && nanos % 1_000_000 != 0 {
        whole + 1
    } else {
        whole
    };
    // The range of a JavaScript Date: ±8.64e15 ms around the epoch.
    const LIMIT: i128 = 8_640_000_000_000_000;
    Ok((-LIMIT..=LIMIT).contains(&ms).then_some(ms as i64))
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time of `ms` since the epoch.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
    milli: i64,
}

fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
        hour: in_day / 3_600_000,
        minute: in_day / 60_000 % 60,
        second: in_day / 1000 % 60,
        milli: in_day % 1000,
    }
}

/// `ms` since the epoch as `Date.prototype.toISOString` writes it
/// (`1970-01-01T00:00:00.000Z`; six-digit signed years outside 0..=9999).
pub(in crate::adapter::redis::wire) fn iso_string(ms: i64) -> Option<String> {
    const LIMIT: i64 = 8_640_000_000_000_000;
    if !(-LIMIT..=LIMIT).contains(&ms) {
        return None;
    }
    let c = civil(ms);
    let year = if (0..=9999).contains(&c.year) {
        format!("{:04}", c.year)
    } else if c.year < 0 {
        format!("-{:06}", -c.year)
    } else {
        format!("+{:06}", c.year)
    };
    Some(format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.month, c.day, c.hour, c.minute, c.second, c.milli
    ))
}

/// `ms` since the epoch as JavaScript's `Date.prototype.toString` writes it in UTC,
/// which is what Node puts in a handshake's `time`.
pub(in crate::adapter::redis::wire) fn js_date_string(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(ms);
    format!(
        "{} {} {:02} {:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[c.weekday],
        MONTHS[(c.month as usize).saturating_sub(1) % 12],
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    #[test]
    fn timestamps_become_iso_strings_like_js_dates() {
        assert_eq!(timestamp_ms(&hex("00000000")), Ok(Some(0)));
        assert_eq!(iso_string(0).unwrap(), "1970-01-01T00:00:00.000Z");
        // 2000-06-13T00:00:00.000Z, the example in notepack.io's README.
        let ms = timestamp_ms(&hex("39457980")).unwrap().unwrap();
        assert_eq!(iso_string(ms).unwrap(), "2000-06-13T00:00:00.000Z");
        // timestamp 64: 1.5 s after the epoch.
        let word: u64 = (500_000_000u64 << 34) | 1;
        let ms = timestamp_ms(&word.to_be_bytes()).unwrap().unwrap();
        assert_eq!(iso_string(ms).unwrap(), "1970-01-01T00:00:01.500Z");
        // timestamp 96: 0.5 s before the epoch is -1 s + 500 ms.
        let mut data = 500_000_000u32.to_be_bytes().to_vec();
        data.extend_from_slice(&(-1i64).to_be_bytes());
        let ms = timestamp_ms(&data).unwrap().unwrap();
        assert_eq!(iso_string(ms).unwrap(), "1969-12-31T23:59:59.500Z");
        // Beyond a JS Date's range: null, not an error.
        let mut far = 0u32.to_be_bytes().to_vec();
        far.extend_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(timestamp_ms(&far), Ok(None));
        assert_eq!(
            iso_string(8_640_000_000_000_000).unwrap(),
            "+275760-09-13T00:00:00.000Z"
        );
        assert_eq!(
            iso_string(-62_198_755_200_000).unwrap(),
            "-000001-01-01T00:00:00.000Z"
        );
        assert!(timestamp_ms(&hex("0000")).is_err());
        // timestamp 64 with nanoseconds past one second.
        assert!(timestamp_ms(&hex("ffffffff00000000")).is_err());
    }

    #[test]
    fn js_date_string_matches_node_handshake_time() {
        // "Thu Nov 26 2026 00:17:06 GMT+0000 (Coordinated Universal Time)", issued 1795652226346.
        assert_eq!(
            js_date_string(1_795_652_226_346),
            "Thu Nov 26 2026 00:17:06 GMT+0000 (Coordinated Universal Time)"
        );
    }
}

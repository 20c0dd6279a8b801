//! The `drain_timeout = "…"` value: a whole number and a unit, read at
//! compile time so that a typo is a compile error on the literal, not a
//! panic when the program starts.

use std::time::Duration;

/// Parses `"500ms"`, `"2s"` or `"1m"`; the error is the message to show.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let invalid = || {
        format!(
            "invalid duration \"{text}\": expected a whole number and a unit, `ms`, `s` or `m` \
             (e.g. \"500ms\", \"2s\", \"1m\")"
        )
    };
    if number.is_empty() {
        return Err(invalid());
    }
    let n: u64 = number
        .parse()
        .map_err(|_| format!("duration \"{text}\" is too large"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration \"{text}\" is too large")),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_milliseconds_seconds_and_minutes() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("3m"), Ok(Duration::from_secs(180)));
    }

    #[test]
    fn rejects_a_missing_number_or_unit_and_anything_else() {
        for bad in [
            "", "ms", "5", "5 s", " 5s", "5sec", "1.5s", "-1s", "5h", "5S", "5s ",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("expected a whole number and a unit"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn rejects_what_does_not_fit_a_duration_instead_of_wrapping() {
        assert!(parse("99999999999999999999s")
            .unwrap_err()
            .contains("too large"));
        assert!(parse(&format!("{}m", u64::MAX))
            .unwrap_err()
            .contains("too large"));
        assert_eq!(
            parse(&format!("{}s", u64::MAX)),
            Ok(Duration::from_secs(u64::MAX))
        );
    }
}

//! The `time` condition of a policy: privacyIDEA's `Mon-Fri: 08:00-18:00, Sat: 10:00-12:00`,
//! in the host's local time.

use super::error::{PolicyError, TimeProblem};

/// One `Day-Day: HH:MM-HH:MM` entry of a `time` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimeRange {
    /// Monday = 0; `first > last` wraps over the week's end (`Fri-Mon`).
    first_day: u32,
    last_day: u32,
    /// Minutes since midnight, both included.
    from: u32,
    to: u32,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// privacyIDEA's `time` condition: comma-separated `Day[-Day]: HH:MM-HH:MM`.
pub(super) fn parse_time_ranges(text: &str) -> Result<Vec<TimeRange>, PolicyError> {
    let bad = |part: &str, problem| PolicyError::Time {
        part: part.to_owned(),
        problem,
    };
    let day = |d: &str, part: &str| {
        let d = d.trim().to_ascii_lowercase();
        DAYS.iter()
            .position(|x| *x == d)
            .map(|i| i as u32)
            .ok_or_else(|| bad(part, TimeProblem::NotADay(d)))
    };
    let minute = |t: &str, part: &str| {
        let (h, m) = t
            .trim()
            .split_once(':')
            .ok_or_else(|| bad(part, TimeProblem::NoColon))?;
        match (h.parse::<u32>(), m.parse::<u32>()) {
            (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
            _ => Err(bad(part, TimeProblem::NotATime(t.trim().to_owned()))),
        }
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (days, times) = part
            .split_once(": ")
            .or_else(|| {
                part.split_once(':')
                    .filter(|(d, _)| !d.contains(char::is_numeric))
            })
            .ok_or_else(|| bad(part, TimeProblem::NoDays))?;
        let (first_day, last_day) = match days.split_once('-') {
            Some((a, b)) => (day(a, part)?, day(b, part)?),
            None => {
                let d = day(days, part)?;
                (d, d)
            }
        };
        let (from, to) = times
            .split_once('-')
            .ok_or_else(|| bad(part, TimeProblem::NoRange))?;
        let (from, to) = (minute(from, part)?, minute(to, part)?);
        if from > to {
            return Err(bad(part, TimeProblem::Backwards));
        }
        out.push(TimeRange {
            first_day,
            last_day,
            from,
            to,
        });
    }
    Ok(out)
}

/// Whether the local time at `unix` falls in one of the ranges.
pub(super) fn in_time_ranges(ranges: &[TimeRange], unix: i64) -> bool {
    use chrono::{Datelike, TimeZone, Timelike};
    let Some(local) = chrono::Local.timestamp_opt(unix, 0).single() else {
        return false;
    };
    let day = local.weekday().num_days_from_monday();
    let minute = local.hour() * 60 + local.minute();
    ranges.iter().any(|r| {
        let day_ok = if r.first_day <= r.last_day {
            (r.first_day..=r.last_day).contains(&day)
        } else {
            day >= r.first_day || day <= r.last_day
        };
        day_ok && (r.from..=r.to).contains(&minute)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::{ctx, load};
    use crate::policy::Action;

    #[test]
    fn time_conditions_follow_the_local_week() {
        use chrono::TimeZone;
        let r = parse_time_ranges("Mon-Fri: 08:00-18:00, Sat: 10:00-12:30").unwrap();
        let at = |y, mo, d, h, mi| {
            chrono::Local
                .with_ymd_and_hms(y, mo, d, h, mi, 0)
                .single()
                .unwrap()
                .timestamp()
        };
        // 2026-11-23 is a Monday.
        assert!(in_time_ranges(&r, at(2026, 11, 23, 8, 0)));
        assert!(
            in_time_ranges(&r, at(2026, 11, 27, 18, 0)),
            "Friday, end included"
        );
        assert!(!in_time_ranges(&r, at(2026, 11, 27, 18, 1)));
        assert!(!in_time_ranges(&r, at(2026, 11, 23, 7, 59)));
        assert!(in_time_ranges(&r, at(2026, 11, 28, 12, 30)), "Saturday");
        assert!(!in_time_ranges(&r, at(2026, 11, 29, 11, 0)), "Sunday");
        let wrap = parse_time_ranges("Sat-Mon: 00:00-23:59").unwrap();
        assert!(in_time_ranges(&wrap, at(2026, 11, 29, 11, 0)));
        assert!(!in_time_ranges(&wrap, at(2026, 11, 25, 11, 0)), "Wednesday");
        for bad in [
            "Mon-Fri 08:00-18:00",
            "Mon-Fry: 08:00-18:00",
            "Mon: 8-18",
            "Mon: 18:00-08:00",
            "Mon: 24:00-24:30",
            "",
        ] {
            assert!(parse_time_ranges(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_time_ranges("Mon: 8-18").unwrap_err().to_string(),
            "time \"Mon: 8-18\": a time is HH:MM; write e.g. \"Mon-Fri: 08:00-18:00, Sat: \
             10:00-12:00\""
        );
        let p = load(
            "[[policy]]\nname = \"office\"\nscope = \"authentication\"\n\
             time = \"Mon-Fri: 08:00-18:00\"\nactions = { passOnNoToken = true }\n",
        )
        .unwrap();
        let mut c = ctx("sshd", None);
        assert_eq!(p.flag(Action::PassOnNoToken, &c), None, "no time, no match");
        c.now = Some(at(2026, 11, 23, 9, 0));
        assert_eq!(p.flag(Action::PassOnNoToken, &c), Some("office"));
        c.now = Some(at(2026, 11, 22, 9, 0));
        assert_eq!(p.flag(Action::PassOnNoToken, &c), None, "Sunday");
    }
}

//! When the weekly jobs run: a cron expression (with seconds: `0 0 2 * * Sat`) read in a
//! named time zone (`Asia/Tokyo`).
//!
//! The next run is computed here, by croner in the configured zone through chrono-tz, so
//! daylight-saving changes are honoured in any zone; the daemon then arms a one-shot
//! tokio-cron-scheduler job at that instant, and re-arms it after each run. (A cron job of
//! that scheduler fixes the zone's UTC offset once, when it is created, which would drift
//! across a DST change.)

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A cron expression with a seconds field, checked when read.
#[derive(Clone, Debug)]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl CronExpr {
    pub fn parse(text: &str) -> Result<Self, String> {
        CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map(|cron| Self { text: text.to_string(), cron })
            .map_err(|e| {
                format!("invalid schedule `{text}`: {e}; hint: six fields with seconds first, e.g. \"0 0 2 * * Sat\"")
            })
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An IANA time zone name, checked when read.
#[derive(Clone, Copy, Debug)]
pub struct Zone(pub Tz);

impl Zone {
    pub fn parse(text: &str) -> Result<Self, String> {
        text.parse::<Tz>()
            .map(Zone)
            .map_err(|_| format!("unknown time zone `{text}`; hint: an IANA name such as Asia/Tokyo"))
    }
}

macro_rules! checked_string {
    ($ty:ty, $expect:literal, $show:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        <$ty>::parse(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$ty) -> String = $show;
                s.serialize_str(&show(self))
            }
        }
    };
}

checked_string!(CronExpr, "a cron expression with seconds, such as \"0 0 2 * * Sat\"", |c| c.text.clone());
checked_string!(Zone, "a time zone name such as Asia/Tokyo", |z| z.0.name().to_string());

/// A moment of the week in the daemon's zone: `Sat 02:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekTime {
    /// Minutes since Monday 00:00.
    minute: u32,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl WeekTime {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid moment of the week `{text}`; hint: a day and a time, such as \"Sat 02:00\"");
        let (day, time) = text.trim().split_once(' ').ok_or_else(bad)?;
        let d = DAYS.iter().position(|x| x.eq_ignore_ascii_case(day)).ok_or_else(bad)? as u32;
        let (h, m) = time.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(WeekTime { minute: d * 1440 + h * 60 + m })
    }

    fn of<T: chrono::TimeZone>(t: &DateTime<T>) -> u32 {
        use chrono::{Datelike, Timelike};
        t.weekday().num_days_from_monday() * 1440 + t.hour() * 60 + t.minute()
    }
}

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (d, rest) = (self.minute / 1440, self.minute % 1440);
        write!(f, "{} {:02}:{:02}", DAYS[d as usize], rest / 60, rest % 60)
    }
}

checked_string!(WeekTime, "a day and a time, such as \"Sat 02:00\"", |w| w.to_string());

/// When maintenance may change accounts: from `from` to `to` (inclusive, to the end of that
/// minute), in the daemon's zone; it may wrap around the end of the week.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub from: WeekTime,
    pub to: WeekTime,
}

impl Default for Window {
    fn default() -> Self {
        Window { from: WeekTime { minute: 5 * 1440 + 120 }, to: WeekTime { minute: 6 * 1440 + 23 * 60 + 59 } }
    }
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>, zone: Zone) -> bool {
        let m = WeekTime::of(&t.with_timezone(&zone.0));
        let (a, b) = (self.from.minute, self.to.minute);
        if a <= b {
            a <= m && m <= b
        } else {
            m >= a || m <= b
        }
    }
}

/// A cron expression in a time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub cron: CronExpr,
    pub zone: Zone,
}

impl Schedule {
    /// The first run strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.zone.0);
        self.cron.cron.find_next_occurrence(&local, false).ok().map(|n| n.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, TimeZone, Timelike, Weekday};

    fn saturday_two_am_tokyo() -> Schedule {
        Schedule { cron: CronExpr::parse("0 0 2 * * Sat").unwrap(), zone: Zone::parse("Asia/Tokyo").unwrap() }
    }

    #[test]
    fn saturday_two_am_in_tokyo_is_friday_five_pm_utc_all_year() {
        let s = saturday_two_am_tokyo();
        // Every day of 2027, through the DST changes of Europe and America: always Friday 17:00 UTC,
        // within the coming week.
        let mut t = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
        let mut runs = 0;
        while t < end {
            let n = s.next_after(t).unwrap();
            assert_eq!((n.weekday(), n.hour(), n.minute(), n.second()), (Weekday::Fri, 17, 0, 0), "after {t}: {n}");
            assert!(n > t && n - t <= Duration::days(7), "after {t}: {n}");
            t += Duration::hours(13);
            runs += 1;
        }
        assert!(runs > 600);
        // Exactly at a run, the next one is a week later.
        let at = Utc.with_ymd_and_hms(2027, 3, 26, 17, 0, 0).unwrap();
        assert_eq!(s.next_after(at).unwrap(), at + Duration::days(7));
    }

    #[test]
    fn zones_with_daylight_saving_keep_local_time() {
        let s =
            Schedule { cron: CronExpr::parse("0 0 2 * * Sat").unwrap(), zone: Zone::parse("Europe/Berlin").unwrap() };
        let winter = s.next_after(Utc.with_ymd_and_hms(2027, 1, 4, 0, 0, 0).unwrap()).unwrap();
        let summer = s.next_after(Utc.with_ymd_and_hms(2027, 7, 5, 0, 0, 0).unwrap()).unwrap();
        assert_eq!(winter.hour(), 1, "{winter}");
        assert_eq!(summer.hour(), 0, "{summer}");
    }

    #[test]
    fn the_default_window_is_the_weekend_in_tokyo() {
        let w = Window::default();
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        assert_eq!((w.from.to_string(), w.to.to_string()), ("Sat 02:00".into(), "Sun 23:59".into()));
        // 2026-12-05 is a Saturday: 02:00 JST is Friday 17:00 UTC.
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        assert!(!w.contains(at(4, 16, 59), tokyo), "Saturday 01:59 JST");
        assert!(w.contains(at(4, 17, 0), tokyo), "Saturday 02:00 JST");
        assert!(w.contains(at(6, 14, 59), tokyo), "Sunday 23:59 JST");
        assert!(!w.contains(at(6, 15, 0), tokyo), "Monday 00:00 JST");
        assert!(!w.contains(at(2, 3, 0), tokyo), "a Wednesday");
        // A window across the end of the week.
        let late = Window { from: WeekTime::parse("Sun 22:00").unwrap(), to: WeekTime::parse("mon 01:30").unwrap() };
        let utc = Zone::parse("UTC").unwrap();
        assert!(late.contains(at(6, 23, 0), utc) && late.contains(at(7, 1, 30), utc));
        assert!(!late.contains(at(7, 1, 31), utc));
        assert!(WeekTime::parse("Saturday 2am").unwrap_err().contains("Sat 02:00"));
        assert!(WeekTime::parse("Sat 24:00").is_err());
    }

    #[test]
    fn bad_schedules_and_zones_are_explained() {
        assert!(CronExpr::parse("0 2 * * Sat").unwrap_err().contains("six fields"));
        assert!(Zone::parse("Asia/Tokio").unwrap_err().contains("Asia/Tokyo"));
    }
}

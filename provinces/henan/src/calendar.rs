//! 工作日历: working days for the deadlines of 濮阳规程 第二十六条 ("在收到乙方交易结果5个工作日内，
//! 完成核对工作。如发现错误，应在3个工作日内通知乙方").
//!
//! A working day is Monday to Friday, except the public holidays of the State Council's notice
//! for that year, plus its adjusted workdays (调休上班, a Saturday or Sunday). The calendar is
//! data (`data/calendar.toml`, extendable from a file); a date in a year the calendar does not
//! cover is refused rather than guessed.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The calendar shipped with the crate.
pub const BUILTIN: &str = include_str!("../data/calendar.toml");

/// Why a calendar cannot be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("工作日历无法解析：{0} (calendar cannot be parsed: {0})")]
    Parse(String),
    #[error("工作日历{year}年：{reason} (calendar year {year}: {reason})")]
    Invalid { year: i32, reason: String },
    #[error(
        "工作日历未包含{0}年的放假安排，无法计算工作日；请在日历数据中补充国务院办公厅的通知 (the calendar does not cover {0})"
    )]
    YearNotCovered(i32),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    #[serde(default)]
    year: Vec<YearSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearSpec {
    year: i32,
    source: String,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

/// One year of the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearRule {
    /// The notice the year comes from, e.g. `国办发明电〔2022〕16号`.
    pub source: String,
    pub holidays: BTreeSet<NaiveDate>,
    /// Adjusted workdays (调休上班): weekend days that are working days.
    pub workdays: BTreeSet<NaiveDate>,
}

/// The working-day calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    years: BTreeMap<i32, YearRule>,
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn parse_date(year: i32, s: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| CalendarError::Invalid {
        year,
        reason: format!("日期「{s}」应为 YYYY-MM-DD"),
    })
}

impl WorkCalendar {
    /// The calendar shipped with the crate.
    pub fn builtin() -> Result<WorkCalendar, CalendarError> {
        WorkCalendar::parse(BUILTIN)
    }

    /// Parse a calendar file (`[[year]]` tables, see `data/calendar.toml`). Checks that every
    /// date lies in its year, that an adjusted workday is a weekend day and that no date is
    /// both a holiday and a workday.
    pub fn parse(text: &str) -> Result<WorkCalendar, CalendarError> {
        let file: CalendarFile =
            toml::from_str(text).map_err(|e| CalendarError::Parse(e.to_string()))?;
        let mut years = BTreeMap::new();
        for y in file.year {
            let year = y.year;
            let invalid = |reason: String| CalendarError::Invalid { year, reason };
            let mut holidays = BTreeSet::new();
            for h in &y.holidays {
                let (a, b) = match h.split_once("..") {
                    Some((a, b)) => (parse_date(year, a)?, parse_date(year, b)?),
                    None => {
                        let d = parse_date(year, h)?;
                        (d, d)
                    }
                };
                if b < a {
                    return Err(invalid(format!("假期「{h}」起止颠倒")));
                }
                let mut d = a;
                while d <= b {
                    holidays.insert(d);
                    d = d + Days::new(1);
                }
            }
            let mut workdays = BTreeSet::new();
            for w in &y.workdays {
                let d = parse_date(year, w)?;
                if !is_weekend(d) {
                    return Err(invalid(format!("调休上班日{d}不是周六或周日")));
                }
                workdays.insert(d);
            }
            if let Some(d) = holidays
                .iter()
                .chain(workdays.iter())
                .find(|d| d.year() != year)
            {
                return Err(invalid(format!("{d}不在{year}年内")));
            }
            if let Some(d) = holidays.intersection(&workdays).next() {
                return Err(invalid(format!("{d}既是假日又是调休上班日")));
            }
            if years
                .insert(
                    year,
                    YearRule {
                        source: y.source,
                        holidays,
                        workdays,
                    },
                )
                .is_some()
            {
                return Err(invalid("重复出现".into()));
            }
        }
        Ok(WorkCalendar { years })
    }

    /// Add the years of `other`, replacing years both have.
    pub fn merged(mut self, other: WorkCalendar) -> WorkCalendar {
        self.years.extend(other.years);
        self
    }

    /// The years covered, with their sources.
    pub fn years(&self) -> impl Iterator<Item = (i32, &YearRule)> {
        self.years.iter().map(|(y, r)| (*y, r))
    }

    fn year(&self, y: i32) -> Result<&YearRule, CalendarError> {
        self.years.get(&y).ok_or(CalendarError::YearNotCovered(y))
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        let y = self.year(d.year())?;
        Ok(if y.workdays.contains(&d) {
            true
        } else {
            !is_weekend(d) && !y.holidays.contains(&d)
        })
    }

    /// The `n`-th working day after `start` (`start` itself not counted): the last day of a
    /// "within n working days" period that starts on `start`.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d + Days::new(1);
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }

    /// Working days in `(from, to]`; zero when `to <= from`.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d + Days::new(1);
            if self.is_working_day(d)? {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn builtin_calendar_is_valid_and_covers_2022_to_2026() {
        let c = WorkCalendar::builtin().unwrap();
        let years: Vec<i32> = c.years().map(|(y, _)| y).collect();
        assert_eq!(years, [2022, 2023, 2024, 2025, 2026]);
    }

    #[test]
    fn holidays_and_adjusted_workdays() {
        let c = WorkCalendar::builtin().unwrap();
        // 劳动节 2023: 4月29日至5月3日放假，4月23日（星期日）、5月6日（星期六）上班.
        assert!(!c.is_working_day(d("2023-05-02")).unwrap());
        assert!(c.is_working_day(d("2023-05-06")).unwrap());
        assert!(c.is_working_day(d("2023-04-23")).unwrap());
        assert!(!c.is_working_day(d("2023-05-07")).unwrap());
        assert!(c.is_working_day(d("2023-05-04")).unwrap());
        // Received on Friday 2023-04-28: the 5 working days are 5/4, 5/5, 5/6 (调休), 5/8, 5/9.
        assert_eq!(
            c.add_working_days(d("2023-04-28"), 5).unwrap(),
            d("2023-05-09")
        );
        // Plain weeks: Saturday 2023-05-20 + 5 = Friday 2023-05-26; + 3 = Wednesday 5/24.
        assert_eq!(
            c.add_working_days(d("2023-05-20"), 5).unwrap(),
            d("2023-05-26")
        );
        assert_eq!(
            c.add_working_days(d("2023-05-20"), 3).unwrap(),
            d("2023-05-24")
        );
        assert_eq!(
            c.working_days_between(d("2023-05-20"), d("2023-05-26"))
                .unwrap(),
            5
        );
        assert_eq!(
            c.working_days_between(d("2023-05-26"), d("2023-05-20"))
                .unwrap(),
            0
        );
        // 国庆 2026: 10月1日至7日放假，10月10日（星期六）上班.
        assert_eq!(
            c.add_working_days(d("2026-09-30"), 3).unwrap(),
            d("2026-10-10")
        );
    }

    #[test]
    fn uncovered_years_are_refused() {
        let c = WorkCalendar::builtin().unwrap();
        assert_eq!(
            c.add_working_days(d("2026-12-28"), 5),
            Err(CalendarError::YearNotCovered(2027))
        );
        assert_eq!(
            c.is_working_day(d("2019-01-02")),
            Err(CalendarError::YearNotCovered(2019))
        );
    }

    #[test]
    fn bad_data_is_refused_and_years_can_be_added() {
        let weekday_workday =
            "[[year]]\nyear = 2027\nsource = \"x\"\nworkdays = [\"2027-01-05\"]\n";
        assert!(matches!(
            WorkCalendar::parse(weekday_workday),
            Err(CalendarError::Invalid { year: 2027, .. })
        ));
        let wrong_year = "[[year]]\nyear = 2027\nsource = \"x\"\nholidays = [\"2026-01-05\"]\n";
        assert!(WorkCalendar::parse(wrong_year).is_err());
        assert!(matches!(
            WorkCalendar::parse("[[year]]\nyear = 2027\n"),
            Err(CalendarError::Parse(_))
        ));
        let y2027 = "[[year]]\nyear = 2027\nsource = \"假设\"\nholidays = [\"2027-01-01\"]\n";
        let c = WorkCalendar::builtin()
            .unwrap()
            .merged(WorkCalendar::parse(y2027).unwrap());
        assert_eq!(
            c.add_working_days(d("2026-12-28"), 5).unwrap(),
            d("2027-01-05")
        );
    }
}

//! Dates as the Chinese web writes them, read in the source's time zone and stored in UTC.
//!
//! Forum and complaint pages rarely write RFC 3339: they write `2024-01-02 10:00:00`,
//! `2024年1月2日 10:00`, `01-02 10:00` (this year), `3分钟前`, `昨天 10:00`. Relative forms
//! are relative to when the page was fetched, not to when it is parsed, so a replay reads the
//! same dates. And a date a day in the future or before 2000 is a lie (a bad clock, a template
//! default, a unix 0): it is replaced by the fetch time, so the post still counts, when we saw it.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};

/// The zone a source writes its local times in: an IANA name or a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Default for Zone {
    /// Most sources this daemon reads are Chinese: China Standard Time.
    fn default() -> Zone {
        Zone::Named(chrono_tz::Asia::Shanghai)
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Named(tz) => write!(f, "{}", tz.name()),
            Zone::Fixed(offset) => write!(f, "{offset}"),
        }
    }
}

impl Zone {
    /// `Asia/Shanghai`, `UTC`, or an offset such as `+08:00` / `-05:30`.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let text = text.trim();
        if let Some(sign) = text.chars().next().filter(|c| *c == '+' || *c == '-') {
            let (h, m) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
            let offset = match (h.parse::<i32>(), m.parse::<i32>()) {
                (Ok(h), Ok(m)) if h <= 14 && m < 60 => {
                    (h * 3600 + m * 60) * if sign == '-' { -1 } else { 1 }
                }
                _ => {
                    return Err(format!(
                        "invalid UTC offset {text:?}; write it like \"+08:00\""
                    ))
                }
            };
            return FixedOffset::east_opt(offset)
                .map(Zone::Fixed)
                .ok_or_else(|| format!("invalid UTC offset {text:?}"));
        }
        text.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone {text:?}; write an IANA name like \"Asia/Shanghai\" or an offset like \"+08:00\"")
        })
    }

    /// The UTC instant of a local wall-clock time. In a DST gap or fold the earlier reading wins.
    pub fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Named(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
            Zone::Fixed(offset) => offset
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The local calendar date at a UTC instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            Zone::Named(tz) => at.with_timezone(tz).date_naive(),
            Zone::Fixed(offset) => at.with_timezone(offset).date_naive(),
        }
    }
}

/// Reads a date as written by a feed, page or API, in `zone`, relative forms against
/// `fetched_at`. None when nothing in it reads as a date.
pub fn parse_date(text: &str, zone: Zone, fetched_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = strip_label(text.trim());
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    if text.len() >= 9 && text.bytes().all(|b| b.is_ascii_digit()) {
        return unix(text.parse().ok()?);
    }
    if let Some(t) = relative(text, fetched_at) {
        return Some(t);
    }
    let today = zone.local_date(fetched_at);
    for (word, days_back) in [("今天", 0), ("昨天", 1), ("前天", 2)] {
        if let Some(rest) = text.strip_prefix(word) {
            let rest = rest.trim();
            let time = match rest.is_empty() {
                true => NaiveTime::MIN,
                false => clock(rest)?,
            };
            return zone.to_utc((today - Duration::days(days_back)).and_time(time));
        }
    }
    if let Some(time) = clock(text) {
        return zone.to_utc(today.and_time(time));
    }
    let (year, month, day, time) = calendar(text)?;
    let time = time.unwrap_or(NaiveTime::MIN);
    match year {
        Some(year) => zone.to_utc(NaiveDate::from_ymd_opt(year, month, day)?.and_time(time)),
        // "01-02 10:00" is this year's, unless that is still ahead: then it was last year's
        // (a page read on 1 January showing 12-31).
        None => {
            let this_year =
                zone.to_utc(NaiveDate::from_ymd_opt(today.year(), month, day)?.and_time(time))?;
            if this_year > fetched_at + Duration::days(1) {
                zone.to_utc(NaiveDate::from_ymd_opt(today.year() - 1, month, day)?.and_time(time))
            } else {
                Some(this_year)
            }
        }
    }
}

/// A unix time in seconds, or in milliseconds (what JavaScript APIs send) when too large for
/// seconds of this era.
pub fn unix(value: i64) -> Option<DateTime<Utc>> {
    if value.abs() >= 100_000_000_000 {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    }
}

/// The date to store for a post: `date` unless it is more than a day ahead of the fetch or
/// before 2000, which is logged and replaced by the fetch time.
pub fn checked(
    source: &str,
    date: Option<DateTime<Utc>>,
    fetched_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let date = date?;
    let floor = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single()?;
    if date > fetched_at + Duration::days(1) || date < floor {
        tracing::info!(
            source,
            date = %date.to_rfc3339(),
            fetched_at = %fetched_at.to_rfc3339(),
            "implausible post date (more than a day ahead, or before 2000): using the fetch time"
        );
        return Some(fetched_at);
    }
    Some(date)
}

/// Drops a leading label such as `发布于` or `发表时间：`.
fn strip_label(text: &str) -> &str {
    let mut text = text;
    for label in [
        "发布时间",
        "发表时间",
        "更新时间",
        "时间",
        "发布于",
        "发表于",
        "更新于",
        "于",
    ] {
        if let Some(rest) = text.strip_prefix(label) {
            text = rest.trim_start_matches([':', '：', ' ']);
            break;
        }
    }
    text.trim()
}

/// `刚刚`, `30秒前`, `3分钟前`, `2小时前`, `5天前`.
fn relative(text: &str, fetched_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if text == "刚刚" {
        return Some(fetched_at);
    }
    let rest = text.strip_suffix("前")?.trim();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let n: i64 = rest[..digits_end].parse().ok()?;
    let unit = rest[digits_end..].trim();
    let ago = match unit {
        "秒" | "秒钟" => Duration::seconds(n),
        "分钟" | "分" => Duration::minutes(n),
        "小时" | "个小时" => Duration::hours(n),
        "天" => Duration::days(n),
        "周" | "星期" => Duration::weeks(n),
        _ => return None,
    };
    Some(fetched_at - ago)
}

/// `10:00` or `10:00:30`.
fn clock(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match parts.as_slice() {
        [h, m] => NaiveTime::from_hms_opt(number(h)?, number(m)?, 0),
        [h, m, s] => NaiveTime::from_hms_opt(number(h)?, number(m)?, number(s)?),
        _ => None,
    }
}

/// `2024-01-02 10:00:00`, `2024/1/2 10:00`, `2024.01.02`, `2024年1月2日 10:00`, `01-02 10:00`,
/// `1月2日`: the year (when written), month, day and time (when written).
fn calendar(text: &str) -> Option<(Option<i32>, u32, u32, Option<NaiveTime>)> {
    let normalized: String = text
        .chars()
        .map(|c| match c {
            '年' | '月' | '/' | '.' => '-',
            '日' | '号' | 'T' => ' ',
            c => c,
        })
        .collect();
    let mut words = normalized.split_whitespace();
    let date = words.next()?.trim_end_matches('-');
    let time = match words.next() {
        Some(t) => Some(clock(t)?),
        None => None,
    };
    let fields: Vec<u32> = date
        .split('-')
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    match fields.as_slice() {
        [y, m, d] if *y >= 1000 => Some((Some(*y as i32), *m, *d, time)),
        [m, d] => Some((None, *m, *d, time)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-05 12:00 in Beijing.
    fn fetched() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, 4, 0, 0).unwrap()
    }

    fn read(text: &str) -> Option<String> {
        parse_date(text, Zone::default(), fetched()).map(|t| t.to_rfc3339())
    }

    #[test]
    fn chinese_absolute_forms_are_read_in_beijing_time() {
        assert_eq!(
            read("2024-01-02 10:00:00").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("2024年1月2日 10:00").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("2024/01/02 10:00").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("发布于 2024-01-02").as_deref(),
            Some("2024-01-01T16:00:00+00:00")
        );
        assert_eq!(
            read("01-02 10:00").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("1月2日 10:00").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
    }

    #[test]
    fn a_month_and_day_still_ahead_belong_to_last_year() {
        assert_eq!(
            read("12-31 23:00").as_deref(),
            Some("2023-12-31T15:00:00+00:00")
        );
    }

    #[test]
    fn relative_forms_count_back_from_the_fetch() {
        assert_eq!(
            read("3分钟前").as_deref(),
            Some("2024-03-05T03:57:00+00:00")
        );
        assert_eq!(
            read("2小时前").as_deref(),
            Some("2024-03-05T02:00:00+00:00")
        );
        assert_eq!(read("刚刚").as_deref(), Some("2024-03-05T04:00:00+00:00"));
        assert_eq!(
            read("昨天 10:00").as_deref(),
            Some("2024-03-04T02:00:00+00:00")
        );
        assert_eq!(
            read("今天 10:00").as_deref(),
            Some("2024-03-05T02:00:00+00:00")
        );
        assert_eq!(
            read("前天 23:30").as_deref(),
            Some("2024-03-03T15:30:00+00:00")
        );
        assert_eq!(read("10:00").as_deref(), Some("2024-03-05T02:00:00+00:00"));
    }

    #[test]
    fn today_is_the_sources_day_not_utcs() {
        // 2024-03-05 20:00 UTC is already 6 March in Beijing, still 5 March in New York.
        let late = Utc.with_ymd_and_hms(2024, 3, 5, 20, 0, 0).unwrap();
        let beijing = parse_date("今天 01:00", Zone::default(), late).unwrap();
        assert_eq!(beijing.to_rfc3339(), "2024-03-05T17:00:00+00:00");
        let new_york = Zone::parse("America/New_York").unwrap();
        let ny = parse_date("今天 01:00", new_york, late).unwrap();
        assert_eq!(ny.to_rfc3339(), "2024-03-05T06:00:00+00:00");
        let fixed = Zone::parse("+09:00").unwrap();
        assert_eq!(
            parse_date("2024-01-02 10:00", fixed, late)
                .unwrap()
                .to_rfc3339(),
            "2024-01-02T01:00:00+00:00"
        );
    }

    #[test]
    fn standard_forms_and_unix_times() {
        assert_eq!(
            read("2024-01-02T10:00:00+08:00").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("Tue, 02 Jan 2024 02:00:00 GMT").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("1704160800").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
        assert_eq!(
            read("1704160800000").as_deref(),
            Some("2024-01-02T02:00:00+00:00")
        );
    }

    #[test]
    fn non_dates_are_none() {
        for text in [
            "",
            "度小满",
            "13-45 10:00",
            "2024-02-30",
            "25:00",
            "3个月前x",
            "昨天 99:00",
        ] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }

    #[test]
    fn future_and_ancient_dates_become_the_fetch_time() {
        let now = fetched();
        let ok = now - Duration::hours(5);
        assert_eq!(checked("s", Some(ok), now), Some(ok));
        let soon = now + Duration::hours(20);
        assert_eq!(
            checked("s", Some(soon), now),
            Some(soon),
            "within a day: clocks differ"
        );
        assert_eq!(checked("s", Some(now + Duration::days(2)), now), Some(now));
        let ancient = Utc.with_ymd_and_hms(1999, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(checked("s", Some(ancient), now), Some(now));
        assert_eq!(checked("s", Some(DateTime::UNIX_EPOCH), now), Some(now));
        assert_eq!(checked("s", None, now), None);
    }

    #[test]
    fn zones_are_parsed_or_refused() {
        assert_eq!(Zone::parse("+08:00").unwrap().to_string(), "+08:00");
        assert_eq!(Zone::parse("Asia/Shanghai").unwrap(), Zone::default());
        assert!(Zone::parse("Mars/Olympus")
            .unwrap_err()
            .contains("Mars/Olympus"));
        assert!(Zone::parse("+25:00").is_err());
    }
}

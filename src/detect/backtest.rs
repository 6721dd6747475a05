//! `yuqing backtest`: the spike test over a count series read from CSV, one JSON line per alarm.
//!
//! The CSV has a header line, then `timestamp,value` rows: the timestamp `YYYY-MM-DD HH:MM:SS`
//! in UTC (fractional seconds allowed), the value a number ≥ 0; rows in time order. Any other
//! row is an error naming its line, because a silently skipped row would change the figures.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use super::spike::{detect, Alarm, SpikeConfig};

/// A CSV row that cannot be read, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RowError {}

/// Reads `timestamp,value` rows. The first line is the header and is not read as data; blank
/// lines are skipped.
pub fn read_series(text: &str) -> Result<Vec<(DateTime<Utc>, f64)>, RowError> {
    let mut series: Vec<(DateTime<Utc>, f64)> = Vec::new();
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if !header.trim().is_empty() => {
            if header.split(',').count() < 2 {
                return Err(RowError {
                    line: 1,
                    message: format!("expected a header like `timestamp,value`, found {header:?}"),
                });
            }
        }
        _ => {
            return Err(RowError {
                line: 1,
                message: "empty file: expected a header like `timestamp,value`".into(),
            })
        }
    }
    for (i, row) in lines {
        let line = i + 1;
        let row = row.trim_end_matches('\r');
        if row.trim().is_empty() {
            continue;
        }
        let err = |message: String| RowError { line, message };
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != 2 {
            return Err(err(format!(
                "expected 2 columns (timestamp,value), found {}: {row:?}",
                fields.len()
            )));
        }
        let at = parse_time(fields[0]).ok_or_else(|| {
            err(format!(
                "bad timestamp {:?}: expected YYYY-MM-DD HH:MM:SS (UTC)",
                fields[0]
            ))
        })?;
        let value: f64 = fields[1]
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| err(format!("bad value {:?}: expected a number >= 0", fields[1])))?;
        if let Some(&(before, _)) = series.last() {
            if at < before {
                return Err(err(format!(
                    "out of time order: {} comes after {}",
                    fields[0],
                    before.format("%Y-%m-%d %H:%M:%S")
                )));
            }
        }
        series.push((at, value));
    }
    Ok(series)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// The alarms of the spike test over the CSV `text`.
pub fn run(text: &str, cfg: &SpikeConfig) -> Result<Vec<Alarm>, RowError> {
    Ok(detect(&read_series(text)?, cfg))
}

/// One output line: `{"at", "window", "count", "expected", "p"}`, plus `"series"` when given.
pub fn alarm_json(alarm: &Alarm, series: Option<&str>) -> serde_json::Value {
    let mut line = json!({
        "at": alarm.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "window": humantime::format_duration(alarm.window).to_string(),
        "count": round(alarm.count, 3),
        "expected": round(alarm.expected, 3),
        "p": alarm.p,
    });
    if let Some(name) = series {
        line["series"] = json!(name);
    }
    line
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five days of 5-minute rows, 10–12 a bin, and 200 at 2026-01-09 06:00.
    fn fixture() -> String {
        let start = NaiveDateTime::parse_from_str("2026-01-05 00:00:00", "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
        let mut csv = String::from("timestamp,value\n");
        for i in 0..5 * 288 {
            let at = start + chrono::Duration::minutes(5 * i);
            let value = if i == 4 * 288 + 72 { 200 } else { 10 + i % 3 };
            csv.push_str(&format!("{},{value}\n", at.format("%Y-%m-%d %H:%M:%S")));
        }
        csv
    }

    #[test]
    fn the_fixture_gives_one_alarm_line() {
        let alarms = run(&fixture(), &SpikeConfig::default()).unwrap();
        let lines: Vec<serde_json::Value> = alarms
            .iter()
            .map(|a| alarm_json(a, Some("fixture")))
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["at"], "2026-01-09 06:05:00");
        assert_eq!(line["window"], "15m");
        assert_eq!(line["series"], "fixture");
        assert!(line["count"].as_f64().unwrap() >= 200.0);
        let expected = line["expected"].as_f64().unwrap();
        assert!((30.0..36.0).contains(&expected), "{expected}");
        assert!(line["p"].as_f64().unwrap() < 1e-8);
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["at", "count", "expected", "p", "series", "window"]);
    }

    #[test]
    fn rows_are_read_with_fractional_seconds_and_blank_lines() {
        let csv = "timestamp,value\n2015-02-26 21:42:53.000000,104\n\n2015-02-26 21:47:53,2.5\n";
        let series = read_series(csv).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[1].1, 2.5);
    }

    fn error(csv: &str) -> RowError {
        read_series(csv).unwrap_err()
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let head = "timestamp,value\n2026-01-05 00:00:00,1\n";
        let e = error(&format!("{head}2026-01-05 00:05,2\n"));
        assert_eq!(e.line, 3);
        assert!(e.message.contains("bad timestamp"), "{e}");
        let e = error(&format!("{head}2026-01-05 00:05:00,many\n"));
        assert_eq!(e.line, 3);
        assert!(e.message.contains("bad value"), "{e}");
        let e = error(&format!("{head}2026-01-05 00:05:00,-1\n"));
        assert!(e.message.contains("bad value"), "{e}");
        let e = error(&format!("{head}\n2026-01-05 00:05:00\n"));
        assert_eq!(e.line, 4);
        assert!(e.message.contains("expected 2 columns"), "{e}");
        let e = error(&format!("{head}2026-01-04 23:55:00,3\n"));
        assert_eq!(e.line, 3);
        assert!(e.message.contains("out of time order"), "{e}");
        assert_eq!(e.to_string().split(':').next(), Some("line 3"));
        assert_eq!(error("").line, 1);
        assert_eq!(error("just-one-column\n").line, 1);
    }
}

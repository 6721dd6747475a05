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

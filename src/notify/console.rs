//! The console sink: used when no bot token or chat is configured, so a fresh install still
//! shows its alerts somewhere a person will see them.

use std::io::Write;

pub fn print(text: &str) {
    tracing::warn!(target: "yuqing::alert", "{}", text.replace('\n', " | "));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A closed stdout (daemon under a supervisor that dropped it) must not kill alerting; the
    // log line above still carries the alert.
    let _ = writeln!(out, "{text}\n");
    let _ = out.flush();
}

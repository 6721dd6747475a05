//! The console sink: used when no bot token or chat is configured, so a fresh install still
//! shows its alerts somewhere a person will see them.
//!
//! An alert goes to stdout once, whole. It is not copied into the log as well: on a terminal
//! both streams show, and under systemd both land in the same journal, so a copy would be read
//! twice. Only when stdout is gone does the log carry it instead.

use std::io::Write;

pub fn print(text: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = writeln!(out, "{text}\n").and_then(|()| out.flush());
    if let Err(e) = written {
        // A closed stdout (a supervisor that dropped it) must not silence alerting.
        tracing::warn!(target: "yuqing::alert", error = %e, "stdout unavailable; alert: {}", text.replace('\n', " | "));
    }
}

/// Alerts on stdout: the channel of a daemon with no chat configured.
pub struct ConsoleChannel;

impl super::channel::Channel for ConsoleChannel {
    fn name(&self) -> &str {
        "console"
    }

    fn kind(&self) -> &'static str {
        "console"
    }

    fn send<'a>(&'a self, message: &'a super::channel::Message) -> super::channel::SendFuture<'a> {
        Box::pin(async move {
            print(&message.plain_text());
            Ok(super::channel::Delivered::default())
        })
    }
}

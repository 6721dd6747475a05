//! Telling people: message text, and delivery to the console, Telegram, and the webhook
//! channels (Feishu, DingTalk, WeCom, Slack, generic JSON; built by [`webhooks::build`]).
//!
//! Delivery never writes the store; chat commands change incidents only through
//! [`crate::incident::Incidents`].

pub mod channel;
pub mod console;
pub mod dingtalk;
pub mod feishu;
pub mod slack;
pub mod telegram;
pub mod webhook;
pub mod webhooks;
pub mod wecom;

use std::fmt::Write;

use crate::incident::Notice;
use crate::store::{Incident, IncidentState};

/// How the reader of a message can take the incident.
#[derive(Debug, Clone, Default)]
pub struct HowToAct {
    pub console_url: Option<String>,
    /// The reader is in the crisis chat, where /ack works.
    pub chat_commands: bool,
}

impl HowToAct {
    fn write(&self, out: &mut String, id: u64, resolve_too: bool) {
        if let Some(url) = &self.console_url {
            let _ = writeln!(out, "Console: {url}/incidents/{id}");
        }
        if self.chat_commands {
            if resolve_too {
                let _ = write!(
                    out,
                    "Reply /ack {id} to take it, /resolve {id} when it is handled."
                );
            } else {
                let _ = write!(out, "Reply /ack {id} to take it.");
            }
        } else {
            let _ = write!(
                out,
                "Take it with `yuqing ack {id}`{}.",
                if self.console_url.is_some() {
                    " or the console's Acknowledge button"
                } else {
                    ""
                }
            );
        }
    }
}

/// The message for a notice. Plain text: no markup to escape, and it reads the same in a
/// terminal, a log and a chat.
pub fn render(notice: &Notice, how: &HowToAct) -> String {
    let mut out = String::new();
    match notice {
        Notice::Opened { incident, tier } => {
            let _ = writeln!(
                out,
                "🚨 yuqing incident #{} — {}",
                incident.id, incident.brand
            );
            if incident.opened_because.is_empty() {
                let _ = writeln!(
                    out,
                    "{} negative posts in the last {} (baseline {:.1} per window)",
                    incident.window_count,
                    window_text(incident),
                    incident.baseline
                );
            } else {
                let _ = writeln!(out, "Why: {}", incident.opened_because);
            }
            if incident.history.len() > 1 {
                let _ = writeln!(out, "(reopened: it was resolved not long ago)");
            }
            write_topics(&mut out, incident);
            write_top_posts(&mut out, incident);
            if let Some(t) = tier {
                write_page(&mut out, "Paging tier 1", t);
            }
            how.write(&mut out, incident.id, true);
        }
        Notice::Escalated {
            incident,
            tier,
            tier_number,
            repeat,
        } => {
            let waited = chrono::Utc::now() - incident.opened_at;
            let _ = writeln!(
                out,
                "⏰ yuqing incident #{} — {} is still unacknowledged after {}m{}",
                incident.id,
                incident.brand,
                waited.num_minutes(),
                if *repeat { " (reminder)" } else { "" }
            );
            write_page(&mut out, &format!("Escalating to tier {tier_number}"), tier);
            let _ = writeln!(out, "{} negative posts so far.", incident.hit_count);
            write_top_posts(&mut out, incident);
            how.write(&mut out, incident.id, false);
        }
        Notice::AutoResolved { incident } => {
            let _ = writeln!(
                out,
                "✅ yuqing incident #{} — {} resolved by itself: the complaints died down.",
                incident.id, incident.brand
            );
            if let Some(t) = incident.history.last() {
                let _ = writeln!(out, "{}", t.note);
            }
            let _ = write!(
                out,
                "{} negative posts in all. It reopens if they come back soon.",
                incident.hit_count
            );
        }
        Notice::Reminder { incident } => {
            let owner = incident
                .acked_by
                .as_ref()
                .map_or("nobody", |a| a.name.as_str());
            let _ = writeln!(
                out,
                "🔔 yuqing incident #{} — {} is still open, owned by {owner}.",
                incident.id, incident.brand
            );
            let _ = writeln!(out, "{} negative posts so far.", incident.hit_count);
            if let Some(url) = &how.console_url {
                let _ = writeln!(out, "Console: {url}/incidents/{}", incident.id);
            }
            let _ = write!(out, "Resolve it when it is handled.");
        }
        Notice::AckExpired {
            incident,
            owner,
            tier,
        } => {
            let _ = writeln!(
                out,
                "⏰ yuqing incident #{} — {}: acknowledged by {owner} but still unresolved; \
                 it is unowned again.",
                incident.id, incident.brand
            );
            if let Some(t) = tier {
                write_page(&mut out, "Paging tier 1", t);
            }
            write_top_posts(&mut out, incident);
            how.write(&mut out, incident.id, true);
        }
        Notice::Changed {
            incident,
            from,
            by,
            via,
        } => {
            let what = changed_verb(*from, incident.state);
            let _ = write!(
                out,
                "ℹ️ yuqing incident #{} — {} {what} by {by} (via {via}).",
                incident.id, incident.brand
            );
            if incident.state == IncidentState::Resolved {
                if let Some(note) = incident.history.last().map(|t| t.note.trim()) {
                    if !note.is_empty() {
                        let _ = write!(out, "\nNote: {note}");
                    }
                }
            }
        }
    }
    out
}

/// What a person did to an incident, from the state it left and the one it reached.
pub fn changed_verb(from: IncidentState, to: IncidentState) -> &'static str {
    match (from, to) {
        (IncidentState::Resolved, _) => "reopened",
        (_, IncidentState::Acknowledged) => "acknowledged",
        (_, IncidentState::Resolved) => "resolved",
        (_, IncidentState::Triggered) => "reopened",
    }
}

/// "Paging tier 1, on-call responder (@a @b): acknowledge within 10m."
fn write_page(out: &mut String, what: &str, tier: &crate::config::TierConfig) {
    let _ = writeln!(
        out,
        "{what}, {}{}: acknowledge within {}.",
        tier.name,
        mentions(&tier.mention),
        crate::config::human_duration(tier.ack_timeout)
    );
}

/// "Topic: 爆通讯录, 骚扰 · violent_collection 3, usury_hidden_fees 1"
fn write_topics(out: &mut String, incident: &Incident) {
    if incident.topic_terms.is_empty() && incident.categories.is_empty() {
        return;
    }
    let mut categories: Vec<(&String, &u64)> = incident.categories.iter().collect();
    categories.sort_by(|a, b| b.1.cmp(a.1));
    let categories: Vec<String> = categories.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let _ = writeln!(
        out,
        "Topic: {}{}",
        incident.topic_terms.join(", "),
        if categories.is_empty() {
            String::new()
        } else {
            format!(" · {}", categories.join(", "))
        }
    );
}

fn write_top_posts(out: &mut String, incident: &Incident) {
    if incident.top_posts.is_empty() {
        return;
    }
    let _ = writeln!(out, "Top posts:");
    for (i, p) in incident.top_posts.iter().enumerate() {
        let title: String = p.title.chars().take(80).collect();
        let _ = writeln!(
            out,
            "{}. [{}] {} (score {:.1}; {})",
            i + 1,
            p.source,
            title,
            p.score,
            if p.terms.is_empty() {
                "-".to_string()
            } else {
                p.terms.join(", ")
            }
        );
        if let Some(url) = &p.url {
            let _ = writeln!(out, "   {url}");
        }
    }
}

fn window_text(incident: &Incident) -> String {
    crate::config::human_duration(std::time::Duration::from_secs(incident.window_secs))
}

fn mentions(handles: &[String]) -> String {
    if handles.is_empty() {
        String::new()
    } else {
        format!(" ({})", handles.join(" "))
    }
}

/// One line per open incident, for `/incidents`.
pub fn render_list(incidents: &[Incident]) -> String {
    if incidents.is_empty() {
        return "No open incidents.".to_string();
    }
    let mut out = format!("{} open incident(s):\n", incidents.len());
    for i in incidents {
        let owner = match &i.acked_by {
            Some(a) => format!("acknowledged by {}", a.name),
            None => format!("UNACKNOWLEDGED, tier {}", i.tier + 1),
        };
        let _ = writeln!(
            out,
            "#{} {} — {} negative posts, opened {} — {}",
            i.id,
            i.brand,
            i.hit_count,
            i.opened_at.format("%m-%d %H:%M UTC"),
            owner
        );
    }
    out.trim_end().to_string()
}

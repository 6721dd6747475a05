//! The generic JSON webhook: every message as one documented JSON object (schema version 1,
//! see README "Channels"), for teams that route alerts through their own service.
//!
//! With a signing secret, each request carries `X-Yuqing-Timestamp` (Unix seconds) and
//! `X-Yuqing-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. The
//! timestamp is inside the signed text so a captured request cannot be replayed later with a
//! fresh timestamp. Any 2xx answer is a delivery.

use serde_json::{json, Value};

use super::channel::{Channel, Content, Delivered, Message, SendError, SendFuture};
use super::webhooks::{hex, hmac_sha256, Endpoint};
use crate::incident::Notice;
use crate::store::{Incident, IncidentState};

pub const SIGNATURE_HEADER: &str = "X-Yuqing-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Yuqing-Timestamp";

pub struct Webhook {
    endpoint: Endpoint,
}

impl Webhook {
    pub(crate) fn new(endpoint: Endpoint) -> Webhook {
        Webhook { endpoint }
    }

    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = serde_json::to_vec(&payload(message, &self.endpoint.name))
            .expect("a JSON value serializes");
        let mut headers = Vec::new();
        if let Some(secret) = &self.endpoint.secret {
            let timestamp = self.endpoint.now().timestamp().to_string();
            headers.push((
                SIGNATURE_HEADER,
                format!("sha256={}", sign(&timestamp, &body, secret)),
            ));
            headers.push((TIMESTAMP_HEADER, timestamp));
        }
        let answer = self
            .endpoint
            .post(self.endpoint.url.clone(), body, &headers)
            .await?;
        match self.endpoint.by_status(&answer) {
            None => Ok(Delivered::default()),
            Some(failure) => Err(failure),
        }
    }
}

impl Channel for Webhook {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// Hex HMAC-SHA256 under `secret` of `timestamp + "." + body`.
pub fn sign(timestamp: &str, body: &[u8], secret: &str) -> String {
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    hex(&hmac_sha256(secret.as_bytes(), &signed))
}

fn state_name(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Triggered => "triggered",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolved => "resolved",
    }
}

fn incident_json(incident: &Incident, console_url: Option<&str>) -> Value {
    let top_posts: Vec<Value> = incident
        .top_posts
        .iter()
        .map(|p| {
            json!({
                "source": p.source,
                "title": p.title,
                "url": p.url,
                "score": if p.score.is_finite() { json!(p.score) } else { Value::Null },
                "terms": p.terms,
                "at": p.at.to_rfc3339(),
            })
        })
        .collect();
    json!({
        "id": incident.id,
        "brand": incident.brand,
        "state": state_name(incident.state),
        "opened_at": incident.opened_at.to_rfc3339(),
        "hit_count": incident.hit_count,
        "window_count": incident.window_count,
        "baseline": if incident.baseline.is_finite() { json!(incident.baseline) } else { Value::Null },
        "opened_because": incident.opened_because,
        "topic_terms": incident.topic_terms,
        "categories": incident.categories,
        "top_posts": top_posts,
        "url": console_url.map(|u| format!("{}/incidents/{}", u.trim_end_matches('/'), incident.id)),
    })
}

/// The JSON object sent for a message (schema version 1).
pub fn payload(message: &Message, channel: &str) -> Value {
    let targets = message.targets(channel);
    match &message.content {
        Content::Text {
            title,
            body,
            markdown,
        } => json!({
            "version": 1,
            "kind": "text",
            "title": title,
            "text": body,
            "markdown": markdown,
            "possible_repeat": message.possible_repeat,
        }),
        // Replies go only to the chat a command came from; a webhook never asks one.
        Content::Reply { text, .. } => json!({
            "version": 1,
            "kind": "text",
            "title": "yuqing",
            "text": text,
            "markdown": false,
            "possible_repeat": message.possible_repeat,
        }),
        Content::Incident(notice) => {
            let incident = notice.incident();
            let mut out = json!({
                "version": 1,
                "kind": kind(notice),
                "incident": incident_json(incident, message.how.console_url.as_deref()),
                "text": super::render(notice, &message.how),
                "targets": targets,
                "possible_repeat": message.possible_repeat,
            });
            match notice.as_ref() {
                Notice::Opened { tier: Some(t), .. } | Notice::AckExpired { tier: Some(t), .. } => {
                    out["tier"] = json!({"number": 1, "name": t.name});
                }
                Notice::Escalated {
                    tier,
                    tier_number,
                    repeat,
                    ..
                } => {
                    out["tier"] =
                        json!({"number": tier_number, "name": tier.name, "repeat": repeat});
                }
                Notice::Changed { from, by, via, .. } => {
                    out["change"] = json!({"from": state_name(*from), "by": by, "via": via});
                }
                _ => {}
            }
            out
        }
    }
}

/// `incident.opened`, `incident.escalated`, … : what happened, for a receiver to route on.
pub fn kind(notice: &Notice) -> &'static str {
    match notice {
        Notice::Opened { .. } => "incident.opened",
        Notice::Escalated { .. } => "incident.escalated",
        Notice::AutoResolved { .. } => "incident.auto_resolved",
        Notice::Reminder { .. } => "incident.reminder",
        Notice::AckExpired { .. } => "incident.ack_expired",
        Notice::Changed { .. } => "incident.changed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        // Computed independently with Python's hmac module:
        // hmac(b"whsecret", b'1700000000.{"a":1}', sha256).hexdigest().
        assert_eq!(
            sign("1700000000", br#"{"a":1}"#, "whsecret"),
            "15d410d1cdb353b5e77d15b79f2cf9b142f784abbc3bbf7654676b96d67b9494"
        );
    }
}

//! The outbox's records: every message to send, stored before any attempt to send it.
//!
//! Keys are `channel \0 seq` with a database-wide increasing `seq`, so one prefix scan reads a
//! channel's queue in the order its messages were decided. A second tree indexes the entries
//! still waiting (pending or in flight), so a worker finds its next message without walking
//! the delivered history.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{IncidentState, Store};

/// One message for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub channel: String,
    /// Increasing across the database, so also within each channel.
    pub seq: u64,
    pub incident: Option<u64>,
    pub kind: MessageKind,
    /// The incident's state and history length when the message was decided: a page or a
    /// reminder is dropped when a person changed the incident after that.
    pub decided_state: Option<IncidentState>,
    pub decided_changes: usize,
    pub created_at: DateTime<Utc>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub first_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The full text already went to the console because the channel kept failing.
    #[serde(default)]
    pub fell_back: bool,
    /// The daemon stopped while this was being sent: it may have arrived already.
    #[serde(default)]
    pub possible_repeat: bool,
    pub done_at: Option<DateTime<Utc>>,
    /// The platform's id for the delivered message (a Telegram message id).
    pub reference: Option<String>,
}

/// What the message says. Incident messages are rebuilt from the incident when sent, so they
/// carry its latest counts; only what cannot be rebuilt is kept here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageKind {
    Opened {
        tier: Option<usize>,
    },
    Escalated {
        tier: usize,
        repeat: bool,
    },
    AutoResolved,
    Reminder,
    AckExpired {
        owner: String,
        tier: Option<usize>,
    },
    Changed {
        from: IncidentState,
        to: IncidentState,
        by: String,
        via: String,
    },
    /// The incident report (问题诊断报告), written when sent, after the incident resolved.
    Report,
    /// The daily digest of a local day, written when sent.
    Digest {
        day: chrono::NaiveDate,
    },
    /// An answer to a chat command, to the chat the command came from, in plain text.
    Reply {
        chat: String,
        text: String,
    },
    /// Already-written text: a digest, a source-health notice.
    Text {
        title: String,
        body: String,
        markdown: bool,
    },
}

impl MessageKind {
    pub fn name(&self) -> &'static str {
        match self {
            MessageKind::Opened { .. } => "opened",
            MessageKind::Escalated { .. } => "escalated",
            MessageKind::AutoResolved => "auto_resolved",
            MessageKind::Reminder => "reminder",
            MessageKind::AckExpired { .. } => "ack_expired",
            MessageKind::Changed { .. } => "changed",
            MessageKind::Report => "report",
            MessageKind::Reply { .. } => "reply",
            MessageKind::Digest { .. } => "digest",
            MessageKind::Text { .. } => "text",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its turn or for its next attempt.
    Pending,
    /// An attempt is under way. Found at start-up, it means the daemon stopped mid-send.
    Sending,
    Delivered,
    /// Dropped before sending: the incident was acknowledged or resolved after the decision.
    Superseded,
    /// Held back by a silence.
    Silenced,
    /// The platform refused it for good (a malformed request); the queue moved on.
    Failed,
}

impl DeliveryStatus {
    pub fn is_waiting(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Sending)
    }
}

fn entry_key(channel: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(channel.len() + 9);
    key.extend_from_slice(channel.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn channel_prefix(channel: &str) -> Vec<u8> {
    let mut key = channel.as_bytes().to_vec();
    key.push(0);
    key
}

impl Store {
    /// A new, database-wide increasing sequence number for an outbox entry.
    pub fn next_outbox_seq(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Stores `entries` in one transaction: all of a decision's messages, or none.
    pub fn enqueue_outbox(&self, entries: &[OutboxEntry]) -> Result<()> {
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|e| Ok((entry_key(&e.channel, e.seq), serde_json::to_vec(e)?)))
            .collect::<Result<_>>()?;
        (&self.outbox, &self.outbox_waiting)
            .transaction(|(outbox, waiting)| {
                for (key, value) in &encoded {
                    outbox.insert(key.as_slice(), value.as_slice())?;
                    waiting.insert(key.as_slice(), &[])?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => anyhow::Error::new(e),
                TransactionError::Abort(()) => anyhow::anyhow!("outbox transaction aborted"),
            })
            .context("storing messages in the outbox")
    }

    /// Writes back an entry after an attempt or a decision about it; entries that are no
    /// longer waiting leave the waiting index in the same transaction.
    pub fn update_outbox(&self, entry: &OutboxEntry) -> Result<()> {
        let key = entry_key(&entry.channel, entry.seq);
        let value = serde_json::to_vec(entry)?;
        let waiting_now = entry.status.is_waiting();
        (&self.outbox, &self.outbox_waiting)
            .transaction(|(outbox, waiting)| {
                outbox.insert(key.as_slice(), value.as_slice())?;
                if waiting_now {
                    waiting.insert(key.as_slice(), &[])?;
                } else {
                    waiting.remove(key.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => anyhow::Error::new(e),
                TransactionError::Abort(()) => anyhow::anyhow!("outbox transaction aborted"),
            })
            .with_context(|| format!("updating outbox entry {} of {}", entry.seq, entry.channel))
    }

    fn outbox_entry_at(&self, key: &[u8]) -> Result<Option<OutboxEntry>> {
        match self.outbox.get(key)? {
            None => Ok(None),
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).context("unreadable outbox entry")?,
            )),
        }
    }

    /// The oldest waiting message of `channel`: the only one its worker may send next.
    pub fn outbox_head(&self, channel: &str) -> Result<Option<OutboxEntry>> {
        for kv in self.outbox_waiting.scan_prefix(channel_prefix(channel)) {
            let (key, _) = kv?;
            match self.outbox_entry_at(&key)? {
                Some(entry) => return Ok(Some(entry)),
                // An index entry without its record cannot be sent; drop it so the queue moves.
                None => {
                    self.outbox_waiting.remove(&key)?;
                }
            }
        }
        Ok(None)
    }

    /// Every waiting message, on every channel, oldest first per channel.
    pub fn outbox_waiting(&self) -> Result<Vec<OutboxEntry>> {
        let mut out = Vec::new();
        for kv in self.outbox_waiting.iter() {
            let (key, _) = kv?;
            if let Some(entry) = self.outbox_entry_at(&key)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Every message ever queued, newest first, at most `limit`.
    pub fn outbox_recent(&self, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut out = Vec::new();
        for kv in self.outbox.iter() {
            let (_, v) = kv?;
            out.push(serde_json::from_slice::<OutboxEntry>(&v).context("unreadable outbox entry")?);
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.seq));
        out.truncate(limit);
        Ok(out)
    }

    /// Forgets messages that were done with (delivered, dropped or failed) before `before`, so
    /// the history a worker reads for earlier references stays bounded. Waiting ones are kept
    /// whatever their age. Returns how many were removed.
    pub fn prune_outbox(&self, before: DateTime<Utc>) -> Result<usize> {
        let mut removed = 0;
        for kv in self.outbox.iter() {
            let (key, v) = kv?;
            let Ok(entry) = serde_json::from_slice::<OutboxEntry>(&v) else {
                continue;
            };
            if !entry.status.is_waiting() && entry.done_at.is_some_and(|at| at < before) {
                self.outbox.remove(&key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The references of `channel`'s delivered messages about `incident`, oldest first.
    pub fn outbox_references(&self, channel: &str, incident: u64) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kv in self.outbox.scan_prefix(channel_prefix(channel)) {
            let (_, v) = kv?;
            let entry: OutboxEntry =
                serde_json::from_slice(&v).context("unreadable outbox entry")?;
            if entry.incident == Some(incident) && entry.status == DeliveryStatus::Delivered {
                out.extend(entry.reference);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(channel: &str, seq: u64) -> OutboxEntry {
        let at = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        OutboxEntry {
            channel: channel.into(),
            seq,
            incident: Some(1),
            kind: MessageKind::Reminder,
            decided_state: Some(IncidentState::Acknowledged),
            decided_changes: 2,
            created_at: at,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: at,
            first_failure_at: None,
            last_error: None,
            fell_back: false,
            possible_repeat: false,
            done_at: None,
            reference: None,
        }
    }

    #[test]
    fn each_channel_reads_its_own_queue_in_order_and_done_entries_leave_it() {
        let store = Store::temporary().unwrap();
        // "a" and "ab" share a byte prefix; the separator keeps their queues apart.
        store
            .enqueue_outbox(&[entry("ab", 1), entry("a", 2), entry("a", 3)])
            .unwrap();
        assert_eq!(store.outbox_head("a").unwrap().unwrap().seq, 2);
        assert_eq!(store.outbox_head("ab").unwrap().unwrap().seq, 1);
        let mut head = store.outbox_head("a").unwrap().unwrap();
        head.status = DeliveryStatus::Delivered;
        head.reference = Some("77".into());
        store.update_outbox(&head).unwrap();
        assert_eq!(store.outbox_head("a").unwrap().unwrap().seq, 3);
        assert_eq!(store.outbox_waiting().unwrap().len(), 2);
        assert_eq!(store.outbox_references("a", 1).unwrap(), vec!["77"]);
        assert!(store.outbox_references("ab", 1).unwrap().is_empty());
        assert_eq!(store.outbox_recent(10).unwrap()[0].seq, 3);
        assert_eq!(store.outbox_head("b").unwrap(), None);

        // Done entries older than the cut are forgotten; waiting ones never are.
        let later = head.created_at + chrono::Duration::days(40);
        let mut done = head.clone();
        done.done_at = Some(head.created_at);
        store.update_outbox(&done).unwrap();
        assert_eq!(store.prune_outbox(later).unwrap(), 1);
        assert_eq!(store.outbox_waiting().unwrap().len(), 2);
        assert_eq!(store.outbox_recent(10).unwrap().len(), 2);
    }
}

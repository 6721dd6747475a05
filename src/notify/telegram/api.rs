//! A thin Bot API client: one HTTP request per call, nothing else.
//!
//! teloxide's own request path sleeps 10 s after every 5xx answer before it returns, which
//! would stall the outbox's worker for this channel, so requests are made here on the shared
//! reqwest client and only teloxide's types are used to read updates. Every error text has
//! the token removed (reqwest quotes the URL, and some servers echo the path in a 404 page).

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde::Serialize;
use serde_json::Value;

use crate::notify::channel::{Redactor, SendError};

/// How a call failed, in the terms the outbox acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Telegram asked us to wait (HTTP 429 / `parameters.retry_after`).
    RetryAfter { wait: Duration, reason: String },
    /// Telegram refused this request; sending it again cannot succeed (bad request, chat not
    /// found, message to edit not found).
    Refused { code: i64, description: String },
    /// Worth trying again: network errors, 5xx, an unreadable answer, a bad token or a bot
    /// removed from the chat (an operator can fix those, and the message should then go out).
    Transient(String),
}

impl ApiError {
    pub fn describe(&self) -> String {
        match self {
            ApiError::RetryAfter { reason, .. } | ApiError::Transient(reason) => reason.clone(),
            ApiError::Refused { code, description } => {
                format!("Telegram refused it ({code}): {description}")
            }
        }
    }

    /// Telegram's "message is not modified": an edit that changes nothing, e.g. repeated.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, ApiError::Refused { description, .. } if description.contains("message is not modified"))
    }
}

impl From<ApiError> for SendError {
    fn from(e: ApiError) -> SendError {
        let reason = e.describe();
        match e {
            ApiError::RetryAfter { wait, .. } => SendError {
                reason,
                retry_after: Some(wait),
                permanent: false,
            },
            ApiError::Refused { .. } => SendError::permanent(reason),
            ApiError::Transient(_) => SendError::transient(reason),
        }
    }
}

/// The Bot API at `api_url` for one bot token.
#[derive(Clone)]
pub struct BotApi {
    client: reqwest::Client,
    base: String,
    redactor: Redactor,
}

impl BotApi {
    pub fn new(client: reqwest::Client, api_url: &str, token: &str) -> BotApi {
        BotApi {
            client,
            base: format!("{}/bot{token}", api_url.trim_end_matches('/')),
            redactor: Redactor::new([token.to_string()]),
        }
    }

    /// Calls `method` with JSON parameters and returns its `result`.
    pub async fn call(&self, method: &str, params: &impl Serialize) -> Result<Value, ApiError> {
        self.call_with_timeout(method, params, None).await
    }

    /// Like [`BotApi::call`], with a deadline for this request alone (a long poll).
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: &impl Serialize,
        timeout: Option<Duration>,
    ) -> Result<Value, ApiError> {
        let mut request = self
            .client
            .post(format!("{}/{method}", self.base))
            .json(params);
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        self.finish(method, request).await
    }

    /// `sendPhoto` and the like: a multipart form with `file_field` holding `png`.
    pub async fn call_with_png(
        &self,
        method: &str,
        fields: Vec<(&'static str, String)>,
        file_field: &'static str,
        png: Vec<u8>,
    ) -> Result<Value, ApiError> {
        let part = Part::bytes(png)
            .file_name("chart.png")
            .mime_str("image/png")
            .map_err(|e| ApiError::Transient(format!("building {method}: {e}")))?;
        let mut form = Form::new().part(file_field, part);
        for (name, value) in fields {
            form = form.text(name, value);
        }
        let request = self
            .client
            .post(format!("{}/{method}", self.base))
            .multipart(form);
        self.finish(method, request).await
    }

    async fn finish(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ApiError> {
        let response = request.send().await.map_err(|e| {
            ApiError::Transient(self.redactor.redact(&format!(
                "Telegram {method}: {}",
                describe_reqwest(e.without_url())
            )))
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| {
            ApiError::Transient(self.redactor.redact(&format!(
                "Telegram {method}: reading the answer: {}",
                e.without_url()
            )))
        })?;
        let redacted = |text: &str| self.redactor.redact(text);
        let answer: Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(_) => {
                let excerpt: String = body.chars().take(200).collect();
                return Err(classify(
                    status.as_u16() as i64,
                    &redacted(&format!("HTTP {status}, not JSON: {excerpt}")),
                    None,
                    method,
                ));
            }
        };
        if answer["ok"].as_bool() == Some(true) {
            return Ok(answer["result"].clone());
        }
        let code = answer["error_code"]
            .as_i64()
            .unwrap_or(status.as_u16() as i64);
        let description = redacted(answer["description"].as_str().unwrap_or("no description"));
        let parameters = &answer["parameters"];
        if let Some(chat) = parameters["migrate_to_chat_id"].as_i64() {
            return Err(ApiError::Refused {
                code,
                description: format!(
                    "{description}; the group became a supergroup: set telegram.chat_id = {chat}"
                ),
            });
        }
        Err(classify(
            code,
            &description,
            parameters["retry_after"].as_u64(),
            method,
        ))
    }
}

fn classify(code: i64, description: &str, retry_after: Option<u64>, method: &str) -> ApiError {
    let reason = format!("Telegram {method} failed ({code}): {description}");
    if let Some(secs) = retry_after.or((code == 429).then_some(1)) {
        return ApiError::RetryAfter {
            wait: Duration::from_secs(secs.max(1)),
            reason,
        };
    }
    match code {
        // 404 is what the Bot API answers to a wrong token (and a proxy to a wrong api_url):
        // an operator can fix either, and the message should then go out, so it is retried.
        400 | 413 => ApiError::Refused {
            code,
            description: description.to_string(),
        },
        _ => ApiError::Transient(reason),
    }
}

/// reqwest's error with its sources: "error sending request" alone does not say that the
/// connection was refused.
fn describe_reqwest(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_for_the_outbox() {
        let e: SendError = classify(429, "Too Many Requests", Some(7), "sendMessage").into();
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        assert!(!e.permanent);
        let e: SendError = classify(400, "Bad Request: chat not found", None, "sendMessage").into();
        assert!(e.permanent, "{e}");
        assert!(e.reason.contains("chat not found"), "{e}");
        for code in [401, 403, 404, 500, 502] {
            let e: SendError = classify(code, "x", None, "sendMessage").into();
            assert!(!e.permanent && e.retry_after.is_none(), "{code}: {e:?}");
        }
    }
}

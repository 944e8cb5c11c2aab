//! SES sample bodies for tests: documented fixtures with fresh ids, so every test has its own deliveries.

use serde_json::Value;

/// Loads `fixtures/<name>` (an SNS envelope), sets the SES `mail.messageId` to `message_id`,
/// optionally replaces `mail.destination` and the event's recipients, and gives the SNS
/// message a new MessageId. Times move to the last hour (relative order kept), since the
/// documented examples are from years ago and event rows older than the retention are dropped.
pub fn body(name: &str, message_id: &str, recipients: Option<&[&str]>) -> Vec<u8> {
    body_at(name, message_id, recipients, chrono::Utc::now() - chrono::Duration::hours(1))
}

/// As [`body`], the mail's time moved to `at` (the event's own time keeps its offset after it).
pub fn body_at(name: &str, message_id: &str, recipients: Option<&[&str]>, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut sns: Value = serde_json::from_slice(&crate::fixture("ses", name)).expect("fixture JSON");
    let mut msg: Value = serde_json::from_str(sns["Message"].as_str().expect("Message")).expect("SES JSON");
    let mail_time = msg["mail"]["timestamp"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if let Some(t) = mail_time {
        let shift = at - t.with_timezone(&chrono::Utc);
        shift_times(&mut msg, shift);
    }
    msg["mail"]["messageId"] = Value::from(message_id);
    if let Some(rcpts) = recipients {
        msg["mail"]["destination"] = Value::from(rcpts.to_vec());
        if let Some(list) = msg.pointer_mut("/delivery/recipients") {
            *list = Value::from(rcpts.to_vec());
        }
        for (ptr, key) in [("/bounce/bouncedRecipients", "emailAddress"), ("/complaint/complainedRecipients", "emailAddress")] {
            if let Some(Value::Array(list)) = msg.pointer_mut(ptr) {
                let template = list.first().cloned().unwrap_or(Value::Null);
                *list = rcpts
                    .iter()
                    .map(|r| {
                        let mut t = template.clone();
                        t[key] = Value::from(*r);
                        t
                    })
                    .collect();
            }
        }
    }
    sns["Message"] = Value::from(msg.to_string());
    sns["MessageId"] = Value::from(uuid::Uuid::new_v4().to_string());
    crate::samples::sign_sns(&serde_json::to_vec(&sns).expect("serialize"))
}

fn shift_times(v: &mut Value, by: chrono::Duration) {
    match v {
        Value::String(s) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                *s = (t.with_timezone(&chrono::Utc) + by).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift_times(x, by)),
        Value::Object(o) => o.values_mut().for_each(|x| shift_times(x, by)),
        _ => {}
    }
}

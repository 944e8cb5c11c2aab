//! The fast path of [`super::sns::parse_notification`]: an SNS body as SNS writes it (one
//! object of string values) read in one scan, its strings through `json_str::read`.
//!
//! Why: serde_json unescaping the `Message` string (an SES event with an escaped quote every
//! ~10 bytes) was ~45 % of `pipeline::handle` on SES through SNS (BENCHMARKS.md §9).
//!
//! Same behaviour: [`scan`] gives `None` for any body it does not read exactly as the serde
//! derive of the borrowed envelope does (a value not a string, a key with an escape, a known
//! key twice, a required field missing, anything after the object, any string `json_str`
//! declines), and the caller then parses it with serde_json: the same notification, or the
//! same error (`sns_scan` tests and `ses/tests.rs` hold it to serde_json).

use super::sns::Notification;
use crate::providers::json::Text;
use crate::providers::json_str;
use std::borrow::Cow;

/// JSON whitespace, as serde_json skips it.
fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = s.get(i) {
        i += 1;
    }
    i
}

/// Reads `body` as an object of string values into a notification, or `None` (see the module doc).
pub fn scan(body: &[u8]) -> Option<Notification<'_>> {
    let mut fields: [Option<Cow<'_, str>>; FIELDS.len()] = Default::default();
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        return None; // required fields missing: serde_json's error
    }
    loop {
        let (key, after_key) = json_str::read(body, i)?;
        let Cow::Borrowed(key) = key else { return None };
        i = skip_ws(body, after_key);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(body, i + 1);
        let (value, after_value) = json_str::read(body, i)?;
        if let Some(n) = field_index(key) {
            if fields[n].is_some() {
                return None; // serde: duplicate field
            }
            fields[n] = Some(value);
        }
        i = skip_ws(body, after_value);
        match body.get(i) {
            Some(b',') => i = skip_ws(body, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(body, i + 1) != body.len() {
        return None;
    }
    let [kind_name, message_id, topic_arn, subject, message, timestamp, token, subscribe_url, signature_version, signature, signing_cert_url] = fields;
    Some(Notification {
        kind_name: Text(kind_name?),
        message_id: Text(message_id?),
        topic_arn: Text(topic_arn?),
        subject: subject.map(Text),
        message: Text(message?),
        timestamp: Text(timestamp?),
        token: token.map(Text),
        subscribe_url: subscribe_url.map(Text),
        signature_version: signature_version.map(Text),
        signature: signature.map(Text),
        signing_cert_url: signing_cert_url.map(Text),
    })
}

/// The envelope's keys, in the order `scan` destructures them.
const FIELDS: [&str; 11] = [
    "Type",
    "MessageId",
    "TopicArn",
    "Subject",
    "Message",
    "Timestamp",
    "Token",
    "SubscribeURL",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
];

/// The position of `key` in [`FIELDS`] (a `match`: one length switch, not eleven compares).
fn field_index(key: &str) -> Option<usize> {
    Some(match key {
        "Type" => 0,
        "MessageId" => 1,
        "TopicArn" => 2,
        "Subject" => 3,
        "Message" => 4,
        "Timestamp" => 5,
        "Token" => 6,
        "SubscribeURL" => 7,
        "SignatureVersion" => 8,
        "Signature" => 9,
        "SigningCertURL" => 10,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's reading of the borrowed envelope, the oracle.
    fn serde(body: &[u8]) -> Option<Notification<'_>> {
        serde_json::from_slice(body).ok()
    }

    fn same(body: &[u8]) -> bool {
        let ours = scan(body);
        if let Some(n) = &ours {
            let theirs = serde(body).unwrap_or_else(|| panic!("scan read what serde_json refuses: {}", String::from_utf8_lossy(body)));
            assert_eq!(format!("{n:?}"), format!("{theirs:?}"), "{}", String::from_utf8_lossy(body));
        }
        ours.is_some()
    }

    const GOOD: &str = r#"{"Type":"Notification","MessageId":"m-1","TopicArn":"arn:t","Subject":"s","Message":"{\"a\":\"\\u00e9\\ud83d\\ude00\"}","Timestamp":"2024-01-01T00:00:00Z","SignatureVersion":"1","Signature":"c2ln","SigningCertURL":"https://x/c.pem","UnsubscribeURL":"https://x/u"}"#;

    #[test]
    fn field_index_is_the_position_in_fields() {
        for (n, f) in FIELDS.iter().enumerate() {
            assert_eq!(field_index(f), Some(n));
        }
        assert_eq!(field_index("UnsubscribeURL"), None);
    }

    #[test]
    fn reads_a_notification_as_serde_json() {
        assert!(same(GOOD.as_bytes()));
        assert!(same(format!(" \r\n\t{} \n", GOOD.replace(r#"":""#, "\" :\t\"").replace(r#"",""#, "\"\n, \"")).as_bytes()));
        assert!(same(GOOD.replace(r#""Subject":"s","#, "").as_bytes()));
        assert!(same(GOOD.replace("UnsubscribeURL", "X").as_bytes()));
        let n = scan(GOOD.as_bytes()).unwrap();
        assert_eq!(n.message.0, "{\"a\":\"\\u00e9\\ud83d\\ude00\"}");
        assert_eq!(n.message_id.0, "m-1");
    }

    #[test]
    fn declines_what_it_might_read_differently() {
        let variants = [
            GOOD.replace(r#""Subject":"s""#, r#""Subject":null"#),
            GOOD.replace(r#""Subject":"s""#, r#""Subject":1"#),
            GOOD.replace(r#""UnsubscribeURL":"https://x/u""#, r#""UnsubscribeURL":{}"#),
            GOOD.replace(r#""Type""#, r#""T\u0079pe""#),
            GOOD.replace(r#""Subject":"s""#, r#""Type":"Notification""#),
            GOOD.replace(r#""MessageId":"m-1","#, ""),
            GOOD.replace(r#""Message":"#, r#""Message":"\ud800","X":"#),
            GOOD.replace(r#""m-1""#, "\"m\u{1}\""),
            format!("{GOOD}x"),
            format!("{GOOD},"),
            format!("[{GOOD}]"),
            format!("{},}}", &GOOD[..GOOD.len() - 1]),
            GOOD.replace(',', ",,"),
            GOOD[..GOOD.len() - 1].to_string(),
            "{}".to_string(),
            String::new(),
        ];
        for v in variants {
            assert!(!same(v.as_bytes()), "{v}");
        }
        let mut invalid_utf8 = GOOD.as_bytes().to_vec();
        invalid_utf8.splice(10..10, [0xff]);
        assert!(!same(&invalid_utf8));
    }
}

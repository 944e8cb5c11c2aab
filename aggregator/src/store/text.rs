//! A text column of a row without a copy per row: borrowed from the batch's events (ids,
//! tenant, recipient...), a `&'static str` (enum names), or shared with the interned names
//! (attribution, cost units, label texts). Rows read back from ClickHouse hold their own.
//!
//! Why: building a batch's rows as owned `String`s cost ~30 allocations and copies per event,
//! five times the state update (BENCHMARKS.md §1); a `Text` costs none (an `Arc` count for
//! a shared name). It serializes and deserializes as a plain string, so the bytes sent to
//! ClickHouse are those of a `String` column.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

#[derive(Clone)]
pub enum Text<'a> {
    Borrowed(&'a str),
    Shared(Arc<str>),
    Owned(String),
}

impl<'a> Text<'a> {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Shared(s) => s,
            Text::Owned(s) => s,
        }
    }

    /// The same text, holding its own (for a row read back, kept past the read).
    pub fn into_static(self) -> Text<'static> {
        match self {
            Text::Borrowed(s) => Text::Owned(s.to_string()),
            Text::Shared(s) => Text::Shared(s),
            Text::Owned(s) => Text::Owned(s),
        }
    }
}

impl Default for Text<'_> {
    fn default() -> Self {
        Text::Borrowed("")
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text<'_> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// As a `String` prints, so rows print as they did.
impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text::Borrowed(s)
    }
}

impl From<String> for Text<'_> {
    fn from(s: String) -> Self {
        Text::Owned(s)
    }
}

impl From<Arc<str>> for Text<'_> {
    fn from(s: Arc<str>) -> Self {
        Text::Shared(s)
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Text<'_> {}

impl PartialOrd for Text<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Text<'_> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

impl std::hash::Hash for Text<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl PartialEq<String> for Text<'_> {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Text::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_its_string() {
        let shared: Arc<str> = Arc::from("b-1");
        let texts = [Text::Borrowed("b-1"), Text::Shared(shared), Text::Owned("b-1".into())];
        for t in &texts {
            assert_eq!(t, &texts[0]);
            assert_eq!(*t, "b-1");
            assert_eq!(format!("{t:?}"), format!("{:?}", "b-1".to_string()));
            assert_eq!(serde_json::to_string(t).unwrap(), "\"b-1\"");
        }
        let back: Text<'static> = serde_json::from_str("\"b-1\"").unwrap();
        assert_eq!(back, texts[0].clone().into_static());
    }
}

//! The one normalization entry point, shared by the running pipeline and `normalizer check`.

use crate::providers::{registry, NormalizeError, NormalizeOptions, Normalized, RawRecord};

/// Maps a stored raw record to events with the provider it names.
pub fn normalize(raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
    registry(raw.envelope.provider).normalize(raw, opts)
}

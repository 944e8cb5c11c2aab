//! The one normalization entry point, shared by the running pipeline and `normalizer check`.

use crate::providers::{registry, NormalizeError, NormalizeOptions, Normalized, RawRecord};
use schemas::ProviderId;

/// Maps a stored raw record to events with the provider it names.
pub fn normalize(raw: &RawRecord<'_>, opts: &NormalizeOptions) -> Result<Normalized, NormalizeError> {
    let provider = raw.envelope.provider.as_str();
    let id: ProviderId = provider.parse().map_err(|_| NormalizeError::UnknownProvider(provider.to_string()))?;
    registry(id).normalize(raw, opts)
}

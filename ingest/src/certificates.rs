//! Where SNS signing certificates come from: local files named in the config, else
//! an HTTPS GET of the (already allow-listed) `SigningCertURL`. The normalizer
//! crate caches what this returns, so each certificate is fetched once.

use normalizer::providers::ses::signature::{set_certificate_source, CertificateSource};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub struct SnsCertificates {
    files: BTreeMap<String, String>,
    agent: ureq::Agent,
}

impl CertificateSource for SnsCertificates {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        if let Some(path) = self.files.get(url) {
            return std::fs::read(path).map_err(|e| format!("{path}: {e}"));
        }
        let resp = self.agent.get(url).call().map_err(|e| e.to_string())?;
        let mut pem = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader().take(64 * 1024), &mut pem).map_err(|e| e.to_string())?;
        Ok(pem)
    }
}

/// Installs the process-wide certificate source.
pub fn install(files: BTreeMap<String, String>) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    set_certificate_source(Arc::new(SnsCertificates { files, agent }));
}

use std::io::Read as _;

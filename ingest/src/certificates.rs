//! Where SNS signing certificates come from in production: an HTTPS GET of the (already
//! allow-listed, `https://sns.<region>.amazonaws.com/SimpleNotificationService-<32 hex>.pem`)
//! `SigningCertURL`, following no redirect, reading at most 64 KiB. The normalizer crate caches
//! what this returns (and failures, for a while) and bounds concurrent fetches.
//!
//! There is deliberately no way to configure another source: tests build their own
//! `VerifyContext` with a test source, so the committed test certificate can never verify
//! traffic of a running service.

use normalizer::providers::ses::signature::CertificateSource;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

/// Largest certificate read.
const MAX_CERTIFICATE_BYTES: u64 = 64 * 1024;

pub struct SnsCertificates {
    agent: ureq::Agent,
}

impl CertificateSource for SnsCertificates {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let resp = self.agent.get(url).call().map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("HTTP {}", resp.status()));
        }
        let mut pem = Vec::new();
        resp.into_reader().take(MAX_CERTIFICATE_BYTES).read_to_end(&mut pem).map_err(|e| e.to_string())?;
        Ok(pem)
    }
}

/// An agent that never follows a redirect (a redirect could leave the SNS host).
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).redirects(0).build()
}

/// The production certificate source, for the service's `VerifyContext`.
pub fn source() -> Arc<dyn CertificateSource> {
    Arc::new(SnsCertificates { agent: agent() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A redirect is an error, not followed (a local server answers 302 to anything).
    #[test]
    fn redirects_are_not_followed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/evil.pem\r\nContent-Length: 0\r\n\r\n");
        });
        let source = SnsCertificates { agent: agent() };
        let err = source.fetch(&format!("http://{addr}/SimpleNotificationService-x.pem")).unwrap_err();
        assert!(err.contains("302"), "{err}");
        server.join().unwrap();
    }
}

//! Shared HTTP client plumbing for the port adapters.

use std::time::Duration;
use ykt_kernel::ports::PortError;

/// A client with the timeouts every port call uses.
pub fn client() -> Result<reqwest::Client, PortError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| PortError::new("HTTP", e.to_string(), false))
}

/// A client with a longer overall timeout (pulling a very large order, a benchmark's transfer).
pub fn client_with_timeout(timeout: Duration) -> Result<reqwest::Client, PortError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .build()
        .map_err(|e| PortError::new("HTTP", e.to_string(), false))
}

/// Map a transport error to a port error (timeouts and connection failures are retryable).
pub fn transport(system: &str, e: reqwest::Error) -> PortError {
    let retryable = e.is_timeout() || e.is_connect() || e.is_request();
    PortError::new(
        system,
        format!("通信失败 (transport error): {e}"),
        retryable,
    )
}

//! Running a simulator: an axum router served on an ephemeral localhost port.

use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SimServer {
    /// Serve `router` on `127.0.0.1:0`.
    pub async fn start(router: axum::Router) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "simulator stopped");
            }
        });
        Ok(SimServer { addr, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_on_an_ephemeral_port() {
        let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let s = SimServer::start(router).await.unwrap();
        let body = reqwest::get(format!("{}/ping", s.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "pong");
    }
}

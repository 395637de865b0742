//! One keep-alive HTTP/1.1 connection (hyper's client), reopened when the server closes it:
//! what the admin API's pushes and the polling clients' requests go over.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub const JSON: &str = "application/json";

/// One keep-alive connection; reopened when the server closes it.
pub struct HttpConn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Bytes read at a time; `None`: hyper's default (8 KiB, adapting to the traffic).
    read_size: Option<usize>,
}

impl HttpConn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string()).expect("valid host header"),
            sender: None,
            read_size: None,
        }
    }

    /// A connection that reads 1 KiB at a time: enough for answers of a few bytes, and
    /// 7 KiB less per connection than hyper's default for the many of polling clients.
    pub fn small_reads(addr: SocketAddr) -> Self {
        Self {
            read_size: Some(1024),
            ..Self::new(addr)
        }
    }

    async fn ready(&mut self) -> io::Result<&mut SendRequest<Full<Bytes>>> {
        let healthy = match &mut self.sender {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !healthy {
            self.sender = None;
            let tcp = TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
                .read_buf_exact_size(self.read_size)
                .handshake(TokioIo::new(tcp))
                .await
                .map_err(io::Error::other)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.ready().await.map_err(io::Error::other)?;
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("set above"))
    }

    /// Waits until the connection can take a request (so that a timestamp taken next is the
    /// moment the request is written).
    pub async fn wait_ready(&mut self) -> io::Result<()> {
        self.ready().await.map(|_| ())
    }

    /// GETs `path`; returns the status and the response body.
    pub async fn get(&mut self, path: &str) -> io::Result<(u16, Bytes)> {
        self.request(Method::GET, path, None, Bytes::new()).await
    }

    /// POSTs a body of type `content_type`; returns the status and the response body.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> io::Result<(u16, Bytes)> {
        self.request(Method::POST, path, Some(content_type), body)
            .await
    }

    async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> io::Result<(u16, Bytes)> {
        let host = self.host.clone();
        let sender = self.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host);
        if let Some(content_type) = content_type {
            req = req.header(CONTENT_TYPE, content_type);
        }
        let req = req.body(Full::new(body)).map_err(io::Error::other)?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(io::Error::other(e));
            }
        };
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?
            .to_bytes();
        Ok((status, body))
    }
}

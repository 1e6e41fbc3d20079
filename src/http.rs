//! The little HTTP lockstep speaks: a JSON POST to a webhook (`[hooks] webhook`), and a
//! server for one page (`--metrics-listen`). HTTP/1.1 over a plain TCP connection, one
//! request per connection (`Connection: close`), no redirects, no TLS: webhooks are
//! `http://` URLs (put a local relay in front of an `https://` endpoint).

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `url` with any `user:password@` before its host replaced by `…@`.
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let sep = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{sep}…@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// An `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses an `http://` URL; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Url, String> {
        // The URL as messages show it: never the credentials it may carry.
        let shown = redacted(url);
        let s = shown.as_str();
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "`{s}`: https is not supported; use an http:// URL (a local relay can forward to https)"
                ))
            }
            _ => return Err(format!("`{s}`: expected an http:// URL")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(format!(
                "`{s}`: credentials in the URL are not supported (they would be sent in clear)"
            ));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            // [v6]:port
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: unclosed `[` in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
                None => 80,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("`{s}`: bad port `{p}`"))?,
                ),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(format!("`{s}`: no host"));
        }
        Ok(Url { host, port, path })
    }

    /// The `Host` header value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// The most of a response lockstep reads.
const MAX_RESPONSE: usize = 64 * 1024;

/// POSTs `body` (JSON) to `url` and returns the response's status code; the whole exchange
/// must end within `timeout`.
pub async fn post_json(url: &Url, body: &str, timeout: Duration) -> Result<u16, String> {
    match tokio::time::timeout(timeout, exchange(url, body)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

async fn exchange(url: &Url, body: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", url.host, url.port))?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lockstep/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("cannot read the response: {e}"))?;
        if n == 0 || head.len() > MAX_RESPONSE {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).ok_or_else(|| {
        format!(
            "not an HTTP response: `{}`",
            String::from_utf8_lossy(&head[..head.len().min(80)])
        )
    })
}

/// The status code of a response's first line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

/// A response of the one-page server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// Serves requests on `listener` until the future is dropped: each request's path goes to
/// `page`, whose answer is sent back. A client that sends nothing for 10 s is dropped.
pub async fn serve<F, Fut>(listener: TcpListener, page: F)
where
    F: Fn(String) -> Fut + Clone + 'static,
    Fut: Future<Output = Page> + 'static,
{
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let page = page.clone();
        let one = async move {
            let Ok(Ok(Some(path))) =
                tokio::time::timeout(Duration::from_secs(10), request_path(&mut stream)).await
            else {
                return;
            };
            let p = page(path).await;
            let reason = match p.status {
                200 => "OK",
                404 => "Not Found",
                405 => "Method Not Allowed",
                _ => "Error",
            };
            let response = format!(
                "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                p.status,
                p.content_type,
                p.body.len(),
                p.body
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        };
        // Requests are few (a scraper every few seconds): one at a time is enough, and the
        // page future need not be Send.
        one.await;
    }
}

/// Reads a request's head and returns its path (`None` for what is not a GET or HEAD).
async fn request_path(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    Ok(match (words.next(), words.next()) {
        (Some("GET" | "HEAD"), Some(path)) => Some(path.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_clear_errors() {
        assert_eq!(
            Url::parse("http://hooks.internal:8080/lockstep?x=1"),
            Ok(Url {
                host: "hooks.internal".into(),
                port: 8080,
                path: "/lockstep?x=1".into()
            })
        );
        let u = Url::parse("http://127.0.0.1").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(Url::parse("http://[::1]:9/a").unwrap().host, "::1");
        assert_eq!(Url::parse("http://h?q").unwrap().path, "/?q");
        assert!(Url::parse("https://x")
            .unwrap_err()
            .contains("https is not supported"));
        assert!(Url::parse("ftp://x").unwrap_err().contains("http://"));
        for creds in [
            "http://u:s3cret@x/",
            "https://u:s3cret@x/",
            "http://u:s3cret@x:bad/",
        ] {
            let e = Url::parse(creds).unwrap_err();
            assert!(!e.contains("s3cret") && e.contains("…@x"), "{e}");
        }
        assert!(Url::parse("http://u:p@x/")
            .unwrap_err()
            .contains("credentials"));
        assert!(Url::parse("http://x:99999/")
            .unwrap_err()
            .contains("bad port"));
        assert_eq!(
            Url::parse("http://h:8080/p").unwrap().to_string(),
            "http://h:8080/p"
        );
    }

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 500 x\r\n"), Some(500));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[test]
    fn a_post_gets_its_status_and_a_page_is_served() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A receiver that answers 204 and keeps what it was sent.
            let hook = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = Url::parse(&format!(
                "http://127.0.0.1:{}/in",
                hook.local_addr().unwrap().port()
            ))
            .unwrap();
            let received = tokio::spawn(async move {
                let (mut s, _) = hook.accept().await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !String::from_utf8_lossy(&got).ends_with("{\"a\":1}") {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .await
                    .unwrap();
                String::from_utf8(got).unwrap()
            });
            let status = post_json(&url, "{\"a\":1}", Duration::from_secs(10)).await;
            assert_eq!(status, Ok(204));
            let request = received.await.unwrap();
            assert!(request.starts_with("POST /in HTTP/1.1\r\n"), "{request}");
            assert!(request.contains("Content-Length: 7\r\n"), "{request}");

            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve(listener, |path: String| async move {
                Page {
                    status: if path == "/metrics" { 200 } else { 404 },
                    content_type: "text/plain",
                    body: format!("page {path}"),
                }
            }));
            for (path, want) in [("/metrics", "200 OK"), ("/other", "404 Not Found")] {
                let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).await.unwrap();
                assert!(
                    answer.starts_with(&format!("HTTP/1.1 {want}\r\n")),
                    "{answer}"
                );
                assert!(answer.ends_with(&format!("page {path}")), "{answer}");
            }
            // Nobody listening: a clear error, not a hang.
            drop(server);
            let closed = Url::parse("http://127.0.0.1:1/").unwrap();
            assert!(post_json(&closed, "{}", Duration::from_secs(5))
                .await
                .unwrap_err()
                .contains("cannot connect"));
        });
    }
}

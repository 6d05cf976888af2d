//! The controller's side of the agent protocol: an authenticated HTTP/JSON server on
//! loopback that hands validated [`Message`]s to a [`Handler`] and sends back its [`Reply`].
//!
//! Why these choices:
//! - **A maintained HTTP stack, not a parser of our own**: hyper (HTTP/1.1 only) on a small
//!   tokio runtime owned by the server. tiny_http was the first candidate, but its 0.12
//!   release drains an unread request body on drop into `vec![0; remaining]`, where
//!   `remaining` comes from the client's `Content-Length` header: one unauthenticated
//!   request declaring a terabyte aborts the process (`src/util/equal_reader.rs`). hyper
//!   never allocates from a declared length; the body is read through
//!   [`http_body_util::Limited`], so a body over the limit costs at most the limit.
//! - **Loopback unless told otherwise**: [`ControlServer::start`] refuses a non-loopback
//!   address unless [`ServerOptions::allow_remote`] is set.
//! - **A per-run secret**: [`Secret`] is 32 bytes from the OS RNG, written as hex to a mode
//!   0600 file (created 0600, never chmod-ed afterwards, so no other user can read it even
//!   for an instant) for the agents; every request carries `Authorization: Bearer <hex>`,
//!   compared in constant time. A request without it gets 401 before its path, method or
//!   body is looked at, so the handler never sees it.
//! - **Bounded work per request**: headers at most 16 KiB, the body at most
//!   [`ServerOptions::max_body_bytes`], each within [`ServerOptions::read_timeout`], at most
//!   [`ServerOptions::max_connections`] connections (more are closed at once).
//! - **No panic reaches the caller**: a panicking handler becomes a 500 for that request and
//!   the server goes on; nothing on the request path unwraps.
//!
//! Statuses: 200 with the reply; 400 malformed JSON or a validation error (JSON
//! `{"error", "field", "message"}` naming the field); 401 no or wrong token; 404 unknown path;
//! 405 a known path with a method other than POST; 408 body too slow; 413 body too large;
//! 500 the handler panicked or returned an invalid reply.

use std::convert::Infallible;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::sync::{Semaphore, watch};

use super::protocol::{Goodbye, Hello, Message, Progress, Reply};
use crate::io::FileError;
use crate::validate::FieldError;

/// Bytes of randomness in a secret.
pub const SECRET_BYTES: usize = 32;
const SECRET_HEX_LEN: usize = SECRET_BYTES * 2;

/// The per-run shared secret. Kept as its hex text, the form the header carries, so a check
/// is one constant-time comparison. `Debug` never prints it.
#[derive(Clone)]
pub struct Secret {
    hex: [u8; SECRET_HEX_LEN],
}

/// The secret could not be made, written or read.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error("cannot read the OS random number generator: {0}")]
    Rng(String),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{}: not a secret: must be {SECRET_HEX_LEN} lowercase hex digits", file.display())]
    Malformed { file: PathBuf },
}

impl Secret {
    /// A fresh secret from the operating system's RNG.
    pub fn generate() -> Result<Self, SecretError> {
        let mut raw = [0u8; SECRET_BYTES];
        getrandom::fill(&mut raw).map_err(|e| SecretError::Rng(e.to_string()))?;
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; SECRET_HEX_LEN];
        for (i, b) in raw.iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        Ok(Self { hex })
    }

    /// Parses the hex text (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let t = text.trim().as_bytes();
        if t.len() != SECRET_HEX_LEN || !t.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut hex = [0u8; SECRET_HEX_LEN];
        hex.copy_from_slice(t);
        Some(Self { hex })
    }

    /// The hex text, for clients (tests, a Rust agent) that must send it.
    pub fn expose_hex(&self) -> &str {
        // The bytes are always ASCII hex digits (checked or generated above).
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }

    /// The `Authorization` header value a client sends.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.expose_hex())
    }

    /// Whether an `Authorization` header value carries this secret. Constant time in the
    /// token's content: the length and the `Bearer ` prefix are not secret.
    pub fn verify_header(&self, value: &[u8]) -> bool {
        const PREFIX: &[u8] = b"Bearer ";
        let Some(token) = value.strip_prefix(PREFIX) else {
            return false;
        };
        token.len() == SECRET_HEX_LEN && bool::from(token.ct_eq(&self.hex))
    }

    /// Writes the secret to `path` atomically, created with mode 0600 so that only this user
    /// can ever read it (`crate::io::write_atomic` creates with the umask's mode, which would
    /// leave the secret readable between create and a later chmod).
    pub fn write_to(&self, path: &Path) -> Result<(), SecretError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else {
            return Err(FileError {
                file: path.to_path_buf(),
                op: "write",
                error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
            }
            .into());
        };
        let tmp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            std::fs::create_dir_all(dir)?;
            // create_new: never follow or reuse a file (or symlink) planted at the name.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&self.hex)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(FileError::on(path, "write"))?;
        Ok(())
    }

    /// Reads a secret written by [`Secret::write_to`].
    pub fn read_from(path: &Path) -> Result<Self, SecretError> {
        let text = crate::io::read_text(path)?;
        Self::from_hex(&text).ok_or_else(|| SecretError::Malformed {
            file: path.to_path_buf(),
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What the controller does with each validated message. Calls are serialised (one at a
/// time, behind a mutex) and made on the server's runtime threads, so a handler should
/// answer quickly: it updates state and decides, it does not wait on Spark.
pub trait Handler: Send + 'static {
    fn handle(&mut self, msg: Message) -> Reply;
}

/// Limits and switches of a [`ControlServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Allow a non-loopback bind address (agents on other machines). Off by default.
    pub allow_remote: bool,
    /// Largest request body; larger ones get 413 without being read past the limit.
    pub max_body_bytes: usize,
    /// Longest time the headers, and separately the body, of a request may take to arrive.
    pub read_timeout: Duration,
    /// Most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            allow_remote: false,
            // A Progress of a few hundred stages is tens of KiB; 1 MiB leaves a wide margin
            // and still bounds what one request can make the server hold.
            max_body_bytes: 1 << 20,
            read_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// The server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(
        "{addr}: refusing to listen on a non-loopback address (agents would be reachable \
         from other machines); set allow_remote to do it on purpose"
    )]
    NonLoopback { addr: SocketAddr },
    #[error("{addr}: cannot listen: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot start the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("server option {0}")]
    Option(FieldError),
}

/// The address a control server binds when nothing else is asked: loopback, any free port.
pub fn default_bind() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

/// A running control server. Dropping it stops it too.
pub struct ControlServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    secret: Secret,
    handler: Mutex<Box<dyn Handler>>,
    max_body_bytes: usize,
    read_timeout: Duration,
}

impl ControlServer {
    /// Starts a server on `bind` with the default [`ServerOptions`].
    pub fn start(
        bind: SocketAddr,
        secret: Secret,
        handler: impl Handler,
    ) -> Result<Self, ServerError> {
        Self::start_with(bind, secret, handler, ServerOptions::default())
    }

    /// Starts a server; it listens before this returns, so [`ControlServer::addr`] is ready
    /// for agents at once.
    pub fn start_with(
        bind: SocketAddr,
        secret: Secret,
        handler: impl Handler,
        options: ServerOptions,
    ) -> Result<Self, ServerError> {
        if !bind.ip().is_loopback() && !options.allow_remote {
            return Err(ServerError::NonLoopback { addr: bind });
        }
        crate::validate::in_range("max_body_bytes", options.max_body_bytes, 1, 1 << 30)
            .and_then(|()| {
                crate::validate::in_range("max_connections", options.max_connections, 1, 65_536)
            })
            .and_then(|()| {
                crate::validate::in_range(
                    "read_timeout (ms)",
                    options.read_timeout.as_millis(),
                    1,
                    3_600_000,
                )
            })
            .map_err(ServerError::Option)?;

        let bind_err = |error| ServerError::Bind { addr: bind, error };
        let std_listener = std::net::TcpListener::bind(bind).map_err(bind_err)?;
        let addr = std_listener.local_addr().map_err(bind_err)?;
        std_listener.set_nonblocking(true).map_err(bind_err)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mpda-control")
            .enable_io()
            .enable_time()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?
        };

        let shared = Arc::new(Shared {
            secret,
            handler: Mutex::new(Box::new(handler)),
            max_body_bytes: options.max_body_bytes,
            read_timeout: options.read_timeout,
        });
        let (stop, stop_rx) = watch::channel(false);
        let max_connections = options.max_connections;
        let thread = std::thread::Builder::new()
            .name("mpda-control-accept".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, shared, stop_rx, max_connections));
                // Open connections are dropped here; nothing waits on a slow client.
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(ServerError::Runtime)?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port the OS chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL agents use, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes open connections and joins the server thread. Returns within
    /// about half a second even with clients connected.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    max_connections: usize,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or a connection reset before accept: wait a
                // little instead of spinning, then go on.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // over the connection limit: `stream` is dropped, i.e. closed
        };
        let shared = shared.clone();
        let header_timeout = shared.read_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&shared, req).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    field: Option<&'a str>,
    message: &'a str,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(
    status: StatusCode,
    error: &str,
    field: Option<&str>,
    message: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorBody {
        error,
        field,
        message,
    })
    .unwrap_or_default();
    json_response(status, body)
}

#[derive(Clone, Copy)]
enum Kind {
    Hello,
    Progress,
    Goodbye,
}

async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    // 1. Who: nothing else about a request is looked at before its token.
    let authorised = req
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| shared.secret.verify_header(v.as_bytes()));
    if !authorised {
        let mut r = error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            None,
            "missing or wrong Authorization: Bearer token",
        );
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        return r;
    }

    // 2. Where.
    let kind = match req.uri().path() {
        "/v1/hello" => Kind::Hello,
        "/v1/progress" => Kind::Progress,
        "/v1/goodbye" => Kind::Goodbye,
        other => {
            let msg = format!(
                "no such endpoint {other:?}; POST to /v1/hello, /v1/progress or /v1/goodbye"
            );
            return error_response(StatusCode::NOT_FOUND, "not_found", None, &msg);
        }
    };
    if req.method() != Method::POST {
        let mut r = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
            "only POST is accepted",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }

    // 3. How much: refuse a declared length over the limit before reading a byte of it.
    let limit = shared.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let body = Limited::new(req.into_body(), limit);
    let bytes = match tokio::time::timeout(shared.read_timeout, body.collect()).await {
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                None,
                "the body did not arrive in time",
            );
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(limit),
        Ok(Err(e)) => {
            let msg = format!("cannot read the body: {e}");
            return error_response(StatusCode::BAD_REQUEST, "bad_body", None, &msg);
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };

    // 4. What: parse, then validate.
    let msg = match kind {
        Kind::Hello => parse::<Hello>(&bytes).map(Message::Hello),
        Kind::Progress => parse::<Progress>(&bytes).map(Message::Progress),
        Kind::Goodbye => parse::<Goodbye>(&bytes).map(Message::Goodbye),
    };
    let msg = match msg {
        Ok(m) => m,
        Err(e) => {
            let field = e.field.as_deref();
            return error_response(StatusCode::BAD_REQUEST, "malformed", field, &e.message);
        }
    };
    if let Err(e) = msg.validate() {
        return error_response(StatusCode::BAD_REQUEST, "invalid", Some(&e.field), &e.msg);
    }

    // 5. Decide. A panicking handler is one failed request, not a dead server; the mutex is
    // taken even if a past panic poisoned it, since the panic was caught before unlocking.
    let reply = {
        let mut handler = shared
            .handler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        catch_unwind(AssertUnwindSafe(|| handler.handle(msg)))
    };
    let Ok(reply) = reply else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            "the controller failed on this message",
        );
    };
    if let Err(e) = reply.validate() {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            Some(&e.field),
            &format!("the controller produced an invalid reply: {}", e.msg),
        );
    }
    match serde_json::to_vec(&reply) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            &e.to_string(),
        ),
    }
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    let msg = format!("the body must be at most {limit} bytes");
    error_response(StatusCode::PAYLOAD_TOO_LARGE, "too_large", None, &msg)
}

/// Why a body did not parse: the field where parsing stopped (`stages[2].num_tasks`), or
/// none for a syntax error before any field, and serde's message.
struct ParseError {
    field: Option<String>,
    message: String,
}

/// Parses a whole body as `T`.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ParseError {
            field: (path != "." && !path.is_empty()).then_some(path),
            message: e.inner().to_string(),
        }
    })?;
    // One object per body: trailing data after it is refused, not ignored.
    de.end().map_err(|e| ParseError {
        field: None,
        message: e.to_string(),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_secret_file_is_mode_0600_and_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let first = Secret::generate().unwrap();
        first.write_to(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");

        // A second write replaces it, still 0600, and leaves no temporary file behind.
        let second = Secret::generate().unwrap();
        second.write_to(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        assert_eq!(
            Secret::read_from(&path).unwrap().expose_hex(),
            second.expose_hex()
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn the_header_check_wants_the_exact_bearer_token() {
        let s = Secret::generate().unwrap();
        assert!(s.verify_header(s.bearer().as_bytes()));
        assert!(!s.verify_header(s.expose_hex().as_bytes()));
        assert!(!s.verify_header(b"Bearer "));
        assert!(!s.verify_header(format!("{} ", s.bearer()).as_bytes()));
        let other = Secret::generate().unwrap();
        assert!(!s.verify_header(other.bearer().as_bytes()));
        assert!(Secret::from_hex("ABCDEF").is_none());
        assert!(Secret::from_hex(&"A".repeat(64)).is_none());
    }
}

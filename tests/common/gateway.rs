//! A minimal client for etcd 3.4's JSON gateway (grpc-gateway), written on std `TcpStream`.
//!
//! Gateway conventions: keys and values are base64, int64 fields are JSON strings, fields with
//! their zero value are omitted, errors come back as HTTP 400 with
//! `{"error": "etcdserver: mvcc: ...", "code": 11}`. Every answer is turned into exactly the
//! SPEC §3 shape of the scripted `etcd.*` step (see [`Gateway`] and [`WatchStream`]).
//!
//! Watches use one streaming `POST /v3/watch` per watch (like one `etcdctl watch` per watch). The
//! request body is sent with chunked transfer encoding and kept open, so that progress and cancel
//! requests can follow on the same gRPC stream. The request carries `Expect: 100-continue`: Go's
//! HTTP/1.1 server (etcd 3.4.23 is built with Go 1.19) would otherwise try to drain a still-open
//! request body before writing the first response byte, which blocks the stream until the body is
//! closed. With the header it marks the connection close-after-reply instead and streams both
//! ways.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------------------------------------
// base64 (standard alphabet, padded) -- a dozen lines instead of a dependency.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional).
pub fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .ok_or_else(|| format!("bad base64 {s:?}"))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------
// Small JSON helpers for the gateway's encoding.

/// An int64 field as the gateway sends it (a string; absent means 0).
pub fn int(v: &Value, field: &str) -> i64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn header_revision(v: &Value) -> i64 {
    v.get("header").map(|h| int(h, "revision")).unwrap_or(0)
}

fn key_of(v: &Value) -> String {
    let raw = v.get("key").and_then(Value::as_str).unwrap_or("");
    String::from_utf8_lossy(&b64_decode(raw).unwrap_or_default()).into_owned()
}

/// The exclusive end of a prefix range: the prefix with its last byte incremented.
pub fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

fn range_fields(body: &mut Value, key: &str, prefix: bool) {
    // etcdctl's `get "" --prefix`: the whole keyspace is key "\0" .. range_end "\0" (etcd refuses
    // an empty key with "key is not provided").
    if key.is_empty() && prefix {
        body["key"] = json!(b64_encode(b"\0"));
        body["range_end"] = json!(b64_encode(b"\0"));
        return;
    }
    body["key"] = json!(b64_encode(key.as_bytes()));
    if prefix {
        body["range_end"] = json!(b64_encode(&prefix_end(key.as_bytes())));
    }
}

/// Maps a gateway error body to the SPEC error result, if it is one of the two MVCC errors.
/// etcd 3.4's grpc-gateway puts the text under `error`, 3.5+ under `message`.
fn mvcc_error(body: &Value, compact_revision: i64) -> Option<Value> {
    let msg = body
        .get("error")
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if msg.contains("required revision has been compacted") {
        Some(json!({"error": "compacted", "compact_revision": compact_revision}))
    } else if msg.contains("required revision is a future revision") {
        Some(json!({"error": "future_revision"}))
    } else {
        None
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP/1.1 plumbing.

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads a status line and headers, skipping interim `1xx` responses. Returns the status code and
/// the headers (names lower-cased).
fn read_head(r: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), String> {
    loop {
        let status = read_line(r)?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line {status:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        if !(100..200).contains(&code) {
            return Ok((code, headers));
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A `Read` over an HTTP chunked body; EOF at the terminating zero-size chunk.
pub struct ChunkedReader<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    pub fn new(inner: R) -> Self {
        ChunkedReader {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::{Error, ErrorKind};
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let line =
                read_line(&mut self.inner).map_err(|e| Error::new(ErrorKind::UnexpectedEof, e))?;
            let size = line.split(';').next().unwrap_or("").trim();
            self.left = usize::from_str_radix(size, 16).map_err(|_| {
                Error::new(ErrorKind::InvalidData, format!("bad chunk size {line:?}"))
            })?;
            if self.left == 0 {
                // Trailers, then the blank line.
                while !read_line(&mut self.inner)
                    .map_err(|e| Error::new(ErrorKind::UnexpectedEof, e))?
                    .is_empty()
                {}
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "eof inside a chunk"));
        }
        self.left -= n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

fn read_body(r: &mut impl BufRead, headers: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        ChunkedReader::new(r)
            .read_to_end(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
    } else if let Some(len) = header(headers, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len:?}"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
    } else {
        r.read_to_end(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
    }
    Ok(body)
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

// ------------------------------------------------------------------------------------------------
// KV.

/// A keep-alive connection to the gateway for unary KV calls.
pub struct Gateway {
    addr: SocketAddr,
    conn: BufReader<TcpStream>,
    /// The highest revision this client compacted successfully (-1: none). The gateway's
    /// compacted error carries no compact revision, so `{"error":"compacted","compact_revision"}`
    /// reports this one. It is exact as long as this client is the only compactor of its etcd
    /// (auto-compaction is off), which holds for the private etcd of each test.
    pub compact_revision: i64,
}

impl Gateway {
    /// Connects (no request is sent).
    pub fn connect(addr: SocketAddr) -> Result<Gateway, String> {
        let s = connect(addr)?;
        s.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        Ok(Gateway {
            addr,
            conn: BufReader::new(s),
            compact_revision: -1,
        })
    }

    /// One POST with a JSON body; returns the HTTP status and the parsed JSON answer.
    pub fn post(&mut self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let payload = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.addr,
            payload.len()
        );
        let s = self.conn.get_mut();
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(&payload))
            .map_err(|e| format!("POST {path}: {e}"))?;
        let (code, headers) = read_head(&mut self.conn).map_err(|e| format!("POST {path}: {e}"))?;
        let raw = read_body(&mut self.conn, &headers).map_err(|e| format!("POST {path}: {e}"))?;
        let v: Value = serde_json::from_slice(&raw).map_err(|e| {
            format!(
                "POST {path}: HTTP {code}, not JSON ({e}): {}",
                String::from_utf8_lossy(&raw)
            )
        })?;
        Ok((code, v))
    }

    fn call(&mut self, path: &str, body: &Value) -> Result<Result<Value, Value>, String> {
        let (code, v) = self.post(path, body)?;
        match code {
            200 => Ok(Ok(v)),
            _ => match mvcc_error(&v, self.compact_revision) {
                Some(e) => Ok(Err(e)),
                None => Err(format!("POST {path} {body}: HTTP {code}: {v}")),
            },
        }
    }

    /// The current store revision (a range of the empty key).
    pub fn current_revision(&mut self) -> Result<i64, String> {
        let (code, v) = self.post("/v3/kv/range", &json!({"key": b64_encode(b"\0")}))?;
        if code != 200 {
            return Err(format!("range: HTTP {code}: {v}"));
        }
        Ok(header_revision(&v))
    }

    /// `etcd.put` → `{"revision"}`.
    pub fn put(&mut self, key: &str, value_bytes: usize) -> Result<Value, String> {
        let body = json!({"key": b64_encode(key.as_bytes()), "value": b64_encode(&vec![b'x'; value_bytes])});
        match self.call("/v3/kv/put", &body)? {
            Ok(v) => Ok(json!({"revision": header_revision(&v)})),
            Err(e) => Ok(e),
        }
    }

    /// `etcd.delete` → `{"revision", "deleted"}`.
    pub fn delete(&mut self, key: &str, prefix: bool) -> Result<Value, String> {
        let mut body = json!({});
        range_fields(&mut body, key, prefix);
        match self.call("/v3/kv/deleterange", &body)? {
            Ok(v) => Ok(json!({"revision": header_revision(&v), "deleted": int(&v, "deleted")})),
            Err(e) => Ok(e),
        }
    }

    /// `etcd.range` → `{"revision", "count", "more", "kvs"}` or an error result.
    pub fn range(
        &mut self,
        key: &str,
        prefix: bool,
        revision: i64,
        limit: i64,
    ) -> Result<Value, String> {
        let mut body = json!({"keys_only": true});
        range_fields(&mut body, key, prefix);
        if revision != 0 {
            body["revision"] = json!(revision.to_string());
        }
        if limit != 0 {
            body["limit"] = json!(limit.to_string());
        }
        match self.call("/v3/kv/range", &body)? {
            Ok(v) => {
                let kvs: Vec<Value> = v
                    .get("kvs")
                    .and_then(Value::as_array)
                    .map(|a| a.as_slice())
                    .unwrap_or(&[])
                    .iter()
                    .map(|kv| {
                        json!({
                            "key": key_of(kv),
                            "create_revision": int(kv, "create_revision"),
                            "mod_revision": int(kv, "mod_revision"),
                            "version": int(kv, "version"),
                        })
                    })
                    .collect();
                Ok(json!({
                    "revision": header_revision(&v),
                    "count": int(&v, "count"),
                    "more": v.get("more").and_then(Value::as_bool).unwrap_or(false),
                    "kvs": kvs,
                }))
            }
            Err(e) => Ok(e),
        }
    }

    /// `etcd.compact` (non-physical, like kube-apiserver's) → `{"revision"}` or an error result.
    pub fn compact(&mut self, revision: i64) -> Result<Value, String> {
        let body = json!({"revision": revision.to_string()});
        match self.call("/v3/kv/compaction", &body)? {
            Ok(v) => {
                self.compact_revision = self.compact_revision.max(revision);
                Ok(json!({"revision": header_revision(&v)}))
            }
            Err(e) => Ok(e),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Watch.

/// One watch on its own streaming `/v3/watch` request (its own gRPC watch stream).
///
/// Recorded events (SPEC §3): `PUT` / `DELETE` from `events`; `CANCELED` with its
/// `compact_revision` for every `canceled` response (0 when absent: the answer to a cancel
/// request); `PROGRESS` for a response that has no events and is neither `created` nor `canceled`
/// (only when recording is on, see [`WatchStream::request_progress`]).
pub struct WatchStream {
    writer: TcpStream,
    rx: Receiver<Result<Value, String>>,
    reader: Option<JoinHandle<()>>,
    /// The server-assigned watch id.
    pub watch_id: i64,
    /// Events in delivery order, SPEC shapes.
    pub events: Vec<Value>,
    /// Number of `PUT`/`DELETE` events in `events`.
    pub change_events: usize,
    /// The server said `canceled` (compaction or our cancel).
    pub canceled: bool,
    /// How many `canceled` responses arrived.
    pub canceled_responses: usize,
    /// Stream errors (gateway `{"error": ...}` objects, broken stream).
    pub errors: Vec<String>,
}

impl WatchStream {
    /// Opens the stream, sends the create request and waits for the `created` response.
    pub fn open(
        addr: SocketAddr,
        key: &str,
        prefix: bool,
        start_revision: i64,
        progress_notify: bool,
    ) -> Result<WatchStream, String> {
        let stream = connect(addr)?;
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        let head = format!(
            "POST /v3/watch HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        );
        writer
            .write_all(head.as_bytes())
            .map_err(|e| format!("watch: {e}"))?;
        let (tx, rx) = channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let headers = match read_head(&mut r) {
                Ok((200, h)) => h,
                Ok((code, _)) => {
                    let _ = tx.send(Err(format!("watch: HTTP {code}")));
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("watch: {e}")));
                    return;
                }
            };
            let chunked = header(&headers, "transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let body: Box<dyn Read> = if chunked {
                Box::new(ChunkedReader::new(r))
            } else {
                Box::new(r)
            };
            for item in serde_json::Deserializer::from_reader(body).into_iter::<Value>() {
                let msg = item.map_err(|e| format!("watch stream: {e}"));
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    return;
                }
            }
        });
        let mut create = json!({"key": b64_encode(key.as_bytes())});
        if prefix {
            create["range_end"] = json!(b64_encode(&prefix_end(key.as_bytes())));
        }
        if start_revision != 0 {
            create["start_revision"] = json!(start_revision.to_string());
        }
        if progress_notify {
            create["progress_notify"] = json!(true);
        }
        let mut w = WatchStream {
            writer,
            rx,
            reader: Some(reader),
            watch_id: 0,
            events: Vec::new(),
            change_events: 0,
            canceled: false,
            canceled_responses: 0,
            errors: Vec::new(),
        };
        w.send(&json!({"create_request": create}))?;
        match w.rx.recv_timeout(IO_TIMEOUT) {
            Ok(Ok(msg)) => {
                let result = msg.get("result").cloned().unwrap_or(Value::Null);
                if result.get("created").and_then(Value::as_bool) != Some(true) {
                    return Err(format!(
                        "watch: expected a created response first, got {msg}"
                    ));
                }
                w.watch_id = int(&result, "watch_id");
                // Anything else in the created response (never seen) is handled as usual.
                w.handle(msg, false);
                Ok(w)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("watch: no created response within 10 s".into()),
        }
    }

    fn send(&mut self, msg: &Value) -> Result<(), String> {
        let data = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(&data);
        framed.extend_from_slice(b"\r\n");
        self.writer
            .write_all(&framed)
            .map_err(|e| format!("watch send: {e}"))
    }

    /// Handles one stream message; returns `Some(revision)` for a progress response.
    fn handle(&mut self, msg: Value, record_progress: bool) -> Option<i64> {
        let Some(result) = msg.get("result") else {
            self.errors.push(format!("stream error: {msg}"));
            return None;
        };
        let created = result
            .get("created")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let canceled = result
            .get("canceled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let events = result
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for ev in &events {
            let kv = ev.get("kv").cloned().unwrap_or(Value::Null);
            let is_delete = matches!(ev.get("type"), Some(Value::String(t)) if t == "DELETE")
                || ev.get("type").and_then(Value::as_i64) == Some(1);
            self.events.push(json!({
                "type": if is_delete { "DELETE" } else { "PUT" },
                "key": key_of(&kv),
                "mod_revision": int(&kv, "mod_revision"),
                "create_revision": int(&kv, "create_revision"),
                "version": int(&kv, "version"),
            }));
            self.change_events += 1;
        }
        if canceled {
            self.canceled = true;
            self.canceled_responses += 1;
            let compact_revision = int(result, "compact_revision");
            self.events
                .push(json!({"type": "CANCELED", "compact_revision": compact_revision}));
            return None;
        }
        if events.is_empty() && !created {
            let rev = header_revision(result);
            if record_progress {
                self.events
                    .push(json!({"type": "PROGRESS", "revision": rev}));
            }
            return Some(rev);
        }
        None
    }

    /// Receives and handles messages until `done(self)` holds or `timeout` passes; returns
    /// whether `done` held.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&WatchStream) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(remaining) {
                Ok(Ok(msg)) => {
                    self.handle(msg, false);
                }
                Ok(Err(e)) => {
                    self.errors.push(e);
                    return done(self);
                }
                Err(RecvTimeoutError::Timeout) => return done(self),
                Err(RecvTimeoutError::Disconnected) => return done(self),
            }
        }
    }

    /// Handles everything already received, without waiting.
    pub fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Ok(msg) => {
                    self.handle(msg, false);
                }
                Err(e) => self.errors.push(e),
            }
        }
    }

    /// Sends a `progress_request` and waits for the progress response; returns its revision.
    /// With `record` the response is recorded as a `PROGRESS` event; without it, it only serves
    /// as a barrier (everything the server had queued before it has been received).
    ///
    /// etcd 3.4.23 answers a progress request at once with the store revision, even for a watcher
    /// still catching up (bug #15220): callers must only ask once the watch has caught up.
    pub fn request_progress(&mut self, record: bool, timeout: Duration) -> Result<i64, String> {
        self.send(&json!({"progress_request": {}}))?;
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(remaining) {
                Ok(Ok(msg)) => {
                    if let Some(rev) = self.handle(msg, record) {
                        return Ok(rev);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(format!("no progress response within {timeout:?}")),
            }
        }
    }

    /// Sends a `cancel_request` for this watch; with `expect_answer`, waits for the `canceled`
    /// answer. etcd answers a cancel for every watch id still registered on the stream: a live
    /// watch, and also one already canceled by compaction (its id stays in the stream's cancel
    /// map); a second cancel of the same id gets no answer.
    pub fn cancel(&mut self, expect_answer: bool, timeout: Duration) -> Result<(), String> {
        self.drain();
        let before = self.canceled_responses;
        self.send(&json!({"cancel_request": {"watch_id": self.watch_id.to_string()}}))?;
        if expect_answer && !self.wait_until(timeout, |w| w.canceled_responses > before) {
            return Err(format!("no canceled response within {timeout:?}"));
        }
        Ok(())
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "/registry/pods/a",
        ] {
            assert_eq!(b64_decode(&b64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64_encode(b"foo"), "Zm9v");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert_eq!(b64_encode(&[0]), "AA==");
    }
}

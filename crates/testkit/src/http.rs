//! A file server on 127.0.0.1 for the download tests: `HEAD` and `GET` with single byte
//! ranges (`Accept-Ranges: bytes`, `206 Partial Content`), one connection per request, and
//! faults on demand — a connection dropped after some bytes, a throttled rate — with a log of
//! every request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// `GET` or `HEAD`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The first byte asked for (0 without a range).
    pub start: u64,
}

#[derive(Default)]
struct State {
    /// path → (GETs still to drop, bytes to send before dropping).
    drops: HashMap<String, (u32, u64)>,
    /// Requests (any method, any path) still to answer with this status.
    failures: (u32, u16),
    log: Vec<Request>,
}

/// The server; stops when dropped.
pub struct Server {
    addr: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// Bytes per second per response (0: unthrottled).
    rate: Arc<AtomicU64>,
}

impl Server {
    /// Serve the files under `root`.
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let rate = Arc::new(AtomicU64::new(0));
        let (root, st, sp, rt) = (
            root.to_path_buf(),
            state.clone(),
            stop.clone(),
            rate.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, st, rt) = (root.clone(), st.clone(), rt.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &root, &st, &rt);
                });
            }
        });
        Server {
            addr,
            state,
            stop,
            rate,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.addr
    }

    /// Drop the connection of the next `times` GETs of `path` after `after` bytes of body.
    pub fn drop_after(&self, path: &str, times: u32, after: u64) {
        self.lock().drops.insert(path.to_string(), (times, after));
    }

    /// Answer the next `times` requests with HTTP `status` (e.g. 503) and no body.
    pub fn fail_next(&self, times: u32, status: u16) {
        self.lock().failures = (times, status);
    }

    /// Send at most `bytes_per_second` per response (0: no limit).
    pub fn throttle(&self, bytes_per_second: u64) {
        self.rate.store(bytes_per_second, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr.trim_start_matches("http://"));
    }
}

fn serve(
    conn: TcpStream,
    root: &Path,
    state: &Mutex<State>,
    rate: &AtomicU64,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut range: Option<(u64, Option<u64>)> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range:") {
            let v = v.trim().trim_start_matches("bytes=");
            let (a, b) = v.split_once('-').unwrap_or((v, ""));
            if let Ok(a) = a.parse::<u64>() {
                range = Some((a, b.parse::<u64>().ok()));
            }
        }
    }
    let mut out = conn;
    let file: PathBuf = root.join(path.trim_start_matches('/').split('?').next().unwrap_or(""));
    let (drop_at, fail) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.log.push(Request {
            method: method.clone(),
            path: path.clone(),
            start: range.map(|r| r.0).unwrap_or(0),
        });
        let fail = (s.failures.0 > 0).then(|| {
            s.failures.0 -= 1;
            s.failures.1
        });
        let drop_at = match s.drops.get_mut(&path) {
            Some((n, after)) if *n > 0 && method == "GET" => {
                *n -= 1;
                Some(*after)
            }
            _ => None,
        };
        (drop_at, fail)
    };
    if let Some(status) = fail {
        out.write_all(
            format!("HTTP/1.1 {status} Failing\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        return Ok(());
    }
    let opened = std::fs::File::open(&file)
        .ok()
        .filter(|_| file.is_file())
        .and_then(|f| f.metadata().ok().map(|m| (f, m.len())));
    let Some((data, len)) = opened else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    };
    let (status, start, end) = match range {
        Some((a, b)) if a < len => (
            "206 Partial Content",
            a,
            b.map_or(len, |b| (b + 1).min(len)),
        ),
        Some(_) => {
            out.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        None => ("200 OK", 0, len),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nETag: \"{len}\"\r\nConnection: close\r\n",
        end - start
    );
    if range.is_some() {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{len}\r\n",
            end.saturating_sub(1)
        ));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    let stop = drop_at.map_or(end, |n| (start + n).min(end));
    let r = rate.load(Ordering::SeqCst);
    // In slices of a tenth of a second's worth when throttled, else of 1 MiB.
    let step = if r == 0 { 1 << 20 } else { (r / 10).max(1) };
    let mut buf = vec![0u8; step as usize];
    let mut pos = start;
    while pos < stop {
        let n = step.min(stop - pos) as usize;
        std::os::unix::fs::FileExt::read_exact_at(&data, &mut buf[..n], pos)?;
        out.write_all(&buf[..n])?;
        pos += n as u64;
        if r > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    out.flush()?;
    if drop_at.is_some() {
        // Close without sending the rest: the client sees a short body.
        let _ = out.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

//! A mock of the Hugging Face hub, one implementation for every test: the Rust tests start it
//! in-process ([`MockHub::start`]); the browser (and Python) tests run it as the `mock_hub`
//! binary (src/main.rs), which builds without candle.
//!
//! It answers as the real hub does (facts in shared/NOTES.md):
//! - `GET/HEAD /{repo}/resolve/{rev}/{path}`: small files 200 with `ETag: "<git blob sha1>"` and
//!   `X-Repo-Commit`; LFS files (weights, data) 302 to `/lfs-store/<sha256>` on the *other* host
//!   name (`127.0.0.1` ↔ `localhost`, same port) with `X-Linked-Etag`, `X-Linked-Size`,
//!   `X-Repo-Commit`. Ranges: 206 with `Content-Range`.
//! - `GET /{repo}/raw/{rev}/{path}` (the LFS pointer for LFS files), `GET
//!   /api/models/{repo}/revision/{rev}`, `GET /api/models/{repo}/tree/{rev}[/{folder}][?recursive=true]`
//!   (404 `EntryNotFound` for a folder it lacks; paged with `Link: <…>; rel="next"` when the
//!   `tree_page_size` fault is set),
//!   `POST /api/models/{repo}/paths-info/{rev}`: what a browser uses, since `fetch` hides the
//!   302's headers.
//! - Datasets under `/datasets/{repo}/...` and `/api/datasets/{repo}/...`.
//! - CORS on every answer, OPTIONS preflights.
//! - Test control: `POST /__mock/faults` (JSON [`Faults`], replaces them), `GET /__mock/faults`,
//!   `GET /__mock/stats` (requests per path, body bytes sent, the request log), `POST
//!   /__mock/reset` (clears stats and faults). Control requests are not logged.
//!
//! Hand-rolled on `std::net` rather than tiny_http: the faults need control below an HTTP
//! library (cut the TCP connection after exactly N body bytes, pace the chunks), and one thread
//! per connection with `Connection: close` is all a test needs.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Fault switches. Files are named `{repo}/{path}`, e.g. `fixtures/tiny-relu-bin/pytorch_model.bin`
/// (datasets: `datasets/{repo}/{path}`); an LFS file's faults apply to its `/lfs-store` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Cut the connection after this many body bytes of the file; fires once, then is removed.
    pub cut_after: BTreeMap<String, u64>,
    /// Serve these files with one byte flipped (a sha mismatch).
    pub corrupt: BTreeSet<String>,
    /// Answer 404 (`EntryNotFound`) for these files.
    pub missing: BTreeSet<String>,
    /// Gated repos: repo → the token they accept. 401 without `Authorization`, 403 with another.
    pub gated: BTreeMap<String, String>,
    /// Sleep this long after each 16 KiB chunk of a body.
    pub delay_ms_per_chunk: u64,
    /// Answer Range requests with 200 and the whole file.
    pub ignore_range: bool,
    /// Page tree listings (`/api/.../tree/...`) this many entries at a time.
    pub tree_page_size: Option<usize>,
}

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub struct Logged {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Whether an `Authorization` header came with it.
    pub authorization: bool,
    pub status: u16,
    /// Body bytes actually written.
    pub bytes: u64,
}

/// What the hub has answered since the start or the last reset.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub log: Vec<Logged>,
}

impl Stats {
    pub fn requests(&self) -> usize {
        self.log.len()
    }

    pub fn bytes_sent(&self) -> u64 {
        self.log.iter().map(|l| l.bytes).sum()
    }

    /// Requests whose path contains `needle`.
    pub fn to(&self, needle: &str) -> Vec<&Logged> {
        self.log
            .iter()
            .filter(|l| l.path.contains(needle))
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let mut paths: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for l in &self.log {
            let e = paths.entry(&l.path).or_default();
            e.0 += 1;
            e.1 += l.bytes;
        }
        let paths: serde_json::Map<String, Value> = paths
            .into_iter()
            .map(|(p, (n, b))| (p.to_string(), json!({ "requests": n, "bytes": b })))
            .collect();
        json!({
            "requests": self.requests(),
            "bytes_sent": self.bytes_sent(),
            "paths": paths,
            "log": self.log,
        })
    }
}

struct Repo {
    files: BTreeMap<String, Arc<Vec<u8>>>,
    commit: String,
}

impl Repo {
    /// A fake commit derived from the content, so that it changes when a file does.
    fn recompute_commit(&mut self) {
        let mut h = Sha1::new();
        for (path, data) in &self.files {
            h.update(path.as_bytes());
            h.update([0]);
            h.update(Sha256::digest(data.as_slice()));
        }
        self.commit = hex(&h.finalize());
    }
}

#[derive(Default)]
struct State {
    /// Keyed by repo id; datasets as `datasets/{owner}/{name}`.
    repos: Mutex<BTreeMap<String, Repo>>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    /// Requests read but not yet logged. A client may have the whole answer before the server
    /// thread logs it, so the stats wait for this to drop to zero.
    in_flight: AtomicUsize,
}

impl State {
    fn settled_stats(&self) -> MutexGuard<'_, Stats> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        lock(&self.stats)
    }
}

/// A running mock hub; stops when dropped.
pub struct MockHub {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    listeners: Vec<(SocketAddr, JoinHandle<()>)>,
}

impl MockHub {
    /// An empty hub on 127.0.0.1 at `port` (0: any free port), and on `[::1]` at the same port
    /// where the machine has IPv6, so that `localhost` reaches it whichever address it resolves to.
    pub fn start(port: u16) -> io::Result<Self> {
        let v4 = TcpListener::bind(("127.0.0.1", port))?;
        let addr = v4.local_addr()?;
        let mut sockets = vec![v4];
        if let Ok(v6) = TcpListener::bind(("::1", addr.port())) {
            sockets.push(v6);
        }
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let listeners = sockets
            .into_iter()
            .map(|listener| {
                let local = listener.local_addr()?;
                let (state, stop) = (state.clone(), stop.clone());
                let thread = std::thread::spawn(move || accept_loop(listener, state, stop));
                Ok((local, thread))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            addr,
            state,
            stop,
            listeners,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves each folder under `root` as repo `{owner}/{folder}` (datasets: owner
    /// `datasets/{owner}`).
    pub fn add_folders(&self, owner: &str, root: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                let repo = format!("{owner}/{}", entry.file_name().to_string_lossy());
                let mut files = Vec::new();
                walk(&entry.path(), "", &mut files)?;
                for (path, data) in files {
                    self.add_file(&repo, &path, data);
                }
            }
        }
        Ok(())
    }

    /// Adds (or replaces) one file; creates the repo if needed. Changes the repo's commit.
    pub fn add_file(&self, repo: &str, path: &str, data: impl Into<Vec<u8>>) {
        let mut repos = lock(&self.state.repos);
        let r = repos.entry(repo.to_string()).or_insert_with(|| Repo {
            files: BTreeMap::new(),
            commit: String::new(),
        });
        r.files.insert(path.to_string(), Arc::new(data.into()));
        r.recompute_commit();
    }

    /// The fake commit sha of `repo`.
    pub fn commit(&self, repo: &str) -> String {
        lock(&self.state.repos)[repo].commit.clone()
    }

    /// The bytes of a served file.
    pub fn file(&self, repo: &str, path: &str) -> Arc<Vec<u8>> {
        lock(&self.state.repos)[repo].files[path].clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.state.faults).clone()
    }

    /// The requests answered so far (waits for the ones being answered).
    pub fn stats(&self) -> Stats {
        self.state.settled_stats().clone()
    }

    /// Clears the stats and the faults.
    pub fn reset(&self) {
        reset(&self.state);
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (addr, thread) in self.listeners.drain(..) {
            // Wakes the blocking accept so that the loop sees `stop`.
            let _ = TcpStream::connect(addr);
            let _ = thread.join();
        }
    }
}

fn reset(state: &State) {
    *state.settled_stats() = Stats::default();
    *lock(&state.faults) = Faults::default();
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the whole hub down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &format!("{name}/"), out)?;
        } else {
            out.push((name, std::fs::read(entry.path())?));
        }
    }
    Ok(())
}

fn accept_loop(listener: TcpListener, state: Arc<State>, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let state = state.clone();
            std::thread::spawn(move || {
                let _ = serve_connection(stream, &state);
            });
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    /// Lower-cased names.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The query parameter `name`'s value, as sent (not decoded).
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
}

fn read_request(stream: &TcpStream) -> io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_string(),
        path: percent_decode(path),
        query: query.to_string(),
        headers: HashMap::new(),
        body: Vec::new(),
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            req.headers
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    req.body.resize(len, 0);
    reader.read_exact(&mut req.body)?;
    Ok(Some(req))
}

/// What to send back. The body is written in 16 KiB chunks so that faults can act between them.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Content-Length to announce when it differs from `body` (HEAD).
    announced_len: Option<usize>,
    /// Cut the connection after this many body bytes.
    cut_after: Option<u64>,
    delay: Duration,
}

impl Response {
    fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            announced_len: None,
            cut_after: None,
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn json(value: Value) -> Self {
        Self::new(200)
            .header("Content-Type", "application/json")
            .body(value.to_string())
    }

    /// A hub error: `X-Error-Code` is how huggingface_hub tells a missing repo from a missing file.
    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
            .header("Content-Type", "application/json")
            .body(json!({ "error": message }).to_string())
    }
}

fn serve_connection(mut stream: TcpStream, state: &State) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(req) = read_request(&stream)? else {
        return Ok(());
    };
    let control = req.path.starts_with("/__mock/");
    if !control {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
    }
    let mut resp = route(&req, state);
    if req.method == "HEAD" {
        resp.announced_len = Some(resp.body.len());
        resp.body.clear();
    }
    let sent = write_response(&mut stream, &resp);
    if !control {
        lock(&state.stats).log.push(Logged {
            method: req.method.clone(),
            path: req.path.clone(),
            range: req.header("range").map(str::to_string),
            authorization: req.header("authorization").is_some(),
            status: resp.status,
            bytes: sent,
        });
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Writes the response; returns the body bytes written.
fn write_response(stream: &mut TcpStream, resp: &Response) -> u64 {
    let reason = match resp.status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", resp.status);
    let len = resp.announced_len.unwrap_or(resp.body.len());
    head += &format!("Content-Length: {len}\r\nConnection: close\r\n");
    head += "Access-Control-Allow-Origin: *\r\n";
    head += "Access-Control-Expose-Headers: ETag, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, \
             Content-Range, Content-Length, Accept-Ranges, X-Error-Code, X-Error-Message\r\n";
    for (k, v) in &resp.headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let mut sent = 0u64;
    for chunk in resp.body.chunks(16 * 1024) {
        let chunk = match resp.cut_after {
            Some(cut) if sent + chunk.len() as u64 >= cut => &chunk[..(cut - sent) as usize],
            _ => chunk,
        };
        if stream.write_all(chunk).is_err() {
            break;
        }
        sent += chunk.len() as u64;
        if resp.cut_after == Some(sent) {
            break;
        }
        std::thread::sleep(resp.delay);
    }
    let _ = stream.flush();
    sent
}

fn route(req: &Request, state: &State) -> Response {
    if req.method == "OPTIONS" {
        let asked = req
            .header("access-control-request-headers")
            .unwrap_or_default();
        return Response::new(204)
            .header("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
            .header(
                "Access-Control-Allow-Headers",
                format!("Range, Authorization, Content-Type, {asked}").trim_end_matches(", "),
            )
            .header("Access-Control-Max-Age", 86400);
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    // `datasets/` prefixes a dataset repo's file routes (the hub reserves it as an owner name).
    let (dataset, file_segs) = match segs.split_first() {
        Some((&"datasets", rest)) => (true, rest),
        _ => (false, segs.as_slice()),
    };
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["__mock", "faults"]) => match serde_json::from_slice::<Faults>(&req.body) {
            Ok(f) => {
                *lock(&state.faults) = f;
                Response::json(json!({ "ok": true }))
            }
            Err(e) => Response::error(400, "BadRequest", &e.to_string()),
        },
        ("GET", ["__mock", "faults"]) => Response::json(json!(*lock(&state.faults))),
        ("GET", ["__mock", "stats"]) => Response::json(state.settled_stats().to_json()),
        ("POST", ["__mock", "reset"]) => {
            reset(state);
            Response::json(json!({ "ok": true }))
        }
        ("GET" | "HEAD", ["lfs-store", sha]) => lfs_store(req, state, sha),
        (_, ["api", kind @ ("models" | "datasets"), owner, name, op, rev, path @ ..]) => {
            let repo = repo_key(*kind == "datasets", owner, name);
            let path = path.join("/");
            with_repo(req, state, &repo, rev, |r| {
                api(req, state, &repo, r, op, &path)
            })
        }
        ("GET" | "HEAD", _) => match file_segs {
            [owner, name, op @ ("resolve" | "raw"), rev, path @ ..] if !path.is_empty() => {
                let repo = repo_key(dataset, owner, name);
                let path = path.join("/");
                with_repo(req, state, &repo, rev, |r| {
                    file(req, state, &repo, r, &path, *op == "raw")
                })
            }
            _ => Response::error(404, "NotFound", "no such route on the mock hub"),
        },
        _ => Response::error(404, "NotFound", "no such route on the mock hub"),
    }
}

fn repo_key(dataset: bool, owner: &str, name: &str) -> String {
    if dataset {
        format!("datasets/{owner}/{name}")
    } else {
        format!("{owner}/{name}")
    }
}

/// Checks the repo, the token of a gated repo and the revision, then runs `f`.
fn with_repo(
    req: &Request,
    state: &State,
    repo: &str,
    rev: &str,
    f: impl FnOnce(&Repo) -> Response,
) -> Response {
    let repos = lock(&state.repos);
    let Some(r) = repos.get(repo) else {
        // As the hub: 401, so that a private repo's existence does not leak.
        return Response::error(401, "RepoNotFound", "Repository not found");
    };
    if let Some(token) = lock(&state.faults).gated.get(repo) {
        match req.header("authorization") {
            None => return Response::error(401, "GatedRepo", "Access to this repo is restricted"),
            Some(auth) if auth != format!("Bearer {token}") => {
                return Response::error(403, "GatedRepo", "Your token cannot read this repo")
            }
            Some(_) => {}
        }
    }
    if rev != "main" && rev != r.commit {
        return Response::error(404, "RevisionNotFound", "Invalid rev id");
    }
    f(r)
}

fn is_lfs(path: &str) -> bool {
    [
        ".safetensors",
        ".bin",
        ".parquet",
        ".arrow",
        ".npy",
        ".onnx",
    ]
    .iter()
    .any(|ext| path.ends_with(ext))
}

/// Git's blob id (the ETag the hub gives small files).
pub fn git_sha1(data: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", data.len()));
    h.update(data);
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lfs_pointer(data: &[u8]) -> String {
    format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
        hex(&Sha256::digest(data)),
        data.len()
    )
}

fn file(req: &Request, state: &State, repo: &str, r: &Repo, path: &str, raw: bool) -> Response {
    let key = format!("{repo}/{path}");
    let data = match r.files.get(path) {
        Some(d) if !lock(&state.faults).missing.contains(&key) => d,
        _ => return Response::error(404, "EntryNotFound", "Entry not found"),
    };
    if !is_lfs(path) {
        return serve(req, state, &key, data).header("X-Repo-Commit", &r.commit);
    }
    let pointer = lfs_pointer(data);
    if raw {
        return Response::new(200)
            .header("ETag", format!("\"{}\"", git_sha1(pointer.as_bytes())))
            .header("X-Repo-Commit", &r.commit)
            .body(pointer);
    }
    let sha = hex(&Sha256::digest(data.as_slice()));
    // The CDN is another host: the client must not send the hub token there.
    let host = req.header("host").unwrap_or("127.0.0.1");
    let other = match host.split_once(':') {
        Some(("127.0.0.1", port)) => format!("localhost:{port}"),
        Some(("localhost", port)) => format!("127.0.0.1:{port}"),
        _ => host.to_string(),
    };
    Response::new(302)
        .header(
            "Location",
            format!(
                "http://{other}/lfs-store/{sha}?file={}",
                percent_encode(&key)
            ),
        )
        .header("ETag", format!("\"{}\"", git_sha1(pointer.as_bytes())))
        .header("X-Linked-Etag", format!("\"{sha}\""))
        .header("X-Linked-Size", data.len())
        .header("X-Repo-Commit", &r.commit)
}

fn lfs_store(req: &Request, state: &State, sha: &str) -> Response {
    let wanted = req.param("file").map(percent_decode);
    let repos = lock(&state.repos);
    let found = repos.iter().find_map(|(id, r)| {
        r.files.iter().find_map(|(path, data)| {
            let key = format!("{id}/{path}");
            let named = wanted.as_ref().is_none_or(|w| *w == key);
            (named && hex(&Sha256::digest(data.as_slice())) == sha).then(|| (key, data.clone()))
        })
    });
    drop(repos);
    match found {
        Some((key, data)) => serve(req, state, &key, &data),
        None => Response::error(404, "EntryNotFound", "no such LFS object"),
    }
}

/// A file's bytes, honouring Range and the faults.
fn serve(req: &Request, state: &State, key: &str, data: &[u8]) -> Response {
    let mut faults = lock(&state.faults);
    let mut body = data.to_vec();
    if faults.corrupt.contains(key) && !body.is_empty() {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let etag = if is_lfs(key) {
        hex(&Sha256::digest(data))
    } else {
        git_sha1(data)
    };
    let total = body.len();
    let range = req
        .header("range")
        .filter(|_| !faults.ignore_range)
        .and_then(parse_range);
    let mut resp = match range {
        Some((start, _)) if start >= total && total > 0 => {
            return Response::new(416).header("Content-Range", format!("bytes */{total}"))
        }
        Some((start, end)) => {
            let end = end.map_or(total, |e| (e + 1).min(total));
            Response::new(206)
                .header(
                    "Content-Range",
                    format!("bytes {start}-{}/{total}", end - 1),
                )
                .body(body[start..end].to_vec())
        }
        None => Response::new(200).body(body),
    };
    if req.method == "GET" {
        resp.cut_after = faults.cut_after.remove(key);
    }
    resp.delay = Duration::from_millis(faults.delay_ms_per_chunk);
    resp.header("ETag", format!("\"{etag}\""))
        .header("Accept-Ranges", "bytes")
        .header("Content-Type", "application/octet-stream")
}

/// `bytes=N-` or `bytes=N-M`.
fn parse_range(v: &str) -> Option<(usize, Option<usize>)> {
    let (start, end) = v.strip_prefix("bytes=")?.split_once('-')?;
    let end = if end.is_empty() {
        None
    } else {
        Some(end.parse().ok()?)
    };
    Some((start.parse().ok()?, end))
}

/// The listing API: `revision`, `tree`, `paths-info`.
/// `path`: the folder after the revision (`tree/{rev}/{folder}`).
fn api(req: &Request, state: &State, repo: &str, r: &Repo, op: &str, path: &str) -> Response {
    let entry = |path: &str| -> Value {
        match r.files.get(path) {
            Some(data) if is_lfs(path) => {
                let pointer = lfs_pointer(data);
                json!({
                    "type": "file", "path": path, "size": data.len(),
                    "oid": git_sha1(pointer.as_bytes()),
                    "lfs": { "oid": hex(&Sha256::digest(data.as_slice())), "size": data.len(),
                             "pointerSize": pointer.len() },
                })
            }
            Some(data) => {
                json!({ "type": "file", "path": path, "size": data.len(), "oid": git_sha1(data) })
            }
            None => json!({ "type": "directory", "path": path, "size": 0,
                            "oid": git_sha1(path.as_bytes()) }),
        }
    };
    let dirs: BTreeSet<String> = r
        .files
        .keys()
        .flat_map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |i| parts[..i].join("/"))
        })
        .collect();
    match (req.method.as_str(), op) {
        ("GET", "revision") => {
            let siblings: Vec<Value> = r
                .files
                .iter()
                .map(|(path, data)| {
                    let mut s = json!({ "rfilename": path, "size": data.len() });
                    if is_lfs(path) {
                        s["lfs"] = json!({ "sha256": hex(&Sha256::digest(data.as_slice())),
                                           "size": data.len(),
                                           "pointerSize": lfs_pointer(data).len() });
                    }
                    s
                })
                .collect();
            Response::json(json!({ "id": repo, "modelId": repo, "sha": r.commit,
                                   "siblings": siblings }))
        }
        ("GET", "tree") => {
            let recursive = matches!(req.param("recursive"), Some("true" | "True"));
            if !path.is_empty() && !dirs.contains(path) {
                return Response::error(404, "EntryNotFound", &format!("{path} does not exist"));
            }
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!("{path}/")
            };
            let all = dirs.iter().chain(r.files.keys());
            let listed: Vec<Value> = all
                .filter_map(|p| p.strip_prefix(&prefix).map(|rest| (p, rest)))
                .filter(|(_, rest)| recursive || !rest.contains('/'))
                .map(|(p, _)| entry(p))
                .collect();
            // Paged as the hub pages (a cursor in the query, `Link: <…>; rel="next"`) when
            // `tree_page_size` is set.
            let page = lock(&state.faults).tree_page_size;
            let Some(size) = page.filter(|&n| n > 0 && listed.len() > n) else {
                return Response::json(Value::Array(listed));
            };
            let from: usize = req
                .param("cursor")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let to = (from + size).min(listed.len());
            let resp = Response::json(Value::Array(listed[from.min(to)..to].to_vec()));
            if to == listed.len() {
                return resp;
            }
            let mut query: Vec<&str> = req
                .query
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
                .collect();
            let cursor = format!("cursor={to}");
            query.push(&cursor);
            resp.header(
                "Link",
                format!("<{}?{}>; rel=\"next\"", req.path, query.join("&")),
            )
        }
        ("POST", "paths-info") => {
            // huggingface_hub posts a form (`paths=a&paths=b`); accept JSON too.
            let body = String::from_utf8_lossy(&req.body);
            let paths: Vec<String> = match serde_json::from_str::<Value>(&body) {
                Ok(v) => v["paths"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                Err(_) => body
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("paths="))
                    .map(|p| percent_decode(&p.replace('+', " ")))
                    .collect(),
            };
            let found: Vec<Value> = paths
                .iter()
                .filter(|p| r.files.contains_key(*p) || dirs.contains(*p))
                .map(|p| entry(p))
                .collect();
            Response::json(Value::Array(found))
        }
        _ => Response::error(404, "NotFound", "no such API route on the mock hub"),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}

//! HTTP: the metadata request (what a file is, at which commit) and the verified, resumable
//! download of one blob.

use super::error::Mismatch;
use super::{HubError, HubOptions, Progress, Target};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

/// What the first answer about a file says.
pub(crate) struct FileMeta {
    pub commit: String,
    /// The blob's name: the sha256 of an LFS file, the git blob sha1 of another.
    pub etag: String,
    pub size: Option<u64>,
    /// Whether the hub announced `X-Linked-Etag`, i.e. `etag` is a sha256.
    pub lfs: bool,
    /// Where the bytes are: the resolve URL, or the CDN an LFS file redirects to.
    pub location: String,
}

const MAX_REDIRECTS: usize = 5;
/// How often a download that broke off is resumed before giving up (huggingface_hub: 5).
const RETRIES: u32 = 5;
/// Read and hashed at a time.
const CHUNK: usize = 256 * 1024;

/// Why one download attempt failed.
enum Failure {
    /// The connection broke or the bytes ran short: try again from what is on disk.
    Retry {
        error: HubError,
        progressed: bool,
    },
    Fatal(HubError),
}

impl Failure {
    fn retry(error: HubError, progressed: bool) -> Self {
        Failure::Retry { error, progressed }
    }
}

pub(crate) struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub fn new(opts: &HubOptions) -> Self {
        let t = Some(opts.timeout);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Followed by hand: the first answer's headers describe the file, and the token must
            // not follow a redirect to another host.
            .max_redirects(0)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_recv_response(t)
            // Per read, not per download: a multi-GB file may take long, a stall may not.
            .timeout_per_read(t)
            // The bytes as stored: the hashes are over them.
            .accept_encoding("identity")
            .user_agent(concat!("instructor/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
        }
    }

    fn call(
        &self,
        opts: &HubOptions,
        head: bool,
        url: &str,
        from: u64,
    ) -> Result<Response<Body>, HubError> {
        let mut req = if head {
            self.agent.head(url)
        } else {
            self.agent.get(url)
        };
        if let Some(token) = &opts.token {
            if same_origin(url, &opts.endpoint) {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
        }
        if from > 0 {
            req = req.header("Range", format!("bytes={from}-"));
        }
        req.call().map_err(|e| HubError::Network {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// HEAD `{endpoint}/{repo}/resolve/{revision}/{file}`, following relative redirects only
    /// (a renamed repo), as huggingface_hub does.
    pub fn metadata(&self, opts: &HubOptions, t: &Target) -> Result<FileMeta, HubError> {
        let mut url = format!(
            "{}/{}/resolve/{}/{}",
            opts.endpoint,
            t.repo,
            encode(t.revision, false),
            encode(t.file, true)
        );
        for _ in 0..=MAX_REDIRECTS {
            let resp = self.call(opts, true, &url, 0)?;
            let status = resp.status().as_u16();
            let location = header(&resp, "location");
            if status >= 400 {
                return Err(status_error(opts, t, &url, &resp));
            }
            if (300..400).contains(&status) {
                match location {
                    Some(l) if !l.contains("://") => {
                        url = join(&url, l);
                        continue;
                    }
                    Some(_) => {}
                    None => return Err(protocol(&url, format!("HTTP {status} without Location"))),
                }
            }
            let missing = |h: &str| protocol(&url, format!("no {h} header: is this a hub?"));
            let commit = header(&resp, "x-repo-commit").ok_or_else(|| missing("X-Repo-Commit"))?;
            let linked = header(&resp, "x-linked-etag");
            let etag = linked
                .or_else(|| header(&resp, "etag"))
                .ok_or_else(|| missing("ETag"))?;
            let etag = etag.trim_start_matches("W/").trim_matches('"').to_string();
            // It becomes a file name.
            let safe = |s: &str| {
                !s.is_empty()
                    && !s.starts_with('.')
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            if !safe(&etag) || !safe(commit) {
                return Err(protocol(&url, "ETag or X-Repo-Commit is not a plain name"));
            }
            let size_header = if linked.is_some() {
                "x-linked-size"
            } else {
                "content-length"
            };
            return Ok(FileMeta {
                commit: commit.to_string(),
                lfs: linked.is_some(),
                size: header(&resp, size_header).and_then(|s| s.parse().ok()),
                location: location.map_or_else(|| url.clone(), |l| join(&url, l)),
                etag,
            });
        }
        Err(protocol(&url, "too many redirects"))
    }

    /// The files directly in folder `t.file` of the repo at `t.revision` (paths from the repo
    /// root), from the tree API `{endpoint}/api/{models|datasets}/{repo}/tree/{revision}/{folder}`,
    /// following its `Link: <…>; rel="next"` pages as huggingface_hub's `list_repo_tree` does.
    /// A folder the repo lacks is `FileNotFound`.
    pub fn list(&self, opts: &HubOptions, t: &Target) -> Result<Vec<String>, HubError> {
        let api_repo = if t.repo.starts_with("datasets/") {
            t.repo.to_string()
        } else {
            format!("models/{}", t.repo)
        };
        let mut url = format!(
            "{}/api/{api_repo}/tree/{}",
            opts.endpoint,
            encode(t.revision, false)
        );
        if !t.file.is_empty() {
            url = format!("{url}/{}", encode(t.file, true));
        }
        let mut files = vec![];
        // Bounded: a hub that keeps sending the same `next` must not hold us forever.
        for _ in 0..10_000 {
            let mut resp = self.call(opts, false, &url, 0)?;
            if resp.status().as_u16() >= 400 {
                return Err(status_error(opts, t, &url, &resp));
            }
            let next = header(&resp, "link")
                .and_then(next_link)
                .map(|l| join(&url, l));
            let text = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| HubError::Network {
                    url: url.clone(),
                    message: e.to_string(),
                })?;
            let page: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| protocol(&url, format!("the tree listing is not JSON: {e}")))?;
            let entries = page
                .as_array()
                .ok_or_else(|| protocol(&url, "the tree listing is not a JSON array"))?;
            files.extend(
                entries
                    .iter()
                    .filter(|e| e["type"] == "file")
                    .filter_map(|e| e["path"].as_str().map(str::to_string)),
            );
            match next {
                Some(n) => url = n,
                None => return Ok(files),
            }
        }
        Err(protocol(&url, "the tree listing never ends"))
    }

    /// Downloads `meta` into `blob`: through `blob.incomplete` (resumed from its length),
    /// verified, then renamed. The caller holds the blob's lock.
    pub fn download(
        &self,
        opts: &HubOptions,
        t: &Target,
        meta: &FileMeta,
        blob: &Path,
        progress: &mut dyn Progress,
    ) -> Result<(), HubError> {
        let partial = blob.with_file_name(format!("{}.incomplete", meta.etag));
        let mut retries = 0;
        loop {
            match self.attempt(opts, t, meta, &partial, progress) {
                Ok(()) => break,
                Err(Failure::Retry { progressed, .. }) if retries < RETRIES => {
                    retries += 1;
                    // Broke off mid-way: resume at once. Did not start: give the server a moment.
                    if !progressed {
                        std::thread::sleep(Duration::from_millis(250 * u64::from(retries)));
                    }
                }
                Err(Failure::Retry { error, .. } | Failure::Fatal(error)) => return Err(error),
            }
        }
        fs::rename(&partial, blob).map_err(|e| HubError::io(blob, e))?;
        progress.finish();
        Ok(())
    }

    /// One try: continue what is on disk, fetch the rest, verify the whole.
    fn attempt(
        &self,
        opts: &HubOptions,
        t: &Target,
        meta: &FileMeta,
        partial: &Path,
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let mut part = Partial::open(partial, meta)?;
        // Complete but not renamed (interrupted right before): just verify.
        if meta.size != Some(part.done) {
            let (url, resp) = self.request_rest(opts, t, meta, &mut part)?;
            progress.start(t.file, part.done, meta.size);
            part.receive(resp, &url, meta.size, progress)?;
        }
        part.verify(t)
    }

    /// Asks for the bytes after what `part` holds and fits `part` to the answer: a 206 from
    /// elsewhere than asked, or a 416, empties it for the next try; a 200 means the server
    /// ignored `Range`, so the body starts at zero.
    fn request_rest(
        &self,
        opts: &HubOptions,
        t: &Target,
        meta: &FileMeta,
        part: &mut Partial,
    ) -> Result<(String, Response<Body>), Failure> {
        let done = part.done;
        let (url, resp) = self.get(opts, &meta.location, done)?;
        match resp.status().as_u16() {
            206 => {
                let start = range_start(&resp);
                if start != Some(done) {
                    part.restart(meta)?;
                    let message = format!("asked for bytes {done}- but got {start:?}");
                    return Err(Failure::retry(protocol(&url, message), false));
                }
            }
            // The server ignored Range: start over.
            200 if done > 0 => part.restart(meta)?,
            200 => {}
            416 => {
                part.restart(meta)?;
                let message = format!("range {done}- not satisfiable");
                return Err(Failure::retry(protocol(&url, message), false));
            }
            _ => return Err(Failure::Fatal(status_error(opts, t, &url, &resp))),
        }
        Ok((url, resp))
    }

    /// GET with `Range: bytes={from}-` when resuming, following redirects; the token only goes
    /// to the endpoint's own host.
    fn get(
        &self,
        opts: &HubOptions,
        url: &str,
        from: u64,
    ) -> Result<(String, Response<Body>), Failure> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let resp = self
                .call(opts, false, &url, from)
                .map_err(|error| Failure::retry(error, false))?;
            if !(300..400).contains(&resp.status().as_u16()) {
                return Ok((url, resp));
            }
            let Some(location) = header(&resp, "location") else {
                return Err(Failure::Fatal(protocol(&url, "redirect without Location")));
            };
            url = join(&url, location);
        }
        Err(Failure::Fatal(protocol(&url, "too many redirects")))
    }
}

/// The `.incomplete` file of one download, with the length and running hash of what it holds.
struct Partial<'a> {
    path: &'a Path,
    file: File,
    verifier: Verifier,
    done: u64,
}

impl<'a> Partial<'a> {
    /// Opens (or creates) `path` and hashes what an earlier try left in it, so that a resumed
    /// download is verified whole. More than the whole file cannot be continued: it starts over.
    fn open(path: &'a Path, meta: &FileMeta) -> Result<Self, Failure> {
        let dir = path.parent().expect("blobs have a folder");
        fs::create_dir_all(dir).map_err(fatal_io(dir))?;
        // Append mode: every write lands at the end, also after a truncation.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(fatal_io(path))?;
        let mut part = Partial {
            path,
            file,
            verifier: Verifier::new(meta),
            done: 0,
        };
        part.done = part
            .verifier
            .feed(&mut part.file)
            .map_err(fatal_io(part.path))?;
        if meta.size.is_some_and(|size| part.done > size) {
            part.restart(meta)?;
        }
        Ok(part)
    }

    /// Empties the file and the hash: what it held cannot be continued.
    fn restart(&mut self, meta: &FileMeta) -> Result<(), Failure> {
        self.file.set_len(0).map_err(fatal_io(self.path))?;
        (self.done, self.verifier) = (0, Verifier::new(meta));
        Ok(())
    }

    /// Appends the body to the file and the hash. A connection that breaks, or a body short of
    /// `size`, is a retry from what arrived; `progressed` says whether anything did.
    fn receive(
        &mut self,
        resp: Response<Body>,
        url: &str,
        size: Option<u64>,
        progress: &mut dyn Progress,
    ) -> Result<(), Failure> {
        let started = self.done;
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_some(&mut reader, &mut buf).map_err(|e| {
                let error = HubError::Network {
                    url: url.to_string(),
                    message: format!("download broke off after {} bytes: {e}", self.done),
                };
                Failure::retry(error, self.done > started)
            })?;
            if n == 0 {
                break;
            }
            self.file
                .write_all(&buf[..n])
                .map_err(fatal_io(self.path))?;
            self.verifier.update(&buf[..n]);
            self.done += n as u64;
            progress.advance(self.done);
            if progress.stop() {
                return Err(Failure::Fatal(HubError::Interrupted));
            }
        }
        if let Some(size) = size.filter(|&s| s != self.done) {
            let message = format!("sent {} bytes of {size}", self.done);
            return Err(Failure::retry(protocol(url, message), self.done > started));
        }
        Ok(())
    }

    /// Syncs and closes the file, then checks its hash; a mismatch removes it, so that neither
    /// the cache nor the next try keeps bytes that are not the blob.
    fn verify(self, t: &Target) -> Result<(), Failure> {
        let Partial {
            path,
            file,
            verifier,
            ..
        } = self;
        file.sync_all().map_err(fatal_io(path))?;
        // Closed before it may be removed.
        drop(file);
        if let Err((algorithm, expected, actual)) = verifier.check() {
            fs::remove_file(path).map_err(fatal_io(path))?;
            return Err(Failure::Fatal(HubError::Integrity(Box::new(Mismatch {
                repo: t.repo.to_string(),
                revision: t.revision_label(),
                file: t.file.to_string(),
                algorithm,
                expected,
                actual,
            }))));
        }
        Ok(())
    }
}

/// Hashes a download as it arrives, against the name the hub gave it.
enum Verifier {
    Sha256(Sha256, String),
    /// git's blob id: sha1 of `blob {len}\0` and the bytes.
    GitSha1(Sha1, String),
    /// An ETag that is no hash (a mirror's): kept by name only.
    Unchecked,
}

impl Verifier {
    fn new(meta: &FileMeta) -> Self {
        let hex = |len| meta.etag.len() == len && meta.etag.bytes().all(|b| b.is_ascii_hexdigit());
        match (meta.lfs, meta.size) {
            (true, _) if hex(64) => Verifier::Sha256(Sha256::new(), meta.etag.clone()),
            (false, Some(size)) if hex(40) => {
                let mut h = Sha1::new();
                h.update(format!("blob {size}\0"));
                Verifier::GitSha1(h, meta.etag.clone())
            }
            _ => Verifier::Unchecked,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Verifier::Sha256(h, _) => h.update(bytes),
            Verifier::GitSha1(h, _) => h.update(bytes),
            Verifier::Unchecked => {}
        }
    }

    /// Hashes what `file` holds from its current position; returns the byte count.
    fn feed(&mut self, file: &mut File) -> std::io::Result<u64> {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            match read_some(file, &mut buf)? {
                0 => return Ok(total),
                n => {
                    self.update(&buf[..n]);
                    total += n as u64;
                }
            }
        }
    }

    /// `Err((algorithm, expected, actual))` on a mismatch.
    fn check(self) -> Result<(), (&'static str, String, String)> {
        let (algorithm, actual, expected) = match self {
            Verifier::Sha256(h, e) => ("sha256", hex(&h.finalize()), e),
            Verifier::GitSha1(h, e) => ("git blob sha1", hex(&h.finalize()), e),
            Verifier::Unchecked => return Ok(()),
        };
        if actual.eq_ignore_ascii_case(&expected) {
            Ok(())
        } else {
            Err((algorithm, expected, actual))
        }
    }
}

/// An I/O error on `path`: no retry would mend it.
fn fatal_io(path: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| Failure::Fatal(HubError::io(path, e))
}

/// `read`, again when a signal interrupted it; `Ok(0)` at the end.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            read => return read,
        }
    }
}

/// Where a 206's `Content-Range: bytes {start}-{end}/{size}` starts.
fn range_start(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-range")
        .and_then(|r| r.strip_prefix("bytes "))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse().ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn protocol(url: &str, message: impl Into<String>) -> HubError {
    HubError::Protocol {
        url: url.to_string(),
        message: message.into(),
    }
}

/// Names the hub's error codes (`X-Error-Code`) as errors that say what is missing.
fn status_error(opts: &HubOptions, t: &Target, url: &str, resp: &Response<Body>) -> HubError {
    let status = resp.status().as_u16();
    let (repo, revision) = (t.repo.to_string(), t.revision_label());
    match (status, header(resp, "x-error-code").unwrap_or_default()) {
        (_, "RepoNotFound") => HubError::RepoNotFound {
            repo,
            endpoint: opts.endpoint.clone(),
        },
        (_, "RevisionNotFound") => HubError::RevisionNotFound { repo, revision },
        (404, _) | (_, "EntryNotFound") => HubError::FileNotFound {
            repo,
            revision,
            file: t.file.to_string(),
        },
        (401 | 403, _) => HubError::Unauthorized {
            repo,
            revision,
            why: match opts.token {
                None => format!("no token is set (HTTP {status})"),
                Some(_) => format!("the token was refused (HTTP {status})"),
            },
        },
        _ => HubError::Http {
            url: url.to_string(),
            status,
            message: header(resp, "x-error-message")
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        },
    }
}

/// The `rel="next"` target of a `Link` header (RFC 8288): `<url>; rel="next", <url>; rel="prev"`.
fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let Some(i) = url.find("://") else {
        return "";
    };
    let rest = &url[i + 3..];
    &url[..i + 3 + rest.find('/').unwrap_or(rest.len())]
}

fn same_origin(a: &str, b: &str) -> bool {
    origin(a).eq_ignore_ascii_case(origin(b))
}

/// Resolves a `Location` against the URL that sent it.
fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let dir = &base[..base.rfind('/').map_or(base.len(), |i| i + 1)];
        format!("{dir}{location}")
    }
}

/// Percent-encodes all but unreserved characters (and `/` when `keep_slash`), as
/// huggingface_hub quotes revisions (`refs/pr/1` → `refs%2Fpr%2F1`) and file paths.
fn encode(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            b'/' if keep_slash => "/".to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

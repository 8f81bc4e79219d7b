//! The hub downloader against the mock hub (crates/mock-hub), each test with its own server on
//! 127.0.0.1 and its own cache folder. Options are passed in `HubOptions`, not the process
//! environment, since the tests run in parallel threads. Which files a model needs comes from the
//! core (`instructor::config::model_files`), as the CLI passes it; the CLI's own hub commands are
//! tested in crates/cli/tests/hub_cli.rs.

use instructor::{EncodeOptions, Input, Instructor, LoadOptions};
use instructor_hub::{Groups, Hub, HubError, HubOptions, Progress};
use instructor_mock_hub::{hex, Faults, MockHub};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REPO: &str = "fixtures/tiny-relu-bin";
const WEIGHTS: &str = "fixtures/tiny-relu-bin/pytorch_model.bin";
/// What `Instructor::load` reads of tiny-relu-bin, and so all that may be fetched.
const NEEDED: [&str; 8] = [
    "modules.json",
    "config.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "pytorch_model.bin",
    "1_Pooling/config.json",
    "2_Dense/config.json",
    "2_Dense/pytorch_model.bin",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The files a model needs after its modules.json, by the core's rule.
fn model_files(dir: &Path) -> Result<Groups, Box<dyn std::error::Error + Send + Sync>> {
    Ok(instructor::config::model_files(dir)?)
}

fn start_hub() -> MockHub {
    let hub = MockHub::start(0).expect("start the mock hub");
    hub.add_folders("fixtures", &fixtures().join("models"))
        .expect("serve the fixture models");
    hub
}

fn options(endpoint: &str, cache: &Path) -> HubOptions {
    HubOptions {
        endpoint: endpoint.to_string(),
        cache_dir: cache.to_path_buf(),
        token: None,
        offline: false,
        timeout: Duration::from_secs(5),
    }
}

fn download(opts: &HubOptions) -> Result<PathBuf, HubError> {
    Hub::new(opts.clone()).download_model(REPO, "main", &model_files, &mut ())
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--fixtures--tiny-relu-bin")
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Files under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

/// Requests for the weights' bytes (the CDN side of the 302).
fn weight_gets(hub: &MockHub) -> Vec<instructor_mock_hub::Logged> {
    let sha = sha256_hex(&hub.file(REPO, "pytorch_model.bin"));
    hub.stats()
        .to(&format!("/lfs-store/{sha}"))
        .into_iter()
        .filter(|l| l.method == "GET")
        .cloned()
        .collect()
}

#[derive(Default)]
struct Recorder {
    started: Vec<(String, u64, Option<u64>)>,
    finished: usize,
    last: u64,
}

impl Progress for Recorder {
    fn start(&mut self, file: &str, done: u64, total: Option<u64>) {
        self.started.push((file.to_string(), done, total));
    }
    fn advance(&mut self, done: u64) {
        self.last = done;
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}

#[test]
fn first_download_fetches_only_needed_files_into_a_huggingface_hub_layout() {
    let hub = start_hub();
    // Present in the repo, never read by the loader: must not be requested.
    hub.add_file(REPO, "extra/unneeded.bin", vec![7u8; 1000]);
    let cache = tempfile::tempdir().unwrap();
    let mut progress = Recorder::default();
    let snapshot = Hub::new(options(&hub.url(), cache.path()))
        .download_model(REPO, "main", &model_files, &mut progress)
        .unwrap();

    let commit = hub.commit(REPO);
    let repo = repo_dir(cache.path());
    assert_eq!(snapshot, repo.join("snapshots").join(&commit));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        commit
    );
    for file in NEEDED {
        let data = hub.file(REPO, file);
        let etag = if file.ends_with(".bin") {
            sha256_hex(&data)
        } else {
            instructor_mock_hub::git_sha1(&data)
        };
        let depth = file.matches('/').count() + 2;
        let target = format!("{}blobs/{etag}", "../".repeat(depth));
        assert_eq!(
            std::fs::read_link(snapshot.join(file)).unwrap(),
            PathBuf::from(&target),
            "{file}"
        );
        assert_eq!(std::fs::read(snapshot.join(file)).unwrap(), *data, "{file}");
    }

    let stats = hub.stats();
    for l in &stats.log {
        let fetched = NEEDED.iter().any(|f| l.path.ends_with(&format!("/{f}")))
            || l.path.starts_with("/lfs-store/")
            || l.path.ends_with("/model.safetensors"); // the preferred weights, asked first: 404
        assert!(fetched, "unexpected request {l:?}");
    }
    assert!(stats.to("unneeded").is_empty());
    assert!(stats.to("tokenizer_config.json").is_empty());
    // Each file's bytes came once.
    assert_eq!(
        progress
            .started
            .iter()
            .map(|(f, _, _)| f.as_str())
            .collect::<Vec<_>>(),
        NEEDED
    );
    assert_eq!(progress.finished, NEEDED.len());
    let weights = hub.file(REPO, "2_Dense/pytorch_model.bin").len() as u64;
    assert_eq!(
        progress.started.last().unwrap(),
        &("2_Dense/pytorch_model.bin".to_string(), 0, Some(weights))
    );
    assert_eq!(progress.last, weights);
}

#[test]
fn second_run_uses_the_cache_offline_with_no_request_and_online_with_one() {
    let hub = start_hub();
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&hub.url(), cache.path());
    let first = download(&opts).unwrap();

    hub.reset();
    opts.offline = true;
    assert_eq!(download(&opts).unwrap(), first);
    assert_eq!(hub.stats().requests(), 0);

    // Online, up to date: one HEAD of modules.json to learn that main has not moved.
    opts.offline = false;
    assert_eq!(download(&opts).unwrap(), first);
    let log = hub.stats().log;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("HEAD", "/fixtures/tiny-relu-bin/resolve/main/modules.json")
    );
}

#[test]
fn moved_revision_gets_a_new_snapshot_without_refetching_unchanged_blobs() {
    let hub = start_hub();
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub.url(), cache.path());
    let old = download(&opts).unwrap();
    let old_commit = hub.commit(REPO);
    // A new commit that changes no file the model needs.
    hub.add_file(REPO, "README.md", "new commit");
    hub.reset();

    let new = download(&opts).unwrap();
    let new_commit = hub.commit(REPO);
    assert_ne!(old_commit, new_commit);
    assert!(new.ends_with(&new_commit));
    assert!(
        old.is_dir(),
        "the old snapshot stays, as huggingface_hub keeps it"
    );
    assert_eq!(
        std::fs::read_to_string(repo_dir(cache.path()).join("refs/main")).unwrap(),
        new_commit
    );
    let stats = hub.stats();
    assert!(
        stats.log.iter().all(|l| l.method == "HEAD"),
        "{:?}",
        stats.log
    );
    assert_eq!(stats.bytes_sent(), 0);
}

#[test]
fn downloaded_model_embeds_like_the_reference() {
    let hub = start_hub();
    let cache = tempfile::tempdir().unwrap();
    let snapshot = download(&options(&hub.url(), cache.path())).unwrap();

    let model = Instructor::load(&snapshot, &LoadOptions::default()).unwrap();
    let inputs: Vec<Input> = std::fs::read_to_string(fixtures().join("cases.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("expected/tiny-relu-bin.json")).unwrap(),
    )
    .unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), inputs.len());
    let out = model.encode(&inputs, &EncodeOptions::default()).unwrap();
    for (i, case) in cases.iter().enumerate() {
        let want: Vec<f32> = serde_json::from_value(case["embedding"].clone()).unwrap();
        let got = out.row(i);
        assert_eq!(got.len(), want.len());
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "case {i}: max abs diff {diff}");
    }
}

#[test]
fn cut_download_resumes_with_range_and_fetches_only_the_rest() {
    let hub = start_hub();
    let cut = 100_000u64;
    hub.set_faults(Faults {
        cut_after: [(WEIGHTS.to_string(), cut)].into(),
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let snapshot = download(&options(&hub.url(), cache.path())).unwrap();

    let size = hub.file(REPO, "pytorch_model.bin").len() as u64;
    let gets = weight_gets(&hub);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!((gets[0].range.as_deref(), gets[0].bytes), (None, cut));
    assert_eq!(
        (gets[1].range.as_deref(), gets[1].status, gets[1].bytes),
        (Some("bytes=100000-"), 206, size - cut)
    );
    assert_eq!(
        std::fs::read(snapshot.join("pytorch_model.bin")).unwrap(),
        *hub.file(REPO, "pytorch_model.bin")
    );
    assert!(files_ending(&repo_dir(cache.path()).join("blobs"), ".incomplete").is_empty());
}

#[test]
fn partial_download_left_by_an_earlier_run_is_resumed() {
    let hub = start_hub();
    let data = hub.file(REPO, "pytorch_model.bin");
    let sha = sha256_hex(&data);
    let cache = tempfile::tempdir().unwrap();
    let blobs = repo_dir(cache.path()).join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let have = 250_000;
    std::fs::write(blobs.join(format!("{sha}.incomplete")), &data[..have]).unwrap();

    download(&options(&hub.url(), cache.path())).unwrap();
    let gets = weight_gets(&hub);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].range.as_deref(), Some("bytes=250000-"));
    assert_eq!(gets[0].bytes, (data.len() - have) as u64);
    assert_eq!(std::fs::read(blobs.join(&sha)).unwrap(), *data);
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let hub = start_hub();
    hub.set_faults(Faults {
        ignore_range: true,
        ..Faults::default()
    });
    let data = hub.file(REPO, "pytorch_model.bin");
    let sha = sha256_hex(&data);
    let cache = tempfile::tempdir().unwrap();
    let blobs = repo_dir(cache.path()).join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    // Garbage: appending the 200's whole body to it would fail the sha256.
    std::fs::write(blobs.join(format!("{sha}.incomplete")), vec![0xAB; 5000]).unwrap();

    download(&options(&hub.url(), cache.path())).unwrap();
    let gets = weight_gets(&hub);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].range.as_deref(), Some("bytes=5000-"));
    assert_eq!((gets[0].status, gets[0].bytes), (200, data.len() as u64));
    assert_eq!(std::fs::read(blobs.join(&sha)).unwrap(), *data);
    assert!(files_ending(&blobs, ".incomplete").is_empty());
}

#[test]
fn sha_mismatch_is_refused_and_leaves_nothing() {
    let hub = start_hub();
    hub.set_faults(Faults {
        corrupt: [WEIGHTS.to_string()].into(),
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let err = download(&options(&hub.url(), cache.path())).unwrap_err();

    let sha = sha256_hex(&hub.file(REPO, "pytorch_model.bin"));
    assert!(matches!(err, HubError::Integrity(_)), "{err:?}");
    let msg = err.to_string();
    for part in [REPO, "main", "`pytorch_model.bin`", "sha256", &sha] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }
    let repo = repo_dir(cache.path());
    assert!(!repo.join("blobs").join(&sha).exists());
    assert!(files_ending(&repo.join("blobs"), ".incomplete").is_empty());
    let snapshot = repo.join("snapshots").join(hub.commit(REPO));
    assert!(std::fs::symlink_metadata(snapshot.join("pytorch_model.bin")).is_err());
    assert!(
        !repo.join("refs/main").exists(),
        "an incomplete model must not become main"
    );

    // Small (non-LFS) files are checked against their git blob sha1.
    hub.set_faults(Faults {
        corrupt: ["fixtures/tiny-relu-bin/config.json".to_string()].into(),
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let repo = repo_dir(cache.path());
    let err = download(&options(&hub.url(), cache.path())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`config.json`") && msg.contains("git blob sha1"),
        "{msg}"
    );
    let sha1 = instructor_mock_hub::git_sha1(&hub.file(REPO, "config.json"));
    assert!(!repo.join("blobs").join(sha1).exists());
    assert!(files_ending(&repo.join("blobs"), ".incomplete").is_empty());
}

#[test]
fn missing_file_repo_and_revision_are_named() {
    let hub = start_hub();
    hub.set_faults(Faults {
        missing: ["fixtures/tiny-relu-bin/2_Dense/config.json".to_string()].into(),
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub.url(), cache.path());
    let err = download(&opts).unwrap_err();
    assert!(matches!(err, HubError::FileNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [REPO, "main", "`2_Dense/config.json`"] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }

    // Neither weight file: both candidates are named.
    hub.set_faults(Faults {
        missing: ["fixtures/tiny-relu-bin/2_Dense/pytorch_model.bin".to_string()].into(),
        ..Faults::default()
    });
    let msg = download(&opts).unwrap_err().to_string();
    assert!(
        msg.contains("`2_Dense/model.safetensors or 2_Dense/pytorch_model.bin`"),
        "{msg}"
    );

    let err = Hub::new(opts.clone())
        .download_model("fixtures/no-such-model", "main", &model_files, &mut ())
        .unwrap_err();
    assert!(matches!(err, HubError::RepoNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("fixtures/no-such-model"), "{err}");

    let err = Hub::new(opts)
        .download_model(REPO, "v9", &model_files, &mut ())
        .unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("`v9`"), "{err}");
}

#[test]
fn offline_without_the_files_names_what_is_missing() {
    let hub = start_hub();
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&hub.url(), cache.path());
    opts.offline = true;
    let err = download(&opts).unwrap_err();
    let msg = err.to_string();
    for part in [REPO, "main", "`modules.json`", "HF_HUB_OFFLINE"] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }
    assert_eq!(hub.stats().requests(), 0);
    assert!(!repo_dir(cache.path()).exists(), "no partial state");

    // A snapshot that lost a file: that file is named.
    opts.offline = false;
    let snapshot = download(&opts).unwrap();
    std::fs::remove_file(snapshot.join("pytorch_model.bin")).unwrap();
    opts.offline = true;
    let msg = download(&opts).unwrap_err().to_string();
    assert!(
        msg.contains("`model.safetensors or pytorch_model.bin`"),
        "{msg}"
    );
}

#[test]
fn unreachable_hub_with_an_empty_cache_fails_fast_and_names_what_is_missing() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = download(&options(&format!("http://127.0.0.1:{port}"), cache.path())).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, HubError::NotCached(_)), "{err:?}");
    let msg = err.to_string();
    for part in [REPO, "main", "`modules.json`", "did not answer"] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }
}

#[test]
fn hub_that_accepts_but_never_answers_times_out() {
    // The kernel completes the handshake for a listener nobody accepts on: requests hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(
        &format!("http://{}", silent.local_addr().unwrap()),
        cache.path(),
    );
    opts.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = download(&opts).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, HubError::NotCached(_)), "{err:?}");
    assert!(err.to_string().contains("did not answer"), "{err}");
}

#[test]
fn gated_repo_needs_the_token_which_never_leaves_the_hub_host() {
    let hub = start_hub();
    hub.set_faults(Faults {
        gated: [(REPO.to_string(), "hf_secret".to_string())].into(),
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&hub.url(), cache.path());

    let err = download(&opts).unwrap_err();
    assert!(matches!(err, HubError::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    for part in [REPO, "gated", "HF_TOKEN", "401"] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }

    opts.token = Some("hf_wrong".into());
    let msg = download(&opts).unwrap_err().to_string();
    assert!(msg.contains("refused") && msg.contains("403"), "{msg}");
    assert!(
        !msg.contains("hf_wrong"),
        "the token must not be printed: {msg}"
    );

    hub.reset();
    hub.set_faults(Faults {
        gated: [(REPO.to_string(), "hf_secret".to_string())].into(),
        ..Faults::default()
    });
    opts.token = Some("hf_secret".into());
    download(&opts).unwrap();
    let stats = hub.stats();
    let (cdn, hub_host): (Vec<_>, Vec<_>) = stats
        .log
        .iter()
        .partition(|l| l.path.starts_with("/lfs-store/"));
    assert_eq!(cdn.len(), 2, "both weight files come from the CDN");
    assert!(hub_host.iter().all(|l| l.authorization));
    assert!(cdn.iter().all(|l| !l.authorization), "{cdn:?}");
}

#[test]
fn two_concurrent_downloads_of_one_model_share_the_work_and_the_cache() {
    let hub = start_hub();
    // Slow enough that the two overlap.
    hub.set_faults(Faults {
        delay_ms_per_chunk: 10,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub.url(), cache.path());
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let opts = opts.clone();
            std::thread::spawn(move || download(&opts))
        })
        .collect();
    let results: Vec<PathBuf> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert_eq!(results[0], results[1]);

    // The lock made the second wait for the first's blob instead of downloading it again.
    assert_eq!(weight_gets(&hub).len(), 1);
    let blobs = repo_dir(cache.path()).join("blobs");
    assert!(files_ending(&blobs, ".incomplete").is_empty());
    for file in NEEDED {
        assert_eq!(
            std::fs::read(results[0].join(file)).unwrap(),
            *hub.file(REPO, file),
            "{file}"
        );
    }
    Instructor::load(&results[0], &LoadOptions::default()).unwrap();
}

#[cfg(unix)]
#[test]
fn cache_laid_out_by_huggingface_hub_is_used_with_the_hub_down() {
    // As Python's huggingface_hub leaves it: blobs named by etag, relative symlinks, refs/main.
    let model = fixtures().join("models/tiny-gelu-st");
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--hkunlp--instructor-tiny");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit);
    for file in [
        "modules.json",
        "config.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "model.safetensors",
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/pytorch_model.bin",
    ] {
        let data = std::fs::read(model.join(file)).unwrap();
        let etag = if file.ends_with(".safetensors") || file.ends_with(".bin") {
            sha256_hex(&data)
        } else {
            instructor_mock_hub::git_sha1(&data)
        };
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs").join(&etag), &data).unwrap();
        let link = snapshot.join(file);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let up = "../".repeat(file.matches('/').count() + 2);
        std::os::unix::fs::symlink(format!("{up}blobs/{etag}"), &link).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();

    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", down.local_addr().unwrap());
    drop(down);
    let got = Hub::new(options(&endpoint, cache.path()))
        .download_model("hkunlp/instructor-tiny", "main", &model_files, &mut ())
        .unwrap();
    assert_eq!(got, snapshot);
    Instructor::load(&got, &LoadOptions::default()).unwrap();
}

/// The routes the browser build uses (its `fetch` hides the 302's headers), CORS, datasets, and
/// the run-time control API.
#[test]
fn mock_hub_serves_the_browser_api_datasets_and_control_routes() {
    let hub = start_hub();
    hub.add_file("datasets/fixtures/tiny-set", "data/test.jsonl", "{}\n");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get_json = |path: &str| -> serde_json::Value {
        let mut resp = agent.get(format!("{}{path}", hub.url())).call().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    let weights = hub.file(REPO, "pytorch_model.bin");
    let sha = sha256_hex(&weights);

    let info = get_json("/api/models/fixtures/tiny-relu-bin/revision/main");
    assert_eq!(info["sha"], hub.commit(REPO));
    let sibling = info["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rfilename"] == "pytorch_model.bin")
        .unwrap();
    assert_eq!(sibling["lfs"]["sha256"], sha.as_str());
    assert_eq!(sibling["size"], weights.len());

    let tree = get_json("/api/models/fixtures/tiny-relu-bin/tree/main?recursive=true");
    let paths: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"2_Dense/pytorch_model.bin") && paths.contains(&"2_Dense"));

    let mut resp = agent
        .post(format!(
            "{}/api/models/fixtures/tiny-relu-bin/paths-info/main",
            hub.url()
        ))
        .content_type("application/x-www-form-urlencoded")
        .send("paths=pytorch_model.bin&paths=nope.json")
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(info.as_array().unwrap().len(), 1);
    assert_eq!(info[0]["lfs"]["oid"], sha.as_str());

    let mut raw = agent
        .get(format!(
            "{}/fixtures/tiny-relu-bin/raw/main/pytorch_model.bin",
            hub.url()
        ))
        .call()
        .unwrap();
    let pointer = raw.body_mut().read_to_string().unwrap();
    assert!(pointer.contains(&format!("oid sha256:{sha}")), "{pointer}");
    let cors = raw.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(cors.contains("X-Linked-Etag") && cors.contains("Content-Range"));
    assert_eq!(raw.headers()["access-control-allow-origin"], "*");

    let preflight = agent
        .options(format!(
            "{}/fixtures/tiny-relu-bin/resolve/main/x",
            hub.url()
        ))
        .header("Access-Control-Request-Headers", "range, authorization")
        .call()
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("range") && allowed.contains("authorization"));

    let mut data = agent
        .get(format!(
            "{}/datasets/fixtures/tiny-set/resolve/main/data/test.jsonl",
            hub.url()
        ))
        .call()
        .unwrap();
    assert_eq!(data.body_mut().read_to_string().unwrap(), "{}\n");

    // Control over HTTP, as the browser tests use it.
    let faults = r#"{"missing": ["fixtures/tiny-relu-bin/config.json"]}"#;
    let resp = agent
        .post(format!("{}/__mock/faults", hub.url()))
        .send(faults)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let missing = agent
        .get(format!(
            "{}/fixtures/tiny-relu-bin/resolve/main/config.json",
            hub.url()
        ))
        .call()
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-error-code"], "EntryNotFound");
    let stats = get_json("/__mock/stats");
    assert_eq!(stats["requests"], 7);
    assert_eq!(
        stats["paths"]["/fixtures/tiny-relu-bin/resolve/main/config.json"]["requests"],
        1
    );
    agent
        .post(format!("{}/__mock/reset", hub.url()))
        .send("")
        .unwrap();
    assert_eq!(hub.stats().requests(), 0);
    assert_eq!(hub.faults(), Faults::default());
}

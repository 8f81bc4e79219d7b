//! The mock Hugging Face hub as a process, for tests outside Rust (Node, headless Chromium):
//!
//! ```text
//! cargo run -p instructor-mock-hub -- --root tests/fixtures/models --port 0 [--ready-file F]
//!     [--owner fixtures] [--datasets-root DIR] [--faults '{"ignore_range": true}']
//! ```
//!
//! Serves each folder under `--root` as repo `{owner}/{folder}` and each folder under
//! `--datasets-root` as dataset `{owner}/{folder}`. Prints `listening on http://127.0.0.1:PORT`
//! once it accepts connections, and writes the same URL to `--ready-file` (written whole, then
//! renamed, so a watcher never reads half of it). Faults can be changed at run time with `POST
//! /__mock/faults`; see src/lib.rs for the routes.

use instructor_mock_hub::{Faults, MockHub};
use std::io::Write;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("mock_hub: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut root = PathBuf::from("tests/fixtures/models");
    let mut datasets_root = None;
    let mut port = 0u16;
    let mut ready_file = None;
    let mut owner = "fixtures".to_string();
    let mut faults = Faults::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--root" => root = value()?.into(),
            "--datasets-root" => datasets_root = Some(PathBuf::from(value()?)),
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--ready-file" => ready_file = Some(PathBuf::from(value()?)),
            "--owner" => owner = value()?,
            "--faults" => {
                faults = serde_json::from_str(&value()?).map_err(|e| format!("--faults: {e}"))?
            }
            "-h" | "--help" => {
                println!(
                    "usage: mock_hub [--root DIR] [--datasets-root DIR] [--port N] \
                     [--ready-file F] [--owner NAME] [--faults JSON]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    let hub = MockHub::start(port).map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    hub.add_folders(&owner, &root)
        .map_err(|e| format!("--root {}: {e}", root.display()))?;
    if let Some(dir) = &datasets_root {
        hub.add_folders(&format!("datasets/{owner}"), dir)
            .map_err(|e| format!("--datasets-root {}: {e}", dir.display()))?;
    }
    hub.set_faults(faults);
    if let Some(file) = &ready_file {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", hub.url()))
            .and_then(|()| std::fs::rename(&tmp, file))
            .map_err(|e| format!("--ready-file {}: {e}", file.display()))?;
    }
    println!("listening on {}", hub.url());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::park();
    }
}

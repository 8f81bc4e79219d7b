//! Checkpoint folders `<output>/checkpoint-<step>/`: a complete sentence-transformers model plus
//! what `--resume` needs (`optimizer.safetensors`, `trainer_state.json`).
//!
//! A checkpoint is built in `<output>/.checkpoint-<step>.tmp/`, every file synced, and only then
//! renamed into place: a crash mid-save leaves a `.tmp` folder (removed by the next run), never a
//! `checkpoint-<step>` that looks complete but is not.

use instructor::{Error, Result};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The JSON lines log of a run, in the output folder.
pub const LOG_FILE: &str = "train_log.jsonl";

const PREFIX: &str = "checkpoint-";
const TMP_SUFFIX: &str = ".tmp";

/// Writes `<output>/checkpoint-<step>` with `fill(dir)`, atomically.
pub fn write(
    output: &Path,
    step: usize,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let tmp = output.join(format!(".{PREFIX}{step}{TMP_SUFFIX}"));
    let dest = path(output, step);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&tmp)?;
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    // Make the rename itself durable (directory entries live in the parent).
    std::fs::File::open(output)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(output, e))?;
    Ok(dest)
}

/// Where the checkpoint after update `step` goes.
pub fn path(output: &Path, step: usize) -> PathBuf {
    output.join(format!("{PREFIX}{step}"))
}

/// The checkpoint with the highest step in `output`, if any.
pub fn latest(output: &Path) -> Result<Option<(usize, PathBuf)>> {
    if !output.is_dir() {
        return Ok(None);
    }
    let mut best = None;
    for entry in std::fs::read_dir(output).map_err(|e| Error::io(output, e))? {
        let entry = entry.map_err(|e| Error::io(output, e))?;
        let name = entry.file_name();
        let step = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|s| s.parse::<usize>().ok());
        if let Some(step) = step {
            if entry.path().join(STATE_FILE).is_file()
                && best.as_ref().is_none_or(|(b, _)| step > *b)
            {
                best = Some((step, entry.path()));
            }
        }
    }
    Ok(best)
}

/// Removes the `.tmp` folders of saves that never finished.
pub fn remove_partial(output: &Path) -> Result<()> {
    if !output.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(output).map_err(|e| Error::io(output, e))? {
        let entry = entry.map_err(|e| Error::io(output, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(TMP_SUFFIX) {
            std::fs::remove_dir_all(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_save_leaves_no_checkpoint() {
        let out = tempfile::tempdir().unwrap();
        let failed = write(out.path(), 5, |dir| {
            std::fs::write(dir.join(STATE_FILE), "{}").unwrap();
            Err(Error::Train("disk full".into()))
        });
        assert!(failed.is_err());
        assert_eq!(latest(out.path()).unwrap(), None);
        write(out.path(), 3, |dir| {
            std::fs::write(dir.join(STATE_FILE), "{}").map_err(|e| Error::io(dir, e))
        })
        .unwrap();
        assert_eq!(latest(out.path()).unwrap().unwrap().0, 3);
        remove_partial(out.path()).unwrap();
        let names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["checkpoint-3"]);
    }
}

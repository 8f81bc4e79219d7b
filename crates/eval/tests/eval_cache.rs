//! The per-text embedding cache of `instructor eval` (instructor_eval::cache), with a counting
//! stand-in for the model: what is embedded, what is read back, and what an interrupted write
//! leaves behind.

#[path = "../../../tests/common/mod.rs"]
mod common;

use instructor::{Embeddings, Input};
use instructor_eval::cache::{CacheStats, DiskCache};
use instructor_eval::EvalError;

const DIM: usize = 4;

/// A deterministic "embedding" of an input, different for different inputs.
fn fake(input: &Input) -> Vec<f32> {
    let s = format!("{}|{}", input.instruction, input.text);
    let h = s
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (0..DIM as u32)
        .map(|i| (h.rotate_left(i * 8) & 0xffff) as f32 / 7.0)
        .collect()
}

/// Embeds with [`fake`] and records every input handed to it.
fn counting(seen: &mut Vec<String>) -> impl FnMut(&[Input]) -> Result<Embeddings, EvalError> + '_ {
    move |inputs| {
        seen.extend(inputs.iter().map(|i| i.text.clone()));
        Ok(Embeddings {
            data: inputs.iter().flat_map(fake).collect(),
            rows: inputs.len(),
            dim: DIM,
        })
    }
}

fn inputs(texts: &[&str]) -> Vec<Input> {
    texts
        .iter()
        .map(|t| Input::new("Represent: ", *t))
        .collect()
}

fn check(got: &Embeddings, want: &[Input]) {
    assert_eq!((got.rows, got.dim), (want.len(), DIM));
    for (i, w) in want.iter().enumerate() {
        assert_eq!(got.row(i), fake(w).as_slice(), "row {i} ({})", w.text);
    }
}

#[test]
fn a_second_run_with_one_added_text_embeds_exactly_that_text() {
    let dir = tempfile::tempdir().unwrap();
    let first = inputs(&["a", "b", "c", "b", "d"]);
    let mut seen = vec![];
    let mut cache = DiskCache::new(dir.path(), DIM);
    check(
        &cache
            .get_or_embed(&first, &mut counting(&mut seen))
            .unwrap(),
        &first,
    );
    // A text twice in one call is embedded once.
    assert_eq!(seen, ["a", "b", "c", "d"]);
    assert_eq!(
        cache.stats,
        CacheStats {
            cached: 1,
            embedded: 4
        }
    );

    // A new process (a new cache object) on the dataset with one text more, in another order.
    let second = inputs(&["d", "new", "a", "b", "c"]);
    let mut seen = vec![];
    let mut cache = DiskCache::new(dir.path(), DIM);
    check(
        &cache
            .get_or_embed(&second, &mut counting(&mut seen))
            .unwrap(),
        &second,
    );
    assert_eq!(seen, ["new"]);
    assert_eq!(
        cache.stats,
        CacheStats {
            cached: 4,
            embedded: 1
        }
    );

    // The instruction is part of the key.
    let other = vec![Input::new("Other: ", "a")];
    let mut seen = vec![];
    check(
        &cache
            .get_or_embed(&other, &mut counting(&mut seen))
            .unwrap(),
        &other,
    );
    assert_eq!(seen, ["a"]);
}

/// Segments appear by rename only: a run killed mid-write leaves a temporary file that is
/// skipped; a segment damaged by other means is an error that names it.
#[test]
fn an_interrupted_write_is_skipped_and_a_damaged_segment_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let texts = inputs(&["x", "y"]);
    let mut cache = DiskCache::new(dir.path(), DIM);
    cache
        .get_or_embed(&texts, &mut counting(&mut vec![]))
        .unwrap();
    let segments: Vec<_> = common::walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    assert!(!segments.is_empty());
    // What a killed writer leaves: a half-written temporary beside the segments.
    let shard = segments[0].parent().unwrap();
    std::fs::write(shard.join(".123-4-5.seg.tmp"), b"IEC1\x04\0\0\0").unwrap();
    let mut seen = vec![];
    check(
        &cache
            .get_or_embed(&texts, &mut counting(&mut seen))
            .unwrap(),
        &texts,
    );
    assert!(seen.is_empty());

    let bytes = std::fs::read(&segments[0]).unwrap();
    std::fs::write(&segments[0], &bytes[..bytes.len() - 3]).unwrap();
    let err = cache
        .get_or_embed(&texts, &mut counting(&mut vec![]))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&segments[0].display().to_string()), "{err}");
}

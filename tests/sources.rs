//! The one loader, two sources: a model read from memory (as the browser hands it over) gives
//! exactly what the folder gives, for every fixture format (`.bin` f32, safetensors bf16/f16).

mod common;

use common::*;
use instructor::source::MemorySource;
use instructor::{EncodeOptions, Instructor, LoadOptions};

#[test]
fn memory_source_matches_folder_and_reference() {
    let inputs = cases();
    for name in MODELS {
        let dir = model_dir(name);
        let from_dir = Instructor::load(&dir, &LoadOptions::default()).unwrap();
        let src = MemorySource::from_folder_contents(&dir).unwrap();
        let from_mem = Instructor::from_source(&src, &LoadOptions::default()).unwrap();
        drop(src);
        let opts = EncodeOptions::default();
        let a = from_dir.encode(&inputs, &opts).unwrap();
        let b = from_mem.encode(&inputs, &opts).unwrap();
        assert_eq!(a, b, "{name}: memory source differs from the folder");
        let exp = expected(name);
        for (i, case) in exp.cases.iter().enumerate() {
            let d = max_abs_diff(b.row(i), &case.embedding);
            assert!(d < 1e-5, "{name} case {i}: max abs diff {d}");
        }
    }
}

#[test]
fn memory_source_errors_name_the_file() {
    let dir = model_dir("tiny-relu-bin");
    let mut src = MemorySource::from_folder_contents(&dir).unwrap();
    let bytes = std::fs::read(dir.join("pytorch_model.bin")).unwrap();
    src.insert_vec("pytorch_model.bin", bytes[..bytes.len() / 2].to_vec());
    let err = Instructor::from_source(&src, &LoadOptions::default())
        .err()
        .expect("a truncated .bin must not load")
        .to_string();
    assert!(err.contains("pytorch_model.bin"), "{err}");

    let mut src = MemorySource::from_folder_contents(&dir).unwrap();
    src.insert_vec("tokenizer.json", b"{".to_vec());
    let err = Instructor::from_source(&src, &LoadOptions::default())
        .err()
        .expect("a broken tokenizer must not load")
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn needed_files_follow_modules_json() {
    let text = std::fs::read_to_string(model_dir("tiny-relu-bin").join("modules.json")).unwrap();
    let modules = instructor::config::parse_modules(&text, "modules.json".as_ref()).unwrap();
    let (files, weights) = instructor::config::needed_files(&modules);
    assert_eq!(
        files,
        [
            "modules.json",
            "config.json",
            "sentence_bert_config.json",
            "tokenizer.json",
            "1_Pooling/config.json",
            "2_Dense/config.json"
        ]
    );
    assert_eq!(
        weights,
        [
            vec!["model.safetensors", "pytorch_model.bin"],
            vec!["2_Dense/model.safetensors", "2_Dense/pytorch_model.bin"]
        ]
    );
}

//! Random-weight INSTRUCTOR folders at the real checkpoints' shapes, for benchmarks: the
//! arithmetic is the same as with the real weights, which this machine cannot download. (Not
//! seeded: candle cannot seed its CPU generator, and speed does not depend on the values.)
//! Shared by `benches/encode.rs` and `examples/random_model.rs` (one implementation).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use instructor::config::{Activation, DenseConfig, T5Config};
use instructor::head::Head;
use instructor::model::T5Encoder;
use serde_json::json;
use std::path::{Path, PathBuf};

/// (d_model, d_kv, heads, d_ff, layers) of hkunlp/instructor-{base,large,xl}, and `small`: a
/// quick-to-write shape (166 MB in f32) whose blocks outweigh its embedding table, as in the real
/// models, for the browser's memory test.
pub fn shape(name: &str) -> (usize, usize, usize, usize, usize) {
    match name {
        "small" => (512, 64, 8, 2048, 16),
        "base" => (768, 64, 12, 3072, 12),
        "large" => (1024, 64, 16, 4096, 24),
        "xl" => (1024, 128, 32, 16384, 24),
        other => panic!("unknown shape `{other}` (small, base, large or xl)"),
    }
}

/// Writes a model folder with the given shape (named as in [`shape`]) and random weights; the
/// tokenizer is the fixture's (its ids are a subset of the real vocabulary).
pub fn write_random_model(dir: &Path, shape_name: &str) -> PathBuf {
    let (d_model, d_kv, heads, d_ff, layers) = shape(shape_name);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::create_dir_all(dir.join("2_Dense")).unwrap();
    let write = |rel: &str, v: serde_json::Value| {
        std::fs::write(dir.join(rel), serde_json::to_string_pretty(&v).unwrap()).unwrap()
    };
    let config = json!({
        "architectures": ["T5EncoderModel"], "model_type": "t5", "vocab_size": 32128,
        "d_model": d_model, "d_kv": d_kv, "d_ff": d_ff, "num_layers": layers, "num_heads": heads,
        "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
        "dropout_rate": 0.1, "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0,
        "feed_forward_proj": "relu", "is_encoder_decoder": true, "pad_token_id": 0,
        "eos_token_id": 1, "decoder_start_token_id": 0,
    });
    write("config.json", config.clone());
    write(
        "sentence_bert_config.json",
        json!({"max_seq_length": 512, "do_lower_case": false}),
    );
    write(
        "modules.json",
        json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
            {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]),
    );
    write(
        "1_Pooling/config.json",
        json!({"word_embedding_dimension": d_model, "pooling_mode_mean_tokens": true}),
    );
    write(
        "2_Dense/config.json",
        json!({"in_features": d_model, "out_features": 768, "bias": false,
               "activation_function": "torch.nn.modules.linear.Identity"}),
    );
    std::fs::copy(
        root.join("tests/fixtures/models/tiny-relu-bin/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();

    let device = Device::Cpu;
    let cfg: T5Config = serde_json::from_value(config).unwrap();
    let encoder = VarMap::new();
    T5Encoder::load(
        VarBuilder::from_varmap(&encoder, DType::F32, &device),
        &cfg,
        false,
    )
    .unwrap();
    randomize(&encoder, 0.05);
    encoder.save(dir.join("model.safetensors")).unwrap();

    let dense = VarMap::new();
    let dense_cfg = DenseConfig {
        in_features: d_model,
        out_features: 768,
        bias: false,
        activation: Activation::Identity,
        weights: dir.join("2_Dense/model.safetensors"),
    };
    Head::dense_from(
        VarBuilder::from_varmap(&dense, DType::F32, &device),
        &dense_cfg,
        false,
    )
    .unwrap();
    randomize(&dense, 0.05);
    dense.save(&dense_cfg.weights).unwrap();
    dir.to_path_buf()
}

/// Norm weights around 1, everything else normal with standard deviation `std`.
fn randomize(vars: &VarMap, std: f64) {
    for (name, var) in vars.data().lock().unwrap().iter() {
        let noise = Tensor::randn(0f32, std as f32, var.shape(), &Device::Cpu).unwrap();
        let value = if name.ends_with("layer_norm.weight") {
            (noise + 1.0).unwrap()
        } else {
            noise
        };
        var.set(&value).unwrap();
    }
}

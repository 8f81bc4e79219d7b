//! The native CPU path against the Python reference, to float precision.

mod common;

use common::*;
use instructor::{Embeddings, EncodeOptions, Input, Instructor, LoadOptions};

fn load(name: &str) -> Instructor {
    Instructor::load(model_dir(name), &LoadOptions::default()).unwrap()
}

/// Unit-length embeddings, as the reference's `embedding_normalized`.
fn normalized(model: &Instructor, inputs: &[Input]) -> Embeddings {
    let opts = EncodeOptions {
        normalize: true,
        ..Default::default()
    };
    model.encode(inputs, &opts).unwrap()
}

fn in_batches_of(model: &Instructor, inputs: &[Input], batch_size: usize) -> Embeddings {
    let opts = EncodeOptions {
        batch_size,
        ..Default::default()
    };
    model.encode(inputs, &opts).unwrap()
}

#[test]
fn token_ids_and_instruction_lengths_match_reference() {
    let inputs = cases();
    for name in MODELS {
        let model = load(name);
        let exp = expected(name);
        let tokens = model.tokenize(&inputs, None).unwrap();
        assert_eq!(tokens.len(), exp.cases.len());
        for (i, (t, e)) in tokens.iter().zip(&exp.cases).enumerate() {
            assert_eq!(t.ids, e.input_ids, "{name} case {i}: token ids");
            assert_eq!(
                t.instruction_len, e.instruction_len,
                "{name} case {i}: instruction length"
            );
        }
    }
}

#[test]
fn embeddings_match_reference_within_1e5() {
    let inputs = cases();
    for name in MODELS {
        let model = load(name);
        let exp = expected(name);
        assert_eq!(model.dim(), exp.dim);
        let out = model.encode(&inputs, &EncodeOptions::default()).unwrap();
        let normalized = normalized(&model, &inputs);
        for (i, e) in exp.cases.iter().enumerate() {
            let d = max_abs_diff(out.row(i), &e.embedding);
            assert!(d <= 1e-5, "{name} case {i}: max abs diff {d}");
            let d = max_abs_diff(normalized.row(i), e.embedding_normalized.as_ref().unwrap());
            assert!(d <= 1e-5, "{name} case {i} (normalize): max abs diff {d}");
        }
    }
}

#[test]
fn max_seq_length_option_matches_reference() {
    let inputs = cases();
    for name in MODELS {
        let model = load(name);
        let exp = expected(name);
        let picked: Vec<Input> = exp
            .max_seq_length_16
            .iter()
            .map(|c| inputs[c.case.unwrap()].clone())
            .collect();
        let tokens = model.tokenize(&picked, Some(16)).unwrap();
        let opts = EncodeOptions {
            max_seq_length: Some(16),
            ..Default::default()
        };
        let out = model.encode(&picked, &opts).unwrap();
        for (i, e) in exp.max_seq_length_16.iter().enumerate() {
            assert_eq!(tokens[i].ids, e.input_ids, "{name} case {:?}", e.case);
            assert_eq!(tokens[i].instruction_len, e.instruction_len);
            let d = max_abs_diff(out.row(i), &e.embedding);
            assert!(d <= 1e-5, "{name} case {:?}: max abs diff {d}", e.case);
        }
    }
}

#[test]
fn token_embeddings_match_reference() {
    let inputs = cases();
    for name in MODELS {
        let model = load(name);
        let exp = expected(name);
        let out = model
            .encode_tokens(&inputs, &EncodeOptions::default())
            .unwrap();
        let mut checked = 0;
        for (i, e) in exp.cases.iter().enumerate() {
            let Some(rows) = &e.token_embeddings else {
                continue;
            };
            assert_eq!(out[i].ids.len(), rows.len(), "{name} case {i}: token count");
            let flat: Vec<f32> = rows.iter().flatten().copied().collect();
            let d = max_abs_diff(&out[i].data, &flat);
            assert!(
                d <= 1e-5,
                "{name} case {i}: token embeddings max abs diff {d}"
            );
            checked += 1;
        }
        assert!(checked > 0, "{name}: reference has no token embeddings");
    }
}

#[test]
fn results_do_not_depend_on_batch_size_or_order() {
    let inputs = cases();
    let model = load("tiny-relu-bin");
    let one = in_batches_of(&model, &inputs, 1);
    for bs in [3, 7, 32] {
        let other = in_batches_of(&model, &inputs, bs);
        let d = max_abs_diff(&one.data, &other.data);
        assert!(
            d <= 1e-6,
            "batch size {bs}: max abs diff {d} against batch size 1"
        );
    }
    let reversed: Vec<Input> = inputs.iter().rev().cloned().collect();
    let rev = model.encode(&reversed, &EncodeOptions::default()).unwrap();
    for i in 0..inputs.len() {
        assert!(max_abs_diff(rev.row(inputs.len() - 1 - i), one.row(i)) <= 1e-6);
    }
}

#[test]
fn progress_reports_every_batch_and_ends_at_total() {
    let inputs = cases();
    let model = load("tiny-relu-bin");
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |done: usize, total: usize| {
        seen.lock().unwrap().push((done, total));
        Ok(())
    };
    let opts = EncodeOptions {
        batch_size: 8,
        progress: Some(&progress),
        ..Default::default()
    };
    model.encode(&inputs, &opts).unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), inputs.len().div_ceil(8));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(seen.last().unwrap(), &(inputs.len(), inputs.len()));
}

/// A progress callback's error stops the encode after that batch (how Python's Ctrl-C gets in).
#[test]
fn progress_error_stops_the_encode() {
    let inputs = cases();
    let model = load("tiny-relu-bin");
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: usize, _: usize| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(instructor::Error::Interrupted)
    };
    let opts = EncodeOptions {
        batch_size: 4,
        progress: Some(&progress),
        ..Default::default()
    };
    let err = model.encode(&inputs, &opts).unwrap_err();
    assert!(matches!(err, instructor::Error::Interrupted), "{err}");
    assert_eq!(err.kind(), instructor::ErrorKind::Interrupted);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let err = model.encode_tokens(&inputs, &opts).unwrap_err();
    assert!(matches!(err, instructor::Error::Interrupted), "{err}");
}

/// Reduced-precision matrix products (norms, softmax and the residual stream stay f32): the
/// error against the f32 reference stays within a stated bound.
#[test]
fn reduced_precision_stays_within_bound() {
    let inputs = cases();
    for (dtype, bound) in [
        (instructor::Dtype::F16, F16_BOUND),
        (instructor::Dtype::Bf16, BF16_BOUND),
    ] {
        for name in MODELS {
            let model = Instructor::load(
                model_dir(name),
                &LoadOptions {
                    dtype,
                    ..Default::default()
                },
            )
            .unwrap();
            let out = normalized(&model, &inputs);
            let exp = expected(name);
            let worst = exp
                .cases
                .iter()
                .enumerate()
                .map(|(i, e)| max_abs_diff(out.row(i), e.embedding_normalized.as_ref().unwrap()))
                .fold(0.0, f32::max);
            eprintln!("{dtype:?} {name}: max abs diff {worst:e} (normalized embeddings)");
            assert!(worst <= bound, "{dtype:?} {name}: {worst} > {bound}");
            assert!(
                worst > 0.0,
                "{dtype:?} {name}: identical to f32, so the dtype was not applied"
            );
        }
    }
}

/// Int8 (weights per output channel, activations per token) against the f32 reference: cosine
/// ≥ [`INT8_MIN_COSINE`] on every fixture model and case, with every int8 kernel this CPU has
/// giving the same bits (their integer sums are exact), the scalar one included.
#[test]
fn int8_stays_within_cosine_bound_with_every_kernel() {
    let inputs = cases();
    for name in MODELS {
        let exp = expected(name);
        let mut first: Option<Embeddings> = None;
        for kernel in instructor::model::int8::Kernel::available() {
            std::env::set_var("INSTRUCTOR_INT8_KERNEL", kernel.name());
            let model = Instructor::load(
                model_dir(name),
                &LoadOptions {
                    dtype: instructor::Dtype::Int8,
                    ..Default::default()
                },
            )
            .unwrap();
            std::env::remove_var("INSTRUCTOR_INT8_KERNEL");
            assert_eq!(model.int8_kernel(), Some(kernel.name()));
            assert_eq!(model.dtype(), instructor::Dtype::Int8);
            let out = normalized(&model, &inputs);
            let mut worst = 1f32;
            for (i, e) in exp.cases.iter().enumerate() {
                let want = e.embedding_normalized.as_ref().unwrap();
                if want.iter().all(|&v| v == 0.0) {
                    // Nothing left after the instruction: zero, in int8 too.
                    assert!(out.row(i).iter().all(|&v| v == 0.0), "{name} case {i}");
                } else {
                    worst = worst.min(cosine(out.row(i), want));
                }
            }
            eprintln!("int8 {name} ({}): min cosine {worst}", kernel.name());
            assert!(worst >= INT8_MIN_COSINE, "int8 {name}: cosine {worst}");
            assert!(
                worst < 1.0 - 1e-7,
                "int8 {name}: equal to f32, so int8 was not applied"
            );
            match &first {
                None => first = Some(out),
                Some(f) => assert_eq!(f, &out, "{name}: {} differs from scalar", kernel.name()),
            }
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p * q) as f64).sum::<f64>();
    (dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()) as f32
}

/// Bounds on normalized embeddings (unit vectors), stated in the README.
const F16_BOUND: f32 = 2e-3;
const BF16_BOUND: f32 = 1.5e-2;
const INT8_MIN_COSINE: f32 = 0.999;

/// What sharding by batch (ranks under MPI) relies on: the inputs of whole batches of a plan,
/// encoded on their own in plan order, come out with the bits of one encode of everything.
#[test]
fn whole_batches_of_the_plan_encode_to_the_same_bits_alone() {
    let inputs = cases();
    for name in MODELS {
        let model = load(name);
        let opts = EncodeOptions {
            batch_size: 3,
            ..Default::default()
        };
        let plan = model.plan(&inputs, &opts).unwrap();
        assert_eq!(plan.concat().len(), inputs.len());
        assert!(plan.iter().all(|b| b.len() <= 3));
        let all = model.encode(&inputs, &opts).unwrap();
        for parity in [0, 1] {
            let share: Vec<usize> = plan
                .iter()
                .skip(parity)
                .step_by(2)
                .flatten()
                .copied()
                .collect();
            let mine: Vec<Input> = share.iter().map(|&i| inputs[i].clone()).collect();
            let part = model.encode(&mine, &opts).unwrap();
            assert_eq!(
                model.plan(&mine, &opts).unwrap().len(),
                plan.iter().skip(parity).step_by(2).count()
            );
            for (j, &i) in share.iter().enumerate() {
                assert_eq!(part.row(j), all.row(i), "{name}: input {i}");
            }
        }
    }
}

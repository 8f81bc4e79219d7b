//! Turning `[instruction, text]` pairs into token ids, and counting the instruction's tokens.
//!
//! The reference (InstructorEmbedding 1.0.1) tokenizes `(instruction + text.strip()).strip()` and,
//! separately, `instruction.strip()`; the instruction's token count minus one (its `</s>`) is the
//! number of leading positions left out of the mean. A count of one or less masks nothing.

use crate::error::{Error, Result};
use crate::input::{Input, Tokens};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Python's `str.strip()`: Unicode whitespace plus the four ASCII separators U+001C..U+001F,
/// which Python's `isspace` counts and Rust's `char::is_whitespace` does not.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The model's tokenizer (`tokenizer.json`) with INSTRUCTOR's input rules.
#[derive(Clone)]
pub struct InstructorTokenizer {
    inner: Tokenizer,
    lowercase: bool,
}

impl InstructorTokenizer {
    pub fn from_bytes(json: &[u8], lowercase: bool) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(e.to_string()))?;
        // Padding is done by the batcher (it knows the batch); the tokenizer must not pad.
        inner.with_padding(None);
        Ok(Self { inner, lowercase })
    }

    /// Tokenizes inputs, truncating each to `max_len` tokens (`</s>` included).
    pub fn encode(&self, inputs: &[Input], max_len: usize) -> Result<Vec<Tokens>> {
        if max_len < 2 {
            return Err(Error::Input(format!(
                "max_seq_length must be at least 2, got {max_len}"
            )));
        }
        let mut tok = self.inner.clone();
        tok.with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            direction: TruncationDirection::Right,
            stride: 0,
        }))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let case = |s: &str| {
            if self.lowercase {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        let texts: Vec<String> = inputs
            .iter()
            .map(|i| case(py_strip(&format!("{}{}", i.instruction, py_strip(&i.text)))))
            .collect();
        let instructions: Vec<String> = inputs
            .iter()
            .map(|i| case(py_strip(&i.instruction)))
            .collect();
        let err = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let texts = tok.encode_batch(texts, true).map_err(err)?;
        let instructions = tok.encode_batch(instructions, true).map_err(err)?;
        Ok(texts
            .into_iter()
            .zip(instructions)
            .map(|(t, i)| {
                let n = i.get_ids().len().saturating_sub(1);
                Tokens {
                    ids: t.get_ids().to_vec(),
                    instruction_len: if n <= 1 { 0 } else { n },
                }
            })
            .collect())
    }
}

//! What goes in: `[instruction, text]` pairs, and the token ids the tokenizer makes of them.

/// One input: an instruction (may be empty) and the text it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Input {
    #[serde(default)]
    pub instruction: String,
    pub text: String,
}

impl Input {
    pub fn new(instruction: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            instruction: instruction.into(),
            text: text.into(),
        }
    }

    /// A text with no instruction (the reference's plain-string input; nothing is masked).
    pub fn plain(text: impl Into<String>) -> Self {
        Self::new("", text)
    }
}

/// One tokenized input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Ids of `(instruction + text).strip()`, `</s>` included, truncated to `max_seq_length`.
    pub ids: Vec<u32>,
    /// Leading positions excluded from pooling.
    pub instruction_len: usize,
}

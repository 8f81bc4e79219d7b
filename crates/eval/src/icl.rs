//! In-context learning with retrieved demonstrations: the INSTRUCTOR paper's prompt-retrieval
//! benchmark (its repository's `evaluation/prompt_retrieval`: `get_task.py`, `two_steps.py`,
//! `main.py`, and MetaICL's `data.py`/`model.py`, which it scores with).
//!
//! The stages, each a function here: the task's prompt format and label strings ([`IclTask`]);
//! the demonstrations chosen for each test input ([`crate::metrics::prompt_retrieval::select`],
//! over the embeddings of [`IclTask::text_to_encode`]); MetaICL's "direct" prompt for each label
//! option ([`tensorize`]); the option with the lowest mean loss under the language model
//! ([`predict`], losses from [`crate::lm::CausalLm::mean_losses`]); and the task's score as
//! `main.py` reports it ([`repo_rouge_l`]) next to plain accuracy.

use crate::lm::Scored;
use crate::metrics::rng::Mt19937;
use serde_json::Value;

/// The classification tasks of `main.py` (`rte`, `sst5`, `mrpc`, `dbpedia_14`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IclTask {
    Rte,
    Sst5,
    Mrpc,
    Dbpedia14,
}

/// MetaICL's `max_length` and `max_length_per_example` as `main.py` sets them.
pub const MAX_LENGTH: usize = 1024;
pub const MAX_LENGTH_PER_EXAMPLE: usize = 256;

/// `main.py`'s selection budgets (`maximum_input_len`, `single_input_len`), in the length
/// tokenizer's tokens.
pub const BUDGET: crate::metrics::prompt_retrieval::Budget =
    crate::metrics::prompt_retrieval::Budget {
        max_prompt_len: 1000,
        max_example_len: Some(250),
    };

impl IclTask {
    pub const ALL: [IclTask; 4] = [Self::Rte, Self::Sst5, Self::Mrpc, Self::Dbpedia14];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name `main.py --task_name` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rte => "rte",
            Self::Sst5 => "sst5",
            Self::Mrpc => "mrpc",
            Self::Dbpedia14 => "dbpedia_14",
        }
    }

    /// `label_map`'s strings in label order (label `i` is `labels()[i]`).
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Self::Rte => &["True", "False"],
            Self::Sst5 => &[
                "very negative",
                "negative",
                "neutral",
                "positive",
                "very positive",
            ],
            Self::Mrpc => &["not equivalent", "equivalent"],
            Self::Dbpedia14 => &[
                "company",
                "educational institution",
                "artist",
                "athlete",
                "office holder",
                "mean of transportation",
                "building",
                "natural place",
                "village",
                "animal",
                "plant",
                "album",
                "film",
                "written work",
            ],
        }
    }

    /// The instruction `--add_prompt` gives INSTRUCTOR (`utils.definitions`). The repository
    /// has none for dbpedia_14 (its `--add_prompt` run fails there with a KeyError): its texts
    /// are embedded without one.
    pub fn instruction(self) -> Option<&'static str> {
        match self {
            Self::Rte => Some("Represent a Wikipedia sentence; Input: "),
            Self::Sst5 => Some("Represent an emotion sentence; Input: "),
            Self::Mrpc => Some("Represent a news sentence; Input: "),
            Self::Dbpedia14 => None,
        }
    }

    /// Where `get_task.py` loads the task from: the hub dataset, its revision (pinned where
    /// mteb pins the same dataset; else the branch, and the result records the commit read),
    /// its config, and the (split, sample size) of the pool and of the test inputs (`None`: the
    /// whole split).
    pub fn dataset(self) -> HubTask {
        let (repo, revision, config, pool, test) = match self {
            Self::Rte => (
                "nyu-mll/glue",
                "main",
                Some("rte"),
                ("train", None),
                "validation",
            ),
            Self::Sst5 => ("SetFit/sst5", "main", None, ("train", Some(3000)), "test"),
            Self::Mrpc => (
                "nyu-mll/glue",
                "main",
                Some("mrpc"),
                ("train", Some(3000)),
                "validation",
            ),
            Self::Dbpedia14 => (
                "fancyzhx/dbpedia_14",
                "9abd46cf7fc8b4c64290f26993c540b92aa145ac",
                Some("dbpedia_14"),
                ("train", Some(3000)),
                "test",
            ),
        };
        HubTask {
            repo,
            revision,
            config,
            pool,
            test: (test, 256),
        }
    }

    /// `process_<task>_examples`: the fields the prompts use, the label, and `id` = the row's
    /// place in the sample.
    pub fn example(self, id: usize, row: &Value) -> Result<Value, String> {
        let fields: &[&str] = match self {
            Self::Rte | Self::Mrpc => &["sentence1", "sentence2"],
            Self::Sst5 => &["text"],
            Self::Dbpedia14 => &["title", "content"],
        };
        let mut ex = serde_json::Map::new();
        ex.insert("id".into(), id.into());
        ex.insert("label".into(), self.label_of(row)?.into());
        for f in fields {
            ex.insert((*f).into(), field(row, f)?.into());
        }
        Ok(Value::Object(ex))
    }

    /// `format_example`: the prompt text of an example and its label string.
    pub fn format(self, ex: &Value) -> Result<(String, String), String> {
        let label = self.label_of(ex)?;
        let output = self.labels()[label].to_string();
        let input = match self {
            Self::Rte => format!(
                "{}.\nquestion: {}. True or False?\nanswer:",
                field(ex, "sentence1")?,
                field(ex, "sentence2")?
            ),
            Self::Sst5 => format!(
                "How do you feel about the following sentence?\n{}\nanswer:",
                field(ex, "text")?
            ),
            Self::Mrpc => format!(
                "Are the following two sentences 'equivalent' or 'not equivalent'?\n{}.\n{}.\nanswer:",
                field(ex, "sentence1")?,
                field(ex, "sentence2")?
            ),
            Self::Dbpedia14 => format!(
                "title: {}; content: {}",
                field(ex, "title")?,
                field(ex, "content")?
            ),
        };
        Ok((input, output))
    }

    /// `all_*_text_to_encode`: what INSTRUCTOR embeds of an example.
    pub fn text_to_encode(self, ex: &Value) -> Result<String, String> {
        Ok(match self {
            Self::Rte => format!(
                "{}.\nquestion: {}",
                field(ex, "sentence1")?,
                field(ex, "sentence2")?
            ),
            Self::Sst5 => field(ex, "text")?.to_string(),
            Self::Mrpc => format!("{}.\n{}", field(ex, "sentence1")?, field(ex, "sentence2")?),
            Self::Dbpedia14 => format!(
                "title: {} ; content: {}",
                field(ex, "title")?,
                field(ex, "content")?
            ),
        })
    }

    /// The example's label, checked against the label map.
    pub fn label_of(self, ex: &Value) -> Result<usize, String> {
        let label = ex
            .get("label")
            .and_then(Value::as_u64)
            .ok_or("field `label`: missing or not a non-negative integer")?
            as usize;
        if label >= self.labels().len() {
            return Err(format!(
                "field `label`: {label} (the task has {} labels)",
                self.labels().len()
            ));
        }
        Ok(label)
    }
}

/// A task's hub dataset, as [`IclTask::dataset`] gives it.
#[derive(Debug, Clone, Copy)]
pub struct HubTask {
    pub repo: &'static str,
    pub revision: &'static str,
    pub config: Option<&'static str>,
    pub pool: (&'static str, Option<usize>),
    pub test: (&'static str, usize),
}

/// `get_task.py` after `set_seed(seed)`: the pool (a `random.sample` of its split, or all of it)
/// and then the test inputs (a sample of theirs), each processed into the repository's
/// examples. Python's `random` is reproduced exactly ([`PyRandom`]).
pub fn sample_examples(
    task: IclTask,
    pool_rows: &[Value],
    test_rows: &[Value],
    seed: u32,
) -> Result<(Vec<Value>, Vec<Value>), String> {
    let d = task.dataset();
    let mut rng = PyRandom::new(seed);
    let mut take = |rows: &[Value], k: Option<usize>, split: &str| -> Result<Vec<Value>, String> {
        let idx: Vec<usize> = match k {
            Some(k) => rng.sample(rows.len(), k).ok_or_else(|| {
                format!(
                    "split `{split}` has {} rows, fewer than the {k} sampled",
                    rows.len()
                )
            })?,
            None => (0..rows.len()).collect(),
        };
        idx.iter()
            .enumerate()
            .map(|(id, &i)| {
                task.example(id, &rows[i])
                    .map_err(|e| format!("split `{split}` row {i}: {e}"))
            })
            .collect()
    };
    let pool = take(pool_rows, d.pool.1, d.pool.0)?;
    let test = take(test_rows, Some(d.test.1), d.test.0)?;
    Ok((pool, test))
}

/// CPython's `random.Random` as far as `random.sample` needs it: MT19937 seeded by
/// `init_by_array` of the seed's 32-bit words, `getrandbits`, `_randbelow_with_getrandbits`.
/// Written out because the repository's choice of examples is `random.sample` after
/// `random.seed(seed)`, and no crate reproduces CPython's sampling; the generator is the one
/// numpy's RandomState uses too ([`Mt19937`]).
pub struct PyRandom(Mt19937);

impl PyRandom {
    /// `random.seed(seed)` for a non-negative int below 2³².
    pub fn new(seed: u32) -> Self {
        Self(Mt19937::from_key(&[seed]))
    }

    /// `_randbelow(n)`, n ≥ 1 and below 2³².
    fn below(&mut self, n: usize) -> usize {
        let k = usize::BITS - n.leading_zeros();
        loop {
            let r = (self.0.next_u32() >> (32 - k)) as usize;
            if r < n {
                return r;
            }
        }
    }

    /// The indices `random.sample(range(n), k)` picks, in its order; `None` when k > n.
    pub fn sample(&mut self, n: usize, k: usize) -> Option<Vec<usize>> {
        if k > n {
            return None;
        }
        let mut setsize = 21usize;
        if k > 5 {
            let exp = ((k * 3) as f64).ln() / 4f64.ln();
            setsize += 4usize.pow(exp.ceil() as u32);
        }
        let mut out = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.below(n - i);
                out.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.below(n);
                while selected.contains(&j) {
                    j = self.below(n);
                }
                selected.insert(j);
                out.push(j);
            }
        }
        Some(out)
    }
}

fn field<'a>(ex: &'a Value, name: &str) -> Result<&'a str, String> {
    ex.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("field `{name}`: missing or not a string"))
}

/// A demonstration in the prompt: an example's formatted input and its label string.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Demo {
    pub input: String,
    pub output: String,
}

/// MetaICL's `tensorize` (method `direct`, `add_newlines`) of one test input with its
/// demonstrations, for every option: the demonstrations' tokens (the first as it is, each later
/// input after `"\n\n\n"`, each output after `"\n"`), the test input's (after `"\n\n\n"`, cut to
/// `256 − 2 − longest option`), then the option's (after `"\n"`); a sequence over 1024 tokens
/// loses its first tokens. `tok`: the language model's `tokenizer(text)["input_ids"]`.
pub fn tensorize(
    tok: &dyn Fn(&str) -> Result<Vec<u32>, String>,
    demos: &[Demo],
    test_input: &str,
    options: &[&str],
) -> Result<Vec<Scored>, String> {
    let mut prefix = vec![];
    for (i, d) in demos.iter().enumerate() {
        let input = if i == 0 {
            d.input.clone()
        } else {
            format!("{}{}", newlines(&d.input), d.input)
        };
        let (inp, out) = (tok(&input)?, tok(&format!("\n{}", d.output))?);
        if inp.len() + out.len() + 2 > MAX_LENGTH_PER_EXAMPLE {
            return Err(format!(
                "demonstration {i} has {} tokens (MetaICL allows {})",
                inp.len() + out.len(),
                MAX_LENGTH_PER_EXAMPLE - 2
            ));
        }
        prefix.extend(inp);
        prefix.extend(out);
    }
    let option_ids = options
        .iter()
        .map(|o| tok(&format!("\n{o}")))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = option_ids.iter().map(Vec::len).max().unwrap_or(0);
    let mut input = tok(&format!("{}{test_input}", newlines(test_input)))?;
    let keep = MAX_LENGTH_PER_EXAMPLE.saturating_sub(2 + longest);
    input.truncate(keep);
    prefix.extend(input);
    Ok(option_ids
        .into_iter()
        .map(|opt| {
            let cut = (prefix.len() + opt.len()).saturating_sub(MAX_LENGTH);
            let mut ids = prefix[cut.min(prefix.len())..].to_vec();
            let start = ids.len();
            ids.extend(opt);
            Scored { ids, start }
        })
        .collect())
}

/// MetaICL puts `"\n\n\n"` before a later input, `"\n\n"` when the input is empty.
fn newlines(input: &str) -> &'static str {
    if input.is_empty() {
        "\n\n"
    } else {
        "\n\n\n"
    }
}

/// `do_predict`: the option with the lowest loss, the first of equal ones.
pub fn predict(losses: &[f32]) -> usize {
    let mut best = 0;
    for (i, l) in losses.iter().enumerate() {
        if *l < losses[best] {
            best = i;
        }
    }
    best
}

/// `main.py`'s score: ROUGE-L F1 × 100 (rounded to 4 places) of the predicted label digits
/// against the gold ones, as `datasets`' rouge metric computes it: rouge_score's
/// `BootstrapAggregator` (1000 resamples with numpy's global RandomState, seeded by `main.py`'s
/// `set_seed`, and nothing else draws from it first), whose `mid` is the median of the
/// resampled means. Each prediction is one token, so its ROUGE-L is 1 when it equals the gold
/// label and 0 otherwise; the result is close to accuracy but not equal to it. The metric
/// resamples rouge1 and rouge2 first: their draws are taken and dropped. Predictions are in
/// the order given (the repository's is its prompt folder's listing order).
pub fn repo_rouge_l(preds: &[usize], golds: &[usize], seed: u32) -> f64 {
    let n = preds.len();
    if n == 0 {
        return 0.0;
    }
    let hits: Vec<bool> = preds.iter().zip(golds).map(|(p, g)| p == g).collect();
    // np.random.choice(n, size=n) with replacement: RandomState.randint(0, n), masked rejection.
    let mut rng = Mt19937::new(seed);
    let mut draw = || rng.interval(n as u32 - 1);
    const SAMPLES: usize = 1000;
    for _ in 0..2 * SAMPLES * n {
        draw();
    }
    let mut means: Vec<f64> = (0..SAMPLES)
        .map(|_| (0..n).filter(|_| hits[draw() as usize]).count() as f64 / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    // np.percentile(…, 50), linear: position 0.5 × (1000 − 1) = 499.5.
    let (lo, hi) = (means[499], means[500]);
    let mid = lo + 0.5 * (hi - lo);
    // Python's round(x, 4): the nearest 4-place decimal of the exact binary value, as `{:.4}`.
    format!("{:.4}", mid * 100.0)
        .parse()
        .expect("a formatted float")
}

/// Accuracy of predictions against gold labels.
pub fn accuracy(preds: &[usize], golds: &[usize]) -> f64 {
    if preds.is_empty() {
        return 0.0;
    }
    let hits = preds.iter().zip(golds).filter(|(p, g)| p == g).count();
    hits as f64 / preds.len() as f64
}

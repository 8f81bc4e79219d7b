//! Running the built `instructor` binary. Apart from `tests/common` because only this crate's
//! tests have `CARGO_BIN_EXE_instructor`; the root package compiles `tests/common` too.

use std::process::{Command, Output};

/// `instructor ARGS…`, run to completion.
pub fn instructor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_instructor"))
        .args(args)
        .output()
        .unwrap()
}

/// What the run printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

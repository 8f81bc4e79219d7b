#!/usr/bin/env bash
# The README's run command: builds the native CLI and shows `instructor embed` on a fixture model,
# then builds the npm package and serves the demo page (scripts/demo.sh; arguments go there).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p instructor-cli
bin=target/release/instructor
out=$(mktemp -d)
echo "== instructor embed (native CPU) on the fixture model tests/fixtures/models/tiny-relu-bin"
"$bin" embed --model tests/fixtures/models/tiny-relu-bin --input tests/fixtures/cases.jsonl --output "$out/embeddings.npy"
python3 -c "import sys; d=open(sys.argv[1],'rb').read(); print('wrote', sys.argv[1], len(d), 'bytes')" "$out/embeddings.npy"
echo "Use a real model: $bin embed --model <folder> --input pairs.jsonl --output out.npy"

echo "== the demo page (www/): search and clustering in the browser"
exec scripts/demo.sh "$@"

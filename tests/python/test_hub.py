"""Hub ids through the crate's downloader, against the project's mock hub, into huggingface_hub's
cache layout."""

import os

import pytest

from conftest import FIXTURES, cases, expected, max_abs
from instructor_embed import INSTRUCTOR

REPO = "fixtures/tiny-relu-bin"
WEIGHTS = f"{REPO}/pytorch_model.bin"


def test_download_into_hf_home_then_offline(hub_env, mock_hub, monkeypatch):
    model = INSTRUCTOR(REPO)
    snapshots = hub_env / "models--fixtures--tiny-relu-bin" / "snapshots"
    (commit,) = os.listdir(snapshots)
    assert model.folder == str(snapshots / commit)
    assert (snapshots / commit / "pytorch_model.bin").is_file()
    assert (hub_env / "models--fixtures--tiny-relu-bin" / "refs" / "main").read_text() == commit
    exp = expected("tiny-relu-bin")["cases"]
    out = model.encode(cases()[:3])
    assert max_abs(out[0], exp[0]["embedding"]) <= 1e-5

    # Offline, with the hub gone quiet: the cache alone, and not one request.
    mock_hub.control("reset", {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = INSTRUCTOR(REPO)
    assert again.folder == model.folder
    assert mock_hub.control("stats")["requests"] == 0
    assert max_abs(again.encode(cases()[:3]), out) == 0.0


def test_huggingface_hub_reads_the_same_cache(hub_env, monkeypatch):
    hf = pytest.importorskip("huggingface_hub")
    model = INSTRUCTOR(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = hf.hf_hub_download(REPO, "pytorch_model.bin", cache_dir=str(hub_env),
                              local_files_only=True)
    assert os.path.realpath(path) == os.path.realpath(os.path.join(model.folder, "pytorch_model.bin"))


def test_cache_folder_and_revision(mock_hub, hub_env, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    model = INSTRUCTOR(REPO, cache_folder=str(elsewhere), revision="main")
    assert model.folder.startswith(str(elsewhere))
    assert not hub_env.exists()
    with pytest.raises(OSError, match="no revision `v9`"):
        INSTRUCTOR(REPO, cache_folder=str(elsewhere), revision="v9")


def test_corrupt_download_raises_and_leaves_nothing_complete(hub_env, mock_hub):
    mock_hub.control("faults", {"corrupt": [WEIGHTS]})
    with pytest.raises(OSError, match="pytorch_model.bin"):
        INSTRUCTOR(REPO)
    repo = hub_env / "models--fixtures--tiny-relu-bin"
    for dirpath, _dirs, files in os.walk(repo):
        for f in files:
            assert f != "pytorch_model.bin", f"{dirpath}/{f} looks complete"
    blobs = repo / "blobs"
    big = [b for b in os.listdir(blobs) if os.path.getsize(blobs / b) > 100_000] if blobs.exists() else []
    assert big == [], f"a weights-sized blob was kept: {big}"
    # Once the hub serves the right bytes, the same call works.
    mock_hub.control("faults", {})
    assert INSTRUCTOR(REPO).encode(cases()[:1]).shape[0] == 1


def test_unknown_repo_and_offline_miss(hub_env, monkeypatch):
    with pytest.raises(OSError, match="fixtures/nope: no such repository"):
        INSTRUCTOR("fixtures/nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the cache"):
        INSTRUCTOR(REPO)


INTERRUPTED_DOWNLOAD = r"""
import signal
import sys
# Python's own handler, whatever this process inherited: a background job of a
# non-interactive shell starts with SIGINT ignored, and Python then leaves it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
from instructor_embed import INSTRUCTOR
try:
    INSTRUCTOR(sys.argv[1])
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


def test_ctrl_c_stops_a_download_and_the_next_call_resumes(hub_env, mock_hub):
    import signal
    import subprocess
    import sys
    import time

    import hashlib

    weights = FIXTURES / "models" / "tiny-relu-bin" / "pytorch_model.bin"
    size = weights.stat().st_size
    # An LFS file's blob is named by its sha256.
    partial = (hub_env / "models--fixtures--tiny-relu-bin" / "blobs" /
               (hashlib.sha256(weights.read_bytes()).hexdigest() + ".incomplete"))
    mock_hub.control("faults", {"delay_ms_per_chunk": 300})
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_DOWNLOAD, REPO],
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial.exists(), "the weights download never started"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=20)
        stopped_in = time.monotonic() - sent
    finally:
        proc.kill()
    assert (rc, proc.stdout.read().strip()) == (3, "interrupted")
    assert stopped_in < 3, f"took {stopped_in:.1f} s to stop"
    have = partial.stat().st_size
    assert 0 < have < size
    assert not partial.with_name(partial.stem).exists(), "no complete-looking blob"
    # The next call resumes from what arrived (a Range request) and ends verified.
    mock_hub.control("reset", {})
    model = INSTRUCTOR(REPO)
    ranges = [entry["range"] for entry in mock_hub.control("stats")["log"] if entry["range"]]
    assert ranges == [f"bytes={have}-"], ranges
    assert max_abs(model.encode(cases()[:1])[0], expected("tiny-relu-bin")["cases"][0]["embedding"]) <= 1e-5

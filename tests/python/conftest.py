"""Shared fixtures for the Python package's tests. They test the installed wheel (see
scripts/test-python.sh), never the source tree: `instructor_embed` must come from site-packages."""

import json
import os
import pathlib
import subprocess
import urllib.request

import numpy as np
import pytest

import instructor_embed

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MODELS = ["tiny-relu-bin", "tiny-gelu-st", "tiny-relu-f16"]

assert "site-packages" in instructor_embed.__file__, (
    f"instructor_embed imported from {instructor_embed.__file__}, not from an installed wheel")


def model_dir(name):
    return str(FIXTURES / "models" / name)


def cases():
    """The fixture inputs as the seed's API takes them: pairs, or plain strings."""
    out = []
    for line in (FIXTURES / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            c = json.loads(line)
            out.append([c["instruction"], c["text"]] if "instruction" in c else c["text"])
    return out


def expected(name):
    """Outputs of the Python reference (transformers' T5EncoderModel + InstructorEmbedding's
    pooling, tests/fixtures/make_fixtures.py)."""
    return json.loads((FIXTURES / "expected" / f"{name}.json").read_text())


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


class MockHub:
    """The project's one mock hub (crates/mock-hub), as a process on 127.0.0.1."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--root", str(FIXTURES / "models"), "--port", "0"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), f"mock hub said {line!r}"
        self.url = line.split()[-1]

    def control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(f"{self.url}/__mock/{path}", data=data, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mock_hub():
    binary = os.environ.get("MOCK_HUB_BIN") or str(ROOT / "target" / "debug" / "mock_hub")
    if not os.path.exists(binary):
        pytest.fail(f"no mock hub binary at {binary}: cargo build -p instructor-mock-hub")
    hub = MockHub(binary)
    yield hub
    hub.stop()


@pytest.fixture
def hub_env(mock_hub, tmp_path, monkeypatch):
    """A fresh HF_HOME and the mock hub as HF_ENDPOINT, as a user's environment would say."""
    mock_hub.control("reset", {})
    monkeypatch.setenv("HF_ENDPOINT", mock_hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hf" / "hub"

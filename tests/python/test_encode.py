"""INSTRUCTOR.encode through the installed wheel against the Python reference's outputs."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import MODELS, cases, expected, max_abs, model_dir
from instructor_embed import INSTRUCTOR

TOL = 1e-5


@pytest.fixture(scope="module", params=MODELS)
def named_model(request):
    return request.param, INSTRUCTOR(model_dir(request.param))


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_embeddings_match_reference(named_model, batch_size):
    name, model = named_model
    exp = expected(name)
    out = model.encode(cases(), batch_size=batch_size)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == (len(exp["cases"]), exp["dim"])
    for i, c in enumerate(exp["cases"]):
        assert max_abs(out[i], c["embedding"]) <= TOL, f"{name} case {i}"


def test_normalize_embeddings(named_model):
    name, model = named_model
    out = model.encode(cases(), normalize_embeddings=True)
    for i, c in enumerate(expected(name)["cases"]):
        assert max_abs(out[i], c["embedding_normalized"]) <= TOL, f"{name} case {i}"
    # Unit length, except where the reference is the zero vector (nothing left after the
    # instruction: case 18).
    zero = [i for i, c in enumerate(expected(name)["cases"]) if not any(c["embedding"])]
    norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(np.delete(norms, zero), 1.0, atol=1e-6)
    assert all(norms[i] == 0 for i in zero)


def test_plain_strings_empty_and_single_inputs(named_model):
    name, model = named_model
    exp = expected(name)["cases"]
    all_cases = cases()
    plain = [i for i, c in enumerate(all_cases) if isinstance(c, str)]
    assert plain, "the fixture has plain-string inputs"
    out = model.encode([all_cases[i] for i in plain])
    for row, i in zip(out, plain):
        assert max_abs(row, exp[i]["embedding"]) <= TOL
    # One string gives one vector, as InstructorEmbedding's encode does.
    one = model.encode(all_cases[plain[0]])
    assert one.shape == (expected(name)["dim"],)
    assert max_abs(one, exp[plain[0]]["embedding"]) <= TOL
    # An empty text (case 8) and a whitespace-only one (case 9) embed as the reference does.
    for i in (8, 9):
        assert all_cases[i][1].strip() == ""
        assert max_abs(model.encode([all_cases[i]])[0], exp[i]["embedding"]) <= TOL
    # No inputs, no rows.
    assert model.encode([]).shape == (0, expected(name)["dim"])
    # Tuples are pairs too.
    assert max_abs(model.encode([tuple(all_cases[0])])[0], exp[0]["embedding"]) <= TOL


def test_over_long_inputs_are_truncated_like_the_reference(named_model):
    name, model = named_model
    exp = expected(name)
    all_cases = cases()
    # Cases 25 and 26 hit the model's 512 tokens.
    assert [len(exp["cases"][i]["input_ids"]) for i in (25, 26)] == [512, 512]
    model.max_seq_length = 16
    try:
        picked = exp["max_seq_length_16"]
        out = model.encode([all_cases[c["case"]] for c in picked])
    finally:
        model.max_seq_length = exp["max_seq_length"]
    for row, c in zip(out, picked):
        assert max_abs(row, c["embedding"]) <= TOL, f"{name} case {c['case']} at 16 tokens"


def test_token_embeddings_are_the_reference_hidden_states(named_model):
    name, model = named_model
    exp = [c for c in expected(name)["cases"] if "token_embeddings" in c]
    out = model.encode(cases()[: len(exp)], output_value="token_embeddings", batch_size=3)
    assert len(out) == len(exp)
    for got, c in zip(out, exp):
        want = np.asarray(c["token_embeddings"], dtype=np.float32)
        assert got.shape == want.shape  # padding cut off, instruction tokens kept
        assert max_abs(got, want) <= TOL


def test_output_value_none_gives_every_feature(named_model):
    name, model = named_model
    exp = expected(name)["cases"]
    rows = model.encode(cases()[:4], output_value=None)
    for row, c in zip(rows, exp):
        assert list(np.asarray(row["input_ids"])) == c["input_ids"]
        assert int(row["context_masks"]) == c["instruction_len"]
        assert np.asarray(row["attention_mask"]).sum() == len(c["input_ids"])
        assert max_abs(row["sentence_embedding"], c["embedding"]) <= TOL
        assert max_abs(row["token_embeddings"], c["token_embeddings"]) <= TOL


def test_list_outputs_without_torch(named_model):
    if _has_torch():
        pytest.skip("torch is installed: lists hold tensors (test_torch_outputs)")
    name, model = named_model
    rows = model.encode(cases()[:3], convert_to_numpy=False)
    assert isinstance(rows, list) and all(isinstance(r, np.ndarray) for r in rows)
    assert max_abs(rows[2], expected(name)["cases"][2]["embedding"]) <= TOL
    with pytest.raises(ImportError, match="convert_to_tensor=True needs torch"):
        model.encode(cases()[:1], convert_to_tensor=True)


def test_torch_outputs(named_model):
    torch = pytest.importorskip("torch")
    name, model = named_model
    t = model.encode(cases()[:3], convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.shape == (3, expected(name)["dim"])
    rows = model.encode(cases()[:3], convert_to_numpy=False)
    assert all(isinstance(r, torch.Tensor) for r in rows)
    assert max_abs(rows[1].numpy(), expected(name)["cases"][1]["embedding"]) <= TOL


def _has_torch():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def test_malformed_inputs_raise_value_error():
    model = INSTRUCTOR(model_dir("tiny-relu-bin"))
    with pytest.raises(ValueError, match=r"input 1: an INSTRUCTOR pair is \[instruction, text\], got 3 items"):
        model.encode([["a", "b"], ["instruction", "text", 0]])
    with pytest.raises(ValueError, match="input 0: the text must be a string, got int"):
        model.encode([["instruction", 5]])
    with pytest.raises(ValueError, match="input 2: expected a string or an"):
        model.encode(["a", "b", None])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        model.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="output_value"):
        model.encode(["a"], output_value="cls")


def test_missing_and_broken_models_raise_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a model folder nor a hub repo id"):
        INSTRUCTOR(str(tmp_path / "no-such-folder"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="modules.json"):
        INSTRUCTOR(str(empty))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("[{")
    with pytest.raises(OSError, match="modules.json"):
        INSTRUCTOR(str(broken))
    with pytest.raises(ValueError, match="device"):
        INSTRUCTOR(model_dir("tiny-relu-bin"), device="tpu")


def test_progress_bar_on_stderr(capfd):
    model = INSTRUCTOR(model_dir("tiny-relu-bin"))
    n = len(cases())
    model.encode(cases(), batch_size=8, show_progress_bar=True)
    err = capfd.readouterr().err
    assert "Batches" in err and f"{n}/{n}" in err
    model.encode(cases(), batch_size=8)
    assert capfd.readouterr().err == ""


def test_encode_releases_the_gil():
    model = INSTRUCTOR(model_dir("tiny-relu-bin"))
    texts = [["Represent the text: ", "word " * 300]] * 100
    ticks, stop = [], threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    start = time.perf_counter()
    model.encode(texts, batch_size=len(texts))  # one batch: no callback in between
    took = time.perf_counter() - start
    stop.set()
    t.join()
    during = [x for x in ticks if start <= x <= start + took]
    gaps = np.diff(during)
    assert took > 0.3, f"the encode took {took:.2f} s, too short to tell"
    assert len(during) > 10 and gaps.max() < took / 3, (
        f"another thread ran {len(during)} times in {took:.2f} s (largest gap {gaps.max():.2f} s)")


INTERRUPT_SCRIPT = r"""
import signal
import sys, time
# Python's own handler, whatever this process inherited: a background job of a
# non-interactive shell starts with SIGINT ignored, and Python then leaves it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
from instructor_embed import INSTRUCTOR
model = INSTRUCTOR(sys.argv[1])
texts = [["Represent the text: ", "word " * 400]] * 4000
print("encoding", flush=True)
start = time.perf_counter()
try:
    model.encode(texts, batch_size=4)
except KeyboardInterrupt:
    print(f"interrupted after {time.perf_counter() - start:.2f}", flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


def test_ctrl_c_interrupts_a_long_encode():
    import signal
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT, model_dir("tiny-relu-bin")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "encoding"
        time.sleep(2.5)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=20)
        stopped_in = time.perf_counter() - sent
        out = proc.stdout.read()
    finally:
        proc.kill()
    assert rc == 3 and out.startswith("interrupted"), (rc, out)
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop"


def test_wgpu_device_matches_reference():
    try:
        model = INSTRUCTOR(model_dir("tiny-relu-bin"), device="wgpu")
    except RuntimeError as e:
        pytest.skip(f"no wgpu adapter here: {e}")
    assert model.backend.startswith("wgpu")
    out = model.encode(cases())
    for i, c in enumerate(expected("tiny-relu-bin")["cases"]):
        assert max_abs(out[i], c["embedding"]) <= TOL, f"case {i}"
    # encode(device=...) moves the model, as InstructorEmbedding's does.
    back = model.encode(cases()[:2], device="cpu")
    assert model.device == "cpu" and model.backend == "cpu"
    assert max_abs(back[0], expected("tiny-relu-bin")["cases"][0]["embedding"]) <= TOL


@pytest.mark.parametrize("name", MODELS)
def test_int8_stays_within_cosine_bound(name):
    model = INSTRUCTOR(model_dir(name), dtype="int8")
    assert model.dtype == "int8"
    out = model.encode(cases(), normalize_embeddings=True)
    worst = 1.0
    for i, c in enumerate(expected(name)["cases"]):
        want = np.asarray(c["embedding_normalized"], dtype=np.float64)
        if not want.any():
            assert not out[i].any(), f"{name} case {i}"
            continue
        worst = min(worst, float(out[i] @ want / np.linalg.norm(out[i]) / np.linalg.norm(want)))
    assert 0.999 <= worst < 1 - 1e-7, f"{name}: min cosine {worst}"
    with pytest.raises(ValueError, match="expected f32, f16, bf16 or int8"):
        INSTRUCTOR(model_dir(name), dtype="int4")

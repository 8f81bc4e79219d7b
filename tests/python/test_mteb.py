"""The mteb 2.x adapter against the real mteb package. mteb pulls torch, so CI skips this file; run it
in a Python that has both (and the wheel installed), from tests/python:

    pip install mteb target/wheels/instructor_embed-*.whl pytest
    MOCK_HUB_BIN=target/debug/mock_hub python -m pytest -q tests/python/test_mteb.py
"""

import numpy as np
import pytest

from conftest import model_dir

mteb = pytest.importorskip("mteb")
from mteb.mocks.mock_tasks.retrieval import MockRetrievalTask  # noqa: E402
from mteb.mocks.mock_tasks.sts import MockSTSTask  # noqa: E402
from mteb.types import PromptType  # noqa: E402

from instructor_embed import _native  # noqa: E402
from instructor_embed.mteb import InstructorModel  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return InstructorModel(model_dir("tiny-relu-bin"), instructions="hkunlp/instructor-large")


def test_instructions_are_the_repositorys_per_task_ones(model):
    scifact = mteb.get_task("SciFact").metadata
    assert model.instruction(scifact, PromptType.query) == \
        "Represent a Scientific query for retrieving a supporting passage; "
    assert model.instruction(scifact, PromptType.document) == \
        "represent the Scientific passage for retrieval; "
    assert model.instruction(mteb.get_task("STS12").metadata) == "Represent the statement: "
    # The model table is inferred from the hub name; a folder of another name has the defaults.
    assert _native.model_table("hkunlp/instructor-xl") == "hkunlp/instructor-xl"
    assert InstructorModel(model_dir("tiny-relu-bin")).instructions is None


def test_evaluate_runs_mtebs_own_scoring_on_our_embeddings(model, tmp_path):
    calls = []
    encode = model.model.encode

    def spy(pairs, **kw):
        calls.append({p[0] for p in pairs})
        return encode(pairs, **kw)

    model.model.encode = spy
    try:
        results = mteb.evaluate(model, tasks=[MockSTSTask(), MockRetrievalTask()], cache=None,
                                show_progress_bar=False)
    finally:
        model.model.encode = encode
    by_task = {r.task_name: r for r in results.task_results}

    # Retrieval: queries and documents each with their own instruction (the type defaults here).
    query, corpus = _native.task_instructions("MockRetrievalTask", "Retrieval", None)
    assert query != corpus and {query} in calls and {corpus} in calls

    # STS: mteb's cosine Spearman equals the one computed here from the same embeddings.
    from scipy.stats import spearmanr
    task = MockSTSTask()
    task.load_data()
    test = task.dataset["test"]
    (instr, _) = _native.task_instructions("MockSTSTask", "STS", None)
    a = encode([[instr, t] for t in test["sentence1"]])
    b = encode([[instr, t] for t in test["sentence2"]])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    want = spearmanr(test["score"], cos).statistic
    got = by_task["MockSTSTask"].get_score()
    assert abs(got - want) < 1e-6, (got, want)

"""The LangChain adapter and the seed's scikit-learn example, as a user runs them."""

import subprocess
import sys

import pytest

from conftest import max_abs, model_dir
from instructor_embed import INSTRUCTOR
from instructor_embed.langchain import (DEFAULT_EMBED_INSTRUCTION, DEFAULT_QUERY_INSTRUCTION,
                                        InstructorEmbeddings)

DOCS = ["The capital of France is Paris.", "Aspirin reduces fever.", "Paris has the Louvre."]


def test_langchain_embeddings_use_the_instructions():
    emb = InstructorEmbeddings(model_name=model_dir("tiny-relu-bin"),
                               encode_kwargs={"batch_size": 2, "normalize_embeddings": True})
    model = INSTRUCTOR(model_dir("tiny-relu-bin"))
    docs = emb.embed_documents(DOCS)
    assert isinstance(docs, list) and isinstance(docs[0], list) and isinstance(docs[0][0], float)
    want = model.encode([[DEFAULT_EMBED_INSTRUCTION, d] for d in DOCS], normalize_embeddings=True)
    assert max_abs(docs, want) <= 1e-6
    q = emb.embed_query("what is the capital of France?")
    want_q = model.encode([[DEFAULT_QUERY_INSTRUCTION, "what is the capital of France?"]],
                          normalize_embeddings=True)[0]
    assert max_abs(q, want_q) <= 1e-6
    # The instruction is part of the embedding: another one gives another vector.
    other = InstructorEmbeddings(model_name=model_dir("tiny-relu-bin"), query_instruction="Represent: ")
    assert max_abs(other.embed_query("what is the capital of France?"), q) > 1e-3


def test_langchain_subclass_when_installed():
    core = pytest.importorskip("langchain_core.embeddings")
    emb = InstructorEmbeddings(model_name=model_dir("tiny-relu-bin"))
    assert isinstance(emb, core.Embeddings)
    # LangChain's async API comes from the base class.
    import asyncio
    got = asyncio.run(emb.aembed_documents(DOCS[:1]))
    assert max_abs(got, emb.embed_documents(DOCS[:1])) == 0.0


def test_langchain_adapter_imports_without_langchain():
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "from instructor_embed.langchain import InstructorEmbeddings\n"
        f"e = InstructorEmbeddings(model_name={model_dir('tiny-relu-bin')!r})\n"
        "print(type(e).__mro__[1].__name__, len(e.embed_query('hi')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["object", "24"]


SEED_CLUSTERING = """
from instructor_embed import INSTRUCTOR
model = INSTRUCTOR(MODEL)
import sklearn.cluster
sentences = [['Represent the Medicine sentence for clustering: ','Dynamical Scalar Degree of Freedom in Horava-Lifshitz Gravity'],
             ['Represent the Medicine sentence for clustering: ','Comparison of Atmospheric Neutrino Flux Calculations at Low Energies'],
             ['Represent the Medicine sentence for clustering: ','Fermion Bags in the Massive Gross-Neveu Model'],
             ['Represent the Medicine sentence for clustering: ',"QCD corrections to Associated t-tbar-H production at the Tevatron"],
             ['Represent the Medicine sentence for clustering: ','A New Analysis of the R Measurements: Resonance Parameters of the Higher,  Vector States of Charmonium']]
embeddings = model.encode(sentences)
clustering_model = sklearn.cluster.MiniBatchKMeans(n_clusters=2)
clustering_model.fit(embeddings)
cluster_assignment = clustering_model.labels_
print(cluster_assignment)
"""


def test_seed_clustering_example_runs_as_written():
    """The seed README's clustering example, with only the import (and the model) changed."""
    pytest.importorskip("sklearn.cluster")
    code = SEED_CLUSTERING.replace("MODEL", repr(model_dir("tiny-gelu-st")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    labels = out.stdout.strip().strip("[]").split()
    assert len(labels) == 5 and set(labels) <= {"0", "1"}, out.stdout

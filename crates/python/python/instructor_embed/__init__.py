"""INSTRUCTOR text embeddings (hkunlp/instructor-base, -large, -xl) on a Rust engine, without torch.

A drop-in for InstructorEmbedding 1.0.1 (the seed's package)::

    from instructor_embed import INSTRUCTOR
    model = INSTRUCTOR("hkunlp/instructor-large")
    embeddings = model.encode([["Represent the Science title: ", "3D ActionSLAM ..."]])

Adapters: ``instructor_embed.mteb`` (mteb 2.x, with INSTRUCTOR's per-task instructions) and
``instructor_embed.langchain`` (LangChain's ``Embeddings``).
"""

from ._native import __version__
from ._model import INSTRUCTOR

__all__ = ["INSTRUCTOR", "__version__"]

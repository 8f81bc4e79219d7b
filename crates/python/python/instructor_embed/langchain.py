"""LangChain embeddings on INSTRUCTOR, with the arguments of LangChain's
``HuggingFaceInstructEmbeddings`` (which breaks with current sentence-transformers)::

    from instructor_embed.langchain import InstructorEmbeddings
    emb = InstructorEmbeddings(model_name="hkunlp/instructor-large")
    vectors = emb.embed_documents(["..."]); query = emb.embed_query("...")

Importable without LangChain; when ``langchain_core`` is installed the class is a subclass of its
``Embeddings``, so vector stores accept it.
"""

from ._model import INSTRUCTOR

try:
    from langchain_core.embeddings import Embeddings as _Base
except ImportError:
    _Base = object

DEFAULT_INSTRUCT_MODEL = "hkunlp/instructor-large"
DEFAULT_EMBED_INSTRUCTION = "Represent the document for retrieval: "
DEFAULT_QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "


class InstructorEmbeddings(_Base):
    """``embed_documents`` embeds each text with ``embed_instruction``, ``embed_query`` with
    ``query_instruction``. ``model_kwargs`` go to ``INSTRUCTOR(...)`` (``device``, ``revision``,
    ...), ``encode_kwargs`` to ``INSTRUCTOR.encode`` (``batch_size``, ``normalize_embeddings``)."""

    def __init__(self, model_name=DEFAULT_INSTRUCT_MODEL, cache_folder=None, model_kwargs=None,
                 encode_kwargs=None, embed_instruction=DEFAULT_EMBED_INSTRUCTION,
                 query_instruction=DEFAULT_QUERY_INSTRUCTION, show_progress=False):
        self.model_name = model_name
        self.cache_folder = cache_folder
        self.model_kwargs = dict(model_kwargs or {})
        self.encode_kwargs = dict(encode_kwargs or {})
        self.embed_instruction = embed_instruction
        self.query_instruction = query_instruction
        self.show_progress = show_progress
        self.client = INSTRUCTOR(model_name, cache_folder=cache_folder, **self.model_kwargs)

    def _encode(self, pairs):
        kwargs = {"show_progress_bar": self.show_progress, **self.encode_kwargs}
        return self.client.encode(pairs, **kwargs)

    def embed_documents(self, texts):
        return self._encode([[self.embed_instruction, t] for t in texts]).tolist()

    def embed_query(self, text):
        return self._encode([[self.query_instruction, text]])[0].tolist()

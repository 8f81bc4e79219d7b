"""INSTRUCTOR for mteb 2.x, embedding each task's texts with the INSTRUCTOR repository's own
per-task instructions (queries and documents apart, by ``prompt_type``)::

    import mteb
    from instructor_embed.mteb import InstructorModel
    model = InstructorModel("hkunlp/instructor-large")
    results = mteb.evaluate(model, tasks=mteb.get_tasks(tasks=["SciFact", "STS12"]))

The instruction table is the one ``instructor eval`` ships: the model's own for
``hkunlp/instructor-{base,large,xl}`` (inferred from the name, or ``instructions="large"``),
otherwise INSTRUCTOR's per-type defaults (``instructions=None``).
"""

from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType

from . import _native
from ._model import INSTRUCTOR

# mteb task types INSTRUCTOR was not evaluated on, embedded like the type they extend.
_SIMILAR_TYPES = {
    "MultilabelClassification": "Classification",
    "InstructionRetrieval": "Retrieval",
    "InstructionReranking": "Reranking",
    "BitextMining": "STS",
}


class InstructorModel(AbsEncoder):
    def __init__(self, model_name="hkunlp/instructor-large", revision=None, *, device=None,
                 instructions="infer", batch_size=32, **kwargs):
        self.model = INSTRUCTOR(model_name, device=device, revision=revision, **kwargs)
        self.instructions = _native.model_table(model_name) if instructions == "infer" else instructions
        self.batch_size = batch_size
        self.mteb_model_meta = ModelMeta(
            loader=InstructorModel,
            name=model_name if "/" in model_name else f"local/{model_name.rstrip('/').split('/')[-1]}",
            revision=revision,
            release_date=None,
            languages=["eng-Latn"],
            n_parameters=None,
            memory_usage_mb=None,
            max_tokens=self.model.max_seq_length,
            embed_dim=self.model.get_sentence_embedding_dimension(),
            license=None,
            open_weights=True,
            public_training_code=None,
            public_training_data=None,
            framework=[],
            similarity_fn_name=ScoringFunction.COSINE,
            use_instructions=True,
            training_datasets=None,
        )

    def instruction(self, task_metadata, prompt_type=None):
        """The instruction this model embeds ``task_metadata``'s texts with, for ``prompt_type``."""
        kind = _SIMILAR_TYPES.get(task_metadata.type, task_metadata.type)
        query, corpus = _native.task_instructions(task_metadata.name, kind, self.instructions)
        return corpus if prompt_type == PromptType.document else query

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
        instruction = self.instruction(task_metadata, prompt_type)
        texts = [text for batch in inputs for text in batch["text"]]
        return self.model.encode([[instruction, t] for t in texts],
                                 batch_size=kwargs.get("batch_size", self.batch_size),
                                 show_progress_bar=kwargs.get("show_progress_bar", False))

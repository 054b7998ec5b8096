"""The settings of every trainable model, in one place: each default is written once, here.

The models (`trainer.models.*`) build from these dataclasses and the command line derives its
options from them (`attn-export train --help` shows these defaults), so a default cannot drift
between the library and the CLI. This module imports neither Keras nor TensorFlow, so the CLI can
read it before (or without) importing them. The attention kinds and translator styles are listed
here once, too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

KINDS = ("dot", "scaled_dot", "general", "concat", "location")  # classifier attention score functions
STYLES = ("luong", "bahdanau", "none")  # translator attention styles (none: the no-attention baseline)
TOKENIZER_MODES = ("sentencepiece", "word")  # a translator's tokenizers (runtime.tokenizer.MODES)
SCORES = ("dot", "general", "concat")  # score functions a Luong translator can use (Bahdanau: concat)


class _Config:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ClassifierConfig(_Config):
    vocab_size: int = 10_000
    max_len: int = 500
    embedding_dim: int = 128
    lstm_units: int = 64
    lstm_layers: int = 2
    attention: str = "concat"
    attention_units: int = 64
    dense_units: int = 20
    dropout: float = 0.5
    embedding_dropout: float = 0.0  # SpatialDropout1D on the embeddings (whole channels); 0 = none
    learning_rate: float = 1e-3
    batch_size: int = 256
    epochs: int = 3
    seed: int = 0
    members: int = 1  # > 1: an ensemble of this many networks, outputs averaged
    pair_loss_weight: float = 0.0  # > 0: + this × a pairwise term on counterfactual pairs (needs pair groups)


@dataclass
class Seq2SeqConfig(_Config):
    source_vocab: int = 8_000  # an upper bound for sentencepiece (small data gets fewer pieces)
    target_vocab: int = 4_000
    tokenizer: str = "sentencepiece"  # both sides: sentencepiece (subwords, no <oov> on the target) or word
    lowercase: bool = False  # cased by default: output keeps names' capitals
    max_source_len: int = 40
    max_target_len: int = 40
    embedding_dim: int = 128
    units: int = 128  # per encoder direction; the decoder has 2 x units
    style: str = "luong"
    score: str = "general"
    dropout: float = 0.2  # on source embeddings, encoder states and the decoder's output features (training only)
    learning_rate: float = 2e-3
    batch_size: int = 128
    epochs: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"unknown attention style {self.style!r}; choose one of {', '.join(STYLES)}")
        if self.style == "bahdanau":
            self.score = "concat"
        if self.tokenizer not in TOKENIZER_MODES:
            raise ValueError(f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(TOKENIZER_MODES)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

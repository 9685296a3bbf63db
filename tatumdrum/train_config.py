"""`TrainConfig`: every setting of a training run, with its default; torch-free, so that the command line
derives `train`'s options from it without loading torch."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Drum-to-band level (dB) of the training remixes of v2 data (dataset.source_mel).
REMIX_DRUM_DB = (-14.0, 8.0)

# The paper's tuned pairs (section IV-D); without a language model the loss is unweighted.
PAPER_GAMMA = {"none": 1.0, "bigram": 0.46, "gru": 0.61}
PAPER_ALPHA = {"none": 0.0, "bigram": 0.068, "gru": 0.055}


@dataclass
class TrainConfig:
    data: str
    out: str
    kind: str = "tatum"  # "tatum" (the proposed CRNN) or "frame" (the baseline)
    lm: str = "none"
    lm_path: str | None = None
    gamma: float | None = None
    alpha: float | None = None
    beta: float = 8.0
    tau: float = 0.2
    gumbel_input: str = "logit"
    epochs: int = 10
    steps_per_epoch: int | None = None
    batch_size: int = 8
    crop_tatums: int = 64
    crop_frames: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    threshold: float = 0.2
    seed: int = 0
    max_valid: int | None = 30
    channels: tuple[int, int] = (12, 24)
    gru_hidden: int = 98
    # None: ("drums", "mix"), plus "remix" where the pieces carry a band stem (v2 builds) and
    # "separated" where they carry the separator's estimate (`build-dataset --separated`).
    sources: tuple[str, ...] | None = None
    # Weight of the velocity loss (v2 pieces carry velocities); 0 trains no velocity head.
    velocity_weight: float = 0.5
    gru_layers: int = 3
    # Cosine decay of the learning rate to `lr_floor` * lr over the epochs; off keeps lr constant (v1).
    lr_decay: bool = False
    lr_floor: float = 0.05
    # Share of crops with no drums and an empty score (dataset.negative_crop); 0 in v1 and v2.0.
    negatives: float = 0.0
    # A model file whose weights start a fresh run (fine-tuning, or adding a class); see `init_from`.
    init: str | None = None
    # Share of crops drawn class first (dataset.make_batch), for rare classes; 0 before v2.1.
    balance: float = 0.0
    # Train on these classes (abbreviations), folding the data's others into them; None: the data's own.
    classes: tuple[str, ...] | None = None
    # Eq. 4's positive weight for some classes (abbreviation -> weight), others keep `gamma`; for rare
    # classes whose strokes a plain loss learns to ignore (the side stick). None before v2.1.
    class_gamma: dict[str, float] | None = None
    # Drum-to-band level (dB) of the "remix" crops; real raw sums put the drums lower than renders do.
    remix_db: tuple[float, float] = REMIX_DRUM_DB
    # Share of "remix" crops whose band gets an EQ of its own (dataset.source_mel); 0 before v2.2.
    band_eq: float = 0.0
    # Write every epoch to `out`, so it ends as the last one: the recipes of v2.1 and v2.2 take a
    # fixed epoch, because the 30-piece check at delta 0.2 ranks close epochs by noise.
    keep_last: bool = False
    # Where the steps run: "cpu", or "cuda" (or "cuda:N"); crops are made on the CPU either way.
    device: str = "cpu"
    # Processes that make the training crops beside the network (crop_pool.py); 0 makes them between
    # steps from one generator, as every run before v3 did (its batches differ from a pool's).
    crop_workers: int = 0
    # The network's forward pass under bfloat16 autocast (weights, optimiser and losses stay float32):
    # 2.2x faster steps at (32, 64) on this AVX-512 CPU (bench/capacity.py --bf16). Off before v3.
    bf16: bool = False
    extra: dict = field(default_factory=dict)

    def resolved(self) -> "TrainConfig":
        cfg = TrainConfig(**asdict(self))
        if cfg.gamma is None:
            cfg.gamma = PAPER_GAMMA[cfg.lm]
        if cfg.alpha is None:
            cfg.alpha = PAPER_ALPHA[cfg.lm]
        return cfg



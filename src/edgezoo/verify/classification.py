"""Classification parity: top-1 agreement and top-5 overlap, comparing like with like.

An original may end in softmax probabilities or an argmax while its TIDL-ready conversion ends at the logits. Ranks
are unchanged by softmax, so top-k compares directly; value comparisons put the logits through softmax first. Class
indices pass through each side's label offset (1001-class ImageNet models have background at 0: label = index - 1),
so a 1000-class conversion of a 1001-class original still compares label for label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edgezoo.core.errors import EdgezooError
from edgezoo.verify.tensors import looks_like_probabilities, softmax


class ScoreKind(str, Enum):
    LOGITS = "logits"
    PROBABILITIES = "probabilities"
    ARGMAX = "argmax"


@dataclass
class ClassScores:
    """One side's classification output over all verification inputs."""

    name: str
    kind: ScoreKind
    values: np.ndarray  # [images, classes] scores, or [images] indices for ARGMAX
    offset: int = 0  # index + offset = dataset label

    @property
    def num_classes(self) -> int | None:
        return None if self.kind is ScoreKind.ARGMAX else int(self.values.shape[-1])

    def top(self, k: int) -> np.ndarray:
        """[images, k] dataset labels, best first."""
        if self.kind is ScoreKind.ARGMAX:
            return self.values.reshape(-1, 1).astype(np.int64) + self.offset
        order = np.argsort(-self.values, axis=-1, kind="stable")[:, :k]
        return order + self.offset


def scores(name: str, values: np.ndarray, role: str = "") -> ClassScores | None:
    """Classify an output as logits / probabilities / argmax, or None when it is none of them.

    `role` (from a card: "logits", "probabilities", "argmax") wins over the guess from the values.
    """
    v = np.asarray(values)
    if v.ndim == 0:
        return None
    one_per_row = v.size == v.shape[0]
    if role == ScoreKind.ARGMAX.value or (v.dtype.kind in "iu" and one_per_row):
        return ClassScores(name, ScoreKind.ARGMAX, v.reshape(v.shape[0]).astype(np.int64)) if one_per_row else None
    squeezed = v.reshape(v.shape[0], -1) if v.ndim >= 2 else None
    if squeezed is None or v.dtype.kind != "f" or squeezed.shape[1] < 2:
        return None
    if [d for d in v.shape[1:] if d != 1] != [squeezed.shape[1]]:
        return None  # a feature map, not class scores
    if role == ScoreKind.PROBABILITIES.value or (role != ScoreKind.LOGITS.value and looks_like_probabilities(squeezed)):
        return ClassScores(name, ScoreKind.PROBABILITIES, squeezed)
    return ClassScores(name, ScoreKind.LOGITS, squeezed)


def assign_offsets(original: ClassScores, converted: ClassScores, num_classes: int | None = None,
                   offset: int | None = None) -> None:
    """Set each side's label offset: the card's (`num_classes`, `offset`) for a side with that many classes; a side
    with fewer classes has dropped the background class(es). Without a card, 1001 vs 1000 means background at 0."""
    counts = [s.num_classes for s in (original, converted)]
    known = [c for c in counts if c is not None]
    if not known:
        original.offset = converted.offset = offset or 0
        return
    if num_classes is None:
        num_classes = max(known)
        offset = -(num_classes - min(known)) if len(known) == 2 else 0
    offset = offset or 0
    for side in (original, converted):
        c = side.num_classes if side.num_classes is not None else num_classes
        if c > num_classes:
            raise EdgezooError(f"{side.name}: {c} classes, more than the {num_classes} expected")
        side.offset = offset + (num_classes - c)


@dataclass
class TopKResult:
    images: int
    top1_agreement: float
    top5_overlap: float | None  # None when a side only has an argmax
    distinct_top1: int  # distinct original top-1 labels: 1 means the inputs prove little
    disagreements: list[dict] = field(default_factory=list)
    compared: str = ""  # what was compared with what, in words


def compare_topk(original: ClassScores, converted: ClassScores, image_names: list[str] | None = None,
                 k: int = 5) -> TopKResult:
    n = original.values.shape[0]
    if converted.values.shape[0] != n:
        raise EdgezooError(f"top-k: {original.name} has {n} rows, {converted.name} {converted.values.shape[0]}")
    names = image_names or [str(i) for i in range(n)]
    o1, c1 = original.top(1)[:, 0], converted.top(1)[:, 0]
    agree = o1 == c1
    topk = None
    if original.kind is not ScoreKind.ARGMAX and converted.kind is not ScoreKind.ARGMAX:
        kk = min(k, original.values.shape[1], converted.values.shape[1])
        ok, ck = original.top(kk), converted.top(kk)
        topk = float(np.mean([len(set(a) & set(b)) / kk for a, b in zip(ok.tolist(), ck.tolist())]))
    bad = [{"input": names[i], "original": int(o1[i]), "converted": int(c1[i])} for i in np.flatnonzero(~agree)]
    return TopKResult(n, float(agree.mean()) if n else float("nan"), topk, len(set(o1.tolist())), bad,
                      f"{original.name} ({original.kind.value}, label = index{original.offset:+d}) vs "
                      f"{converted.name} ({converted.kind.value}, label = index{converted.offset:+d})")


def like_with_like(original: ClassScores, converted: ClassScores) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Arrays of the same kind for a value comparison (None when a side is only an argmax).

    Probabilities vs logits: the logits go through softmax. Different class counts: the extra (background) columns
    are dropped after the softmax, so each side keeps its own normalisation.
    """
    if ScoreKind.ARGMAX in (original.kind, converted.kind):
        return None
    a, b, notes = original.values.astype(np.float64), converted.values.astype(np.float64), []
    if original.kind is not converted.kind:
        if original.kind is ScoreKind.LOGITS:
            a = softmax(a)
            notes.append(f"original logits {original.name} through softmax")
        else:
            b = softmax(b)
            notes.append(f"converted logits {converted.name} through softmax")
    drop_a, drop_b = original.offset - min(original.offset, converted.offset), \
        converted.offset - min(original.offset, converted.offset)
    # A larger offset means fewer columns: the side with more columns drops its leading (background) ones.
    if converted.offset > original.offset:
        a = a[:, drop_b:]
        notes.append(f"original's first {drop_b} class column(s) dropped")
    elif original.offset > converted.offset:
        b = b[:, drop_a:]
        notes.append(f"converted's first {drop_a} class column(s) dropped")
    return a, b, "; ".join(notes)

"""How a detector's heads encode boxes and scores, as closed sets shared by the graph readers (ssd/), TIDL's
meta-architecture (tidl/meta_arch/, whose prototxt spells them with these numbers) and the reference executors."""

from __future__ import annotations

from enum import IntEnum


class CodeType(IntEnum):
    """Box coding (the schema default is CORNER, so always set it)."""

    CORNER = 1
    CENTER_SIZE = 2  # regression order (cx, cy, w, h)
    CORNER_SIZE = 3
    CENTER_SIZE_EXP = 4
    CENTER_SIZE_YXHW = 5  # regression order (cy, cx, h, w) as in the TF OD API
    YOLO_V5 = 6
    YOLO_X = 7
    CODE_TYPE_3DOD = 8


class ScoreConverter(IntEnum):
    IDENTITY = 0
    SIGMOID = 1
    SOFTMAX = 2


class DataLayout(IntEnum):
    SEPARATED = 0  # channel = anchor * 4 + coord (usual Caffe / TF heads)
    INTERLEAVED = 1  # channel = coord * anchors + anchor (MLPerf ResNet34-SSD)

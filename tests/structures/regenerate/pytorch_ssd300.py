"""A PyTorch SSD300 written the way NVIDIA DeepLearningExamples' SSD300 and MLPerf's SSD are written.

What makes the structure (and what a converter has to read from the exported graph):
- a torchvision ResNet trunk up to layer3 with layer3's first block at stride 1 (38x38 at 300x300), five extra blocks
  (1x1 conv + BN + ReLU, 3x3 conv + BN + ReLU; stride 2 with padding for the first three, valid for the last two):
  feature maps 38, 19, 10, 5, 3, 1;
- heads: one 3x3 conv per level for boxes (4 x defaults) and classes (classes x defaults), `view(N, 4, -1)` /
  `view(N, C, -1)` and `cat(2)`: coordinate-major channels, default-box-major order inside a level;
- default boxes in (cx, cy, w, h), size-major inside a level, clamped to [0, 1] (`dboxes_xywh`, [1, N, 4]);
- decoding as `scale_back_batch`: centre offsets x 0.1 x prior size, sizes exp(x 0.2) x prior size, corners, softmax
  over classes (column 0 = background);
- post-processing either with ONE ONNX NonMaxSuppression (an autograd.Function whose symbolic emits the op) followed
  by `k = min(200, n); scores.topk(k)`, or with torchvision.ops.batched_nms (exported inside an If) and `[:200]`.

Runs only in the generator environment (torch + torchvision); see README.md beside this file.
"""

from __future__ import annotations

import itertools
import math

import torch
import torchvision
from torch import nn

FIG_SIZE = 300
FEATURE_SIZES = (38, 19, 10, 5, 3, 1)
STEPS = (8, 16, 32, 64, 100, 300)
SCALES = (21, 45, 99, 153, 207, 261, 315)
ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
DEFAULTS_PER_LOCATION = (4, 6, 6, 6, 4, 4)
SCALE_XY = 0.1
SCALE_WH = 0.2


def default_boxes_xywh() -> torch.Tensor:
    """[N, 4] default boxes (cx, cy, w, h), normalised, clamped to [0, 1]: 8732 at 300x300."""
    boxes = []
    for level, size in enumerate(FEATURE_SIZES):
        fk = FIG_SIZE / STEPS[level]
        s1 = SCALES[level] / FIG_SIZE
        s2 = SCALES[level + 1] / FIG_SIZE
        s3 = math.sqrt(s1 * s2)
        shapes = [(s1, s1), (s3, s3)]
        for ratio in ASPECT_RATIOS[level]:
            w, h = s1 * math.sqrt(ratio), s1 / math.sqrt(ratio)
            shapes += [(w, h), (h, w)]
        for w, h in shapes:
            for i, j in itertools.product(range(size), repeat=2):
                boxes.append(((j + 0.5) / fk, (i + 0.5) / fk, w, h))
    return torch.tensor(boxes, dtype=torch.float32).clamp(0, 1)


class Trunk(nn.Module):
    def __init__(self, backbone: str) -> None:
        super().__init__()
        net = getattr(torchvision.models, backbone)(weights=None)
        self.out_channels = [256, 512, 512, 256, 256, 256] if backbone in ("resnet18", "resnet34") else \
            [1024, 512, 512, 256, 256, 256]
        self.feature_extractor = nn.Sequential(*list(net.children())[:7])
        first = self.feature_extractor[-1][0]
        first.conv1.stride = (1, 1)
        if hasattr(first, "conv3"):  # bottleneck blocks stride in conv2
            first.conv2.stride = (1, 1)
        first.downsample[0].stride = (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_extractor(x)


class SSD300(nn.Module):
    """forward(image [N,3,300,300]) -> (locs [N,4,8732], confs [N,C,8732])."""

    def __init__(self, backbone: str = "resnet18", label_num: int = 81) -> None:
        super().__init__()
        self.trunk = Trunk(backbone)
        self.label_num = label_num
        chans = self.trunk.out_channels
        extra = []
        for i, (cin, cout, mid) in enumerate(zip(chans[:-1], chans[1:], (256, 256, 128, 128, 128))):
            second = (nn.Conv2d(mid, cout, 3, padding=1, stride=2, bias=False) if i < 3
                      else nn.Conv2d(mid, cout, 3, bias=False))
            extra.append(nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                                       second, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)))
        self.additional_blocks = nn.ModuleList(extra)
        self.loc = nn.ModuleList(nn.Conv2d(c, n * 4, 3, padding=1) for n, c in zip(DEFAULTS_PER_LOCATION, chans))
        self.conf = nn.ModuleList(nn.Conv2d(c, n * label_num, 3, padding=1)
                                  for n, c in zip(DEFAULTS_PER_LOCATION, chans))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(x)
        sources = [x]
        for block in self.additional_blocks:
            x = block(x)
            sources.append(x)
        locs, confs = [], []
        for s, loc, conf in zip(sources, self.loc, self.conf):
            locs.append(loc(s).view(s.size(0), 4, -1))
            confs.append(conf(s).view(s.size(0), self.label_num, -1))
        return torch.cat(locs, 2).contiguous(), torch.cat(confs, 2).contiguous()


class _OnnxNms(torch.autograd.Function):
    """ONNX NonMaxSuppression as one node; forward gives the same [n, 3] (batch, class, box) triplets in torch."""

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class, iou, score_threshold):  # noqa: ANN001, ANN205
        out = []
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                keep = torch.nonzero(s > score_threshold).flatten()
                picked = torchvision.ops.nms(boxes[b, keep], s[keep], float(iou))[: int(max_per_class)]
                for i in keep[picked].tolist():
                    out.append((b, c, i))
        return torch.tensor(out, dtype=torch.int64).reshape(-1, 3)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou, score_threshold):  # noqa: ANN001, ANN205
        return g.op("NonMaxSuppression", boxes, scores, max_per_class, iou, score_threshold, center_point_box_i=0)


class Detector(nn.Module):
    """SSD300 + decoding + NMS: forward(image) -> (bboxes [1,n,4] ltrb, labels [1,n] int64, scores [1,n])."""

    def __init__(self, ssd: SSD300, nms: str, *, score_threshold: float = 0.05, iou: float = 0.5,
                 max_output: int = 200) -> None:
        super().__init__()
        self.ssd = ssd
        self.nms = nms
        self.register_buffer("dboxes_xywh", default_boxes_xywh().unsqueeze(0))
        self.score_threshold = score_threshold
        self.iou = iou
        self.max_output = max_output

    def scale_back_batch(self, locs: torch.Tensor, confs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        locs = locs.permute(0, 2, 1)
        confs = confs.permute(0, 2, 1)
        xy = locs[:, :, :2] * SCALE_XY * self.dboxes_xywh[:, :, 2:] + self.dboxes_xywh[:, :, :2]
        wh = torch.exp(locs[:, :, 2:] * SCALE_WH) * self.dboxes_xywh[:, :, 2:]
        ltrb = torch.cat([xy - 0.5 * wh, xy + 0.5 * wh], dim=-1)
        return ltrb, torch.softmax(confs, dim=-1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        locs, confs = self.ssd(image)
        boxes, probs = self.scale_back_batch(locs, confs)
        if self.nms == "onnx":
            return self._onnx_nms(boxes, probs)
        return self._batched_nms(boxes[0], probs[0])

    def _onnx_nms(self, boxes: torch.Tensor, probs: torch.Tensor):  # noqa: ANN202
        scores = probs[:, :, 1:].permute(0, 2, 1).contiguous()  # [1, C-1, N], background dropped
        selected = _OnnxNms.apply(boxes, scores, torch.tensor([self.max_output]), torch.tensor([self.iou]),
                                  torch.tensor([self.score_threshold]))
        classes, index = selected[:, 1], selected[:, 2]
        picked = scores[0, classes, index]
        k = torch.minimum(torch.tensor(self.max_output), torch.tensor(picked.shape[0]))
        top, order = picked.topk(k if torch.jit.is_tracing() else int(k))
        return (boxes[0, index[order]].unsqueeze(0), (classes[order] + 1).unsqueeze(0), top.unsqueeze(0))

    def _batched_nms(self, boxes: torch.Tensor, probs: torch.Tensor):  # noqa: ANN202
        classes = probs.shape[1] - 1
        scores = probs[:, 1:].reshape(-1)
        labels = torch.arange(1, classes + 1).repeat(boxes.shape[0])
        boxes = boxes.unsqueeze(1).expand(-1, classes, 4).reshape(-1, 4)
        keep = scores > self.score_threshold
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        kept = torchvision.ops.batched_nms(boxes, scores, labels, self.iou)[: self.max_output]
        return boxes[kept].unsqueeze(0), labels[kept].unsqueeze(0), scores[kept].unsqueeze(0)

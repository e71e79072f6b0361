"""The RoI pooling exercise checker: it accepts correct implementations (the package's,
torchvision's) and rejects the plausible wrong ones, naming the case and the cause."""
import math

import pytest
import torch
import torchvision.ops as tv

from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.roi import check_roi_pool_one
from minifrcnn.roi_ops import roi_pool_one


def make_roi_pool_one(rounding=lambda v: math.floor(v + 0.5), plus_one=1, start=-math.inf, empty=0.0,
                      clip=True, dtype=None):
    """A learner's plain-Python RoI pooling, with one switchable mistake at a time."""
    def roi_pool_one_(feature, box, output_size, spatial_scale):
        C, H, W = feature.shape
        PH, PW = (output_size, output_size) if isinstance(output_size, int) else output_size
        x1, y1, x2, y2 = (rounding(float(v) * spatial_scale) for v in box)
        roi_w, roi_h = max(x2 - x1 + plus_one, 1), max(y2 - y1 + plus_one, 1)
        out = torch.zeros(C, PH, PW, dtype=dtype or feature.dtype)
        for ph in range(PH):
            for pw in range(PW):
                h0, h1 = math.floor(ph * roi_h / PH) + y1, math.ceil((ph + 1) * roi_h / PH) + y1
                w0, w1 = math.floor(pw * roi_w / PW) + x1, math.ceil((pw + 1) * roi_w / PW) + x1
                if clip:
                    h0, h1, w0, w1 = min(max(h0, 0), H), min(max(h1, 0), H), min(max(w0, 0), W), min(max(w1, 0), W)
                for c in range(C):
                    best = empty if (h1 <= h0 or w1 <= w0) else start
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            best = max(best, float(feature[c, h, w]))
                    out[c, ph, pw] = best
        return out
    return roi_pool_one_


def test_accepts_correct_implementations(capsys):
    assert check_roi_pool_one(roi_pool_one) == 10
    assert check_roi_pool_one(make_roi_pool_one()) == 10
    assert check_roi_pool_one(lambda f, b, size, scale: tv.roi_pool(f[None], [b[None]], size, scale)[0]) == 10
    assert "Well done" in capsys.readouterr().out


def not_written(feature, box, output_size, spatial_scale):
    raise NotImplementedError


def in_place(feature, box, output_size, spatial_scale):
    out = roi_pool_one(feature, box, output_size, spatial_scale)
    box.mul_(spatial_scale)
    return out


@pytest.mark.parametrize("wrong, words", [
    (make_roi_pool_one(rounding=round), ["half a cell", "halves to even"]),
    (make_roi_pool_one(rounding=math.floor), ["well inside", "round("]),
    (make_roi_pool_one(plus_one=0), ["well inside", "end cell is included"]),
    (make_roi_pool_one(start=0.0), ["0 where the maximum is negative"]),
    (make_roi_pool_one(empty=-math.inf), ["half outside", "-inf in the result"]),
    (make_roi_pool_one(clip=False), ["half outside"]),
    (make_roi_pool_one(dtype=torch.float32), ["float64 inputs gave a torch.float32"]),
    (lambda f, b, size, scale: roi_pool_one(f, b, size, scale)[0], ["(C, PH, PW)"]),
    (lambda f, b, size, scale: roi_pool_one(f, b[[1, 0, 3, 2]], size, scale), ["case 1 "]),
    (not_written, ["not written yet"]),
    (in_place, ["in place"]),
])
def test_rejects_wrong_implementations(wrong, words):
    with pytest.raises(ExerciseError) as info:
        check_roi_pool_one(wrong)
    message = str(info.value)
    assert all(w in message for w in words), message

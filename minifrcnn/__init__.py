"""minifrcnn: Faster R-CNN (Ren et al., NIPS 2015) built step by step.

The detector, one module per idea, in reading (and dependency) order::

    boxes -> anchors -> matching -> nms -> backbone -> rpn -> roi_ops -> head -> detector

then what trains, measures and feeds it: ``training``, ``evaluation``, ``pretrain`` (the
backbone's classification pretraining, paper section 3.1.3), ``data`` (COCO-format data and
the course's digits) and ``utils`` (device and seeds). ``compat.torchvision`` holds the
bridge to torchvision's detector (a twin with the same configuration, weight converters).

``minifrcnn.course`` is the course around it: pictures, explorers, exercise checkers, the
paper's training schemes and ablations, the classroom editions. Nothing above imports it.
docs/architecture.md draws the whole graph.

The public API of the detector::

    from minifrcnn import DetectorConfig, FasterRCNN, TrainSettings, train, detect
    model = FasterRCNN(DetectorConfig.course())
    train(model, dataset, TrainSettings())
    detections = detect(model, images)
"""
from . import anchors, backbone, boxes, head, matching, nms, roi_ops, rpn  # noqa: F401
from .data import load_digits, read_coco
from .detector import DetectorConfig, FasterRCNN, detect
from .evaluation import evaluate_coco, evaluate_voc
from .training import TrainSettings, load_weights, train
from .utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = ["DetectorConfig", "FasterRCNN", "detect", "TrainSettings", "train", "load_weights",
           "evaluate_voc", "evaluate_coco", "read_coco", "load_digits", "get_device", "seed_everything"]

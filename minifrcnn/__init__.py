"""minifrcnn: Faster R-CNN (Ren et al., NIPS 2015) built step by step.

The finished code of the course, one module per idea, in dependency order::

    boxes -> anchors -> matching -> nms -> backbone -> rpn -> roi_ops -> head -> detector -> training
    -> schemes -> ablations

plus ``data`` (the course dataset and photos), ``draw`` (pictures), ``explorers``
(interactive widgets) and ``exercises`` (checkers for the lessons' exercises).
"""
from . import anchors, backbone, boxes, head, matching, nms, roi_ops, rpn  # noqa: F401
from .utils import get_device, seed_everything  # noqa: F401

__version__ = "0.1.0"

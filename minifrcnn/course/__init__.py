"""The course around the detector: what the lessons use to show, test and run it.

* ``draw``: pictures of images, boxes, anchors and maps (matplotlib);
* ``explorers``: the lessons' interactive widgets, pure logic plus thin ipywidgets glue;
* ``exercises``: the checkers of the lessons' exercises;
* ``schemes``: the paper's three ways to train (section 3.2), lesson 10;
* ``train_rpn``: an RPN trained on its own, and proposal recall (lessons 04 and 11);
* ``label_rules``: the paper's labelling rule against the simplified one, on trained RPNs (lesson 03);
* ``ablations``: the paper's training-time tables at course scale, lesson 11 (``python -m minifrcnn ablations``);
* ``test_time``, ``timing``, ``verdicts``: its test-time variants, timing table, and noise band and verdicts;
* ``diagnosis``: what kind of error each wrong detection is (lesson 09);
* ``editions``: the student edition and the HTML site (``python -m minifrcnn.course``);
* ``quick``: ``MINIFRCNN_QUICK_STEPS``, the lessons that train as quick runs (for tests).

Nothing in ``minifrcnn``'s detector modules imports from here.
"""

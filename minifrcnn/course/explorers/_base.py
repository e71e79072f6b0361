"""The glue every explorer shares: controls -> compute(values) -> draw(figure, state)."""
import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import clear_output, display


class Explorer:
    """Redraw a figure from widget values.

    Args:
        controls (dict): name -> ipywidget; its ``value`` is passed to ``compute`` as a
            keyword argument of the same name.
        compute (callable): ``compute(**values) -> state``: pure, no drawing.
        draw (callable): ``draw(figure, state)``: draws the state on a new figure.
        figsize (tuple): figure size in inches.

    Attributes:
        state: what ``compute`` returned for the current values.
        figure (matplotlib.figure.Figure): the last figure drawn (closed after display,
            still inspectable).
        redraws (int): how many times the figure was drawn.
        widget (ipywidgets.Widget): controls and output, what the notebook displays.
    """

    def __init__(self, controls, compute, draw, figsize=(9, 5), columns=3):
        self.controls = dict(controls)
        self.compute = compute
        self.draw = draw
        self.figsize = figsize
        self.output = widgets.Output()
        self.state = self.figure = None
        self.redraws = 0
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        boxes = list(self.controls.values())
        rows = [widgets.HBox(boxes[i:i + columns]) for i in range(0, len(boxes), columns)]
        self.widget = widgets.VBox(rows + [self.output])
        self.update()

    def values(self):
        """Current control values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self):
        """Recompute the state and redraw the figure."""
        self.state = self.compute(**self.values())
        figure = plt.figure(figsize=self.figsize)
        self.draw(figure, self.state)
        with self.output:
            clear_output(wait=True)
            display(figure)
        plt.close(figure)  # displayed as a PNG; closing keeps memory flat over many redraws
        self.figure = figure
        self.redraws += 1

    def _on_change(self, change):
        self.update()

    def _ipython_display_(self):
        display(self.widget)

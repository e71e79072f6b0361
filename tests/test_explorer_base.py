"""The explorer glue: a control change recomputes the state and redraws the figure."""
import matplotlib

matplotlib.use("Agg")
import ipywidgets as widgets  # noqa: E402

from minifrcnn.course.explorers import Explorer  # noqa: E402


def test_moving_a_slider_recomputes_and_redraws():
    calls = []

    def compute(a, b):
        return {"sum": a + b}

    def draw(figure, state):
        calls.append(state)
        figure.add_subplot().set_title(f"sum = {state['sum']}")

    explorer = Explorer({"a": widgets.IntSlider(value=1), "b": widgets.IntSlider(value=2)}, compute, draw)
    assert explorer.state == {"sum": 3} and explorer.redraws == 1
    explorer.controls["a"].value = 10
    assert explorer.state == {"sum": 12} and explorer.redraws == 2
    assert explorer.figure.axes[0].get_title() == "sum = 12"
    assert explorer.values() == {"a": 10, "b": 2}
    assert len(calls) == 2

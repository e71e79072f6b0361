"""Reading the ablations against the paper: which differences stand above the noise of
training, measured over seeds (:func:`noise_band`), and each row's change beside the
paper's, with a verdict (:func:`compare_with_paper`); text tables for lessons 08, 10 and 11.
"""
import numpy as np

from ..detector import DetectorConfig


def results_table(rows, columns=("map50", "ap"), paper=True):
    """A text table of result dicts (``table``, ``row``, metrics, ``paper``), one line each."""
    lines = [f"{'table':<12}{'row':<16}" + "".join(f"{c:>10}" for c in columns)
             + (f"{'paper mAP':>11}  paper's setting" if paper else "")]
    for r in rows:
        values = "".join(f"{r[c]:>10.3f}" if isinstance(r[c], float) else f"{r[c]!s:>10}" for c in columns)
        line = f"{r['table']:<12}{r['row']:<16}{values}"
        if paper:
            line += (f"{r['paper']:>11.1f}" if r.get("paper") is not None else f"{'-':>11}") + \
                f"  {r.get('paper_setting', '')}"
        lines.append(line)
    return "\n".join(lines)


# The row each table's changes are measured from (the paper's default setting).
REFERENCE_ROWS = {"baseline": "course", "anchors": "3x3", "lambda": "10", "sharing": "shared", "stages": "two-stage",
                  "pretraining": "pretrained",
                  "fine-tuning": {0: "all stages", 1: "stages 2-3", 2: "stage 3", 3: "none (fixed)"}[
                      DetectorConfig.course().backbone_frozen_stages],
                  "proposals": "300", "components": "NMS, 300"}


def noise_band(results, z=2.0):
    """How far apart two rows' mean mAP@0.5 must be to count as a real difference: ``z``
    standard errors of a difference of two means of ``n`` seeds, ``z * sigma * sqrt(2 / n)``,
    with ``n`` the fewest seeds of any row (a file still being completed may have the
    baseline's seeds only: then ``n`` is 1 and the band is the widest).

    ``sigma`` is the spread of one training of the course's two-stage detector, measured:
    the standard deviation over seeds, pooled (weighted by degrees of freedom) over its
    distinct trainings with several seeds. Rows that share a training (the baseline is also
    anchors 3 x 3, lambda 10, ...) count once. Two kinds of row are left out, because their
    spread is of another kind and would widen the band for every other row: the one-stage
    detector (another model) and a row that collapses (a mean below half the baseline's,
    e.g. every backbone stage fixed, whose runs succeed or fail).

    Returns:
        (float, float): the band and ``sigma`` (mAP@0.5, not points). With no such training on
        several seeds there is no spread to measure: ``(None, None)``.
    """
    rows = results["rows"]
    baseline = next((r["map50"] for r in rows if r.get("table") == "baseline"), None)
    trainings = {}
    for index, r in enumerate(rows):
        if "map50_std" not in r or r.get("kind") == "one_stage":
            continue
        if baseline is not None and r["map50"] < 0.5 * baseline:
            continue
        runs = tuple(p.get("run") for p in r.get("per_seed", [])) or (index,)
        trainings[(r.get("output"), runs)] = (r["map50_std"], r["seeds_done"])
    if not trainings:
        return None, None
    dof = sum(n - 1 for _, n in trainings.values())
    sigma = float(np.sqrt(sum((n - 1) * std ** 2 for std, n in trainings.values()) / dof))
    seeds = min(r["seeds_done"] for r in rows)
    return z * sigma * float(np.sqrt(2 / seeds)), sigma


def compare_with_paper(rows, table, noise, paper_noise=0.5):
    """Each row's change of mAP@0.5 from its table's reference row (:data:`REFERENCE_ROWS`),
    ours (in points, x100) beside the paper's, with a verdict.

    Args:
        rows (list of dict): results rows (``table``, ``name`` or ``row``, ``map50``, ``paper``).
        table (str): which table.
        noise (float): changes of our mAP@0.5 below this are within the noise of training
            (:func:`noise_band` measures it from the seeds).
        paper_noise (float): the paper's changes below this many points count as none.

    Returns:
        list of dict: ``row``, ``ours`` and ``paper`` (changes in points), ``verdict``.
    """
    rows = [dict(r, row=r.get("row", r.get("name"))) for r in rows if r["table"] == table]
    reference = next(r for r in rows if r["row"] == REFERENCE_ROWS[table])
    out = []
    for r in rows:
        ours = 100 * (r["map50"] - reference["map50"])
        paper = None if r["paper"] is None or reference["paper"] is None else r["paper"] - reference["paper"]
        if r is reference:
            verdict = "reference"
        elif abs(ours) < 100 * noise:
            verdict = ("within noise; not in the paper" if paper is None else
                       "no clear change, as in the paper" if abs(paper) < paper_noise else "within noise here")
        elif paper is None:
            verdict = "a clear change; not in the paper"
        elif abs(paper) < paper_noise:
            verdict = "a change here, none in the paper"
        else:
            verdict = "same direction" if (ours > 0) == (paper > 0) else "opposite direction"
        out.append({"row": r["row"], "map50": r["map50"], "ours": ours, "paper_map": r["paper"], "paper": paper,
                    "verdict": verdict})
    return out


def comparison_table(rows, table, noise, **kwargs):
    """:func:`compare_with_paper` as text: mAP@0.5, change from the reference, the paper's."""
    lines = [f"{table + ': row':<24}{'mAP@0.5':>9}{'change':>9}{'paper':>8}{'change':>9}  verdict "
             f"(noise: +-{100 * noise:.1f} points)",
             f"{'':<24}{'(ours)':>9}{'(points)':>9}{'mAP':>8}{'(points)':>9}"]
    for c in compare_with_paper(rows, table, noise, **kwargs):
        paper_map = f"{c['paper_map']:>8.1f}" if c["paper_map"] is not None else f"{'-':>8}"
        paper = f"{c['paper']:>+9.1f}" if c["paper"] is not None else f"{'-':>9}"
        lines.append(f"{c['row']:<24}{c['map50']:>9.3f}{c['ours']:>+9.1f}{paper_map}{paper}  {c['verdict']}")
    return "\n".join(lines)



def training_table(results, table=None):
    """The rows of a results file as a text table beside the paper's numbers."""
    rows = [dict(r, row=r["name"]) for r in results["rows"] if table is None or r["table"] == table]
    return results_table(rows)

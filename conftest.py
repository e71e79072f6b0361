"""pytest set-up shared by the package's tests and the lessons under nbval (tests/conftest.py has the tests' own).

nbval waits a fixed 5 seconds for a cell's outputs after the kernel says the cell is done, and fails the
cell if they are late (nbval's issues 136 and 231). On a busy 2-core CI machine, a lesson cell that trained
for a minute behind a progress bar (tqdm's widget) has missed that window: lesson 10's training cell failed
with "Timeout of 5 seconds exceeded waiting for output" once. A minute is plenty; a cell that never
finishes is still stopped by the cell timeout ([tool.pytest.ini_options] timeout).
"""
NBVAL_OUTPUT_TIMEOUT = 60  # seconds


def pytest_collection_modifyitems(items):
    for item in items:
        if type(item).__name__ == "IPyNbCell":  # a notebook cell collected by nbval
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT

"""Every teaching notebook in notebooks/ runs top to bottom in a fresh kernel, quickly.

Each notebook is executed with nbclient in a new IPython kernel started from *this* interpreter
(a kernelspec written for the test, so a "python3" kernel of another Python installed for the
user cannot be picked up by mistake), with the notebook's folder as working directory, as
Jupyter runs it. A cell that raises fails the test with the cell's traceback; so does a cell
running longer than ``TIMEOUT`` seconds, or a whole notebook taking longer than that.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT = 120  # seconds, per notebook (each runs in well under a minute on a quiet machine)
KERNEL = "simsys-notebook-test"


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data directory holding one kernelspec: this interpreter's ipykernel."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "simsys tests",
        "language": "python",
    }))
    return root


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


def test_notebooks_are_committed_without_outputs() -> None:
    """Outputs stay out of the repository: small files, clean diffs."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
        assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


def test_notebooks_need_only_simsys_and_its_dependencies() -> None:
    """Issue 15: notebook 05 imported scipy, which only the test extras install. A notebook may
    import what simsys's own requirements bring (pandas, numpy, matplotlib, …), not more."""
    import ast
    import importlib.metadata as md
    import re
    import sys

    allowed = {"simsys", "pandas", "numpy", "matplotlib", "networkx", "simpy", "yaml", "click",
               "tqdm", "pyarrow", "IPython", *sys.stdlib_module_names}
    required = {re.split(r"[\[<>=; ]", r)[0].lower() for r in md.requires("simsys") or []
                if "extra ==" not in r}
    assert "scipy" not in required  # scipy stays an extra: the notebooks do without it
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join(line for line in cell.source.splitlines()
                             if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(code)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                         else [])
                for name in names:
                    assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_notebook_wording_matches_the_figures() -> None:
    """The chaos notebook names the incident band by the colour it is drawn in (light orange,
    style.INCIDENT_COLOUR at alpha 0.15), not "red"."""
    text = nbformat.read(NOTEBOOKS[1], as_version=4)
    prose = " ".join(c.source for c in text.cells if c.cell_type == "markdown")
    assert "red band" not in prose and "light orange band" in prose


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, kernel_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT, kernel_name=KERNEL,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    assert elapsed < TIMEOUT, f"{path.name} took {elapsed:.0f} s (limit {TIMEOUT} s)"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"


# replications against theory (or whole notebooks): `make test-fast` leaves these out
pytestmark = pytest.mark.slow

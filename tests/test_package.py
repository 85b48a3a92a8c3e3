"""The repository's own invariants: the package is what the notebooks export, and the README is
what nbs/index.ipynb renders to."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ich_study.core import render_readme

ROOT = Path(__file__).resolve().parent.parent
NBDEV_EXPORT = Path(sys.executable).parent / "nbdev_export"


def test_package_matches_notebooks(tmp_path):
    """Running nbdev_export on a copy of the repository changes nothing in ich_study/."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "data", "reports", "__pycache__", "*.egg-info", ".pytest_cache"))
    subprocess.run([str(NBDEV_EXPORT)], cwd=copy, check=True, capture_output=True, timeout=120)
    committed = {p.relative_to(ROOT / "ich_study"): p.read_bytes()
                 for p in (ROOT / "ich_study").rglob("*.py")}
    exported = {p.relative_to(copy / "ich_study"): p.read_bytes()
                for p in (copy / "ich_study").rglob("*.py")}
    assert sorted(exported) == sorted(committed), "modules differ: run `make export`"
    stale = [str(name) for name in committed if committed[name] != exported[name]]
    assert not stale, f"ich_study/ differs from the notebooks in {stale}: run `make export`"


def test_readme_is_rendered_from_index():
    """README.md is exactly what `make readme` renders from nbs/index.ipynb."""
    expected = render_readme(ROOT / "nbs" / "index.ipynb")
    assert (ROOT / "README.md").read_text() == expected, "README.md is stale: run `make readme`"


def test_ci_runs_the_readme_test_command():
    """.ci/run calls exactly the test command the README gives a new user."""
    readme = (ROOT / "README.md").read_text()
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci_commands == ["make test"]
    assert "make test" in readme and "make reproduce" in readme


@pytest.mark.parametrize("notebook", sorted((ROOT / "nbs").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_clean_and_use_the_study_kernel(notebook):
    """Committed notebooks carry the installed kernelspec and no outputs (nbdev_clean'ed)."""
    import json
    content = json.loads(notebook.read_text())
    assert content["metadata"]["kernelspec"]["name"] == "ich-study"
    with_outputs = [i for i, cell in enumerate(content["cells"]) if cell.get("outputs")]
    assert not with_outputs, f"{notebook.name}: cells {with_outputs} have outputs (run nbdev_clean)"

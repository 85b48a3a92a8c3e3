"""The repository's own invariants: the package is what the notebooks export, the README is
what nbs/index.ipynb renders to, and its results table says what the committed reports say."""
import re
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
    assert (ROOT / "README.md").read_text(encoding="utf-8") == expected, "README.md is stale: run `make readme`"


STUDIES = ("demo", "demo128", "ct-ich")      # the README table's columns after the paper's, in order

def test_readme_results_table_matches_the_reports():
    """Each row of the README's table of test AUCs is the paper's value and the committed `demo`,
    `demo128` and `ct-ich` results.csv, rounded as printed: a report rewritten without the README fails here."""
    import pandas as pd
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| [^|]*\(`([a-z0-9-]+)`\) \|(.*)\|$", readme, flags=re.M)
    assert [name for name, _ in rows] == ["cnn-max", "cnn-p95", "svm", "lstm1", "lstm2", "e2e1", "e2e2", "scratch2"]
    paper = pd.read_csv(ROOT / "reports" / "demo" / "paper_results.csv").query("quantity == 'auc'").set_index("experiment")
    studies = [pd.read_csv(ROOT / "reports" / study / "results.csv").set_index("experiment") for study in STUDIES]
    interval = r"(\d\.\d+) \[(\d\.\d+)-(\d\.\d+)\]"
    for name, cells in rows:
        paper_cell, *ours = [cell.strip() for cell in cells.split("|")]
        assert len(ours) == len(STUDIES), f"{name}: {len(ours)} columns of ours, one per study of {STUDIES} expected"
        if name in paper.index:
            expected = paper.loc[name, ["value", "low", "high"]].tolist()
            assert re.fullmatch(interval, paper_cell).groups() == tuple(f"{v:.2f}" for v in expected), name
        else:
            assert not re.search(r"\d", paper_cell), f"{name}: a paper value the paper does not give"
        for cell, table in zip(ours, studies):
            expected = table.loc[name, ["auc", "delong_low", "delong_high"]].tolist()
            assert re.fullmatch(interval, cell).groups() == tuple(f"{v:.3f}" for v in expected), (name, cell)


def test_readme_subgroup_table_matches_the_reports():
    """Each row of the README's subgroup table is e2e2's row of the committed `demo`, `demo128` and `ct-ich`
    subgroups.csv (positives, ROC AUC against all negatives, rounded as printed), and no `demo` group is left out."""
    import pandas as pd
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (subtype|lesion volume) ([^|]+?) \|(.*)\|$", readme, flags=re.M)
    tables = {study: pd.read_csv(ROOT / "reports" / study / "subgroups.csv").query("experiment == 'e2e2'")
              .set_index(["grouping", "group"]) for study in STUDIES}
    assert [(grouping, group) for grouping, group, _ in rows] == list(tables["demo"].index)
    for grouping, group, cells in rows:
        demo_positives, demo_auc, demo128_auc, ct_ich_positives, ct_ich_auc = [c.strip() for c in cells.split("|")]
        for study, positives, auc in (("demo", demo_positives, demo_auc), ("demo128", demo_positives, demo128_auc),
                                      ("ct-ich", ct_ich_positives, ct_ich_auc)):
            if (grouping, group) not in tables[study].index:
                assert study == "ct-ich" and auc == "-", (study, group, auc)
                continue
            expected = tables[study].loc[(grouping, group)]
            assert positives == str(int(expected["positives"])), (study, group, positives)
            assert auc == f"{expected['auc_vs_negatives']:.3f}", (study, group, auc)

def _relative_links(markdown: str) -> list[str]:
    """The targets of a Markdown text's links and images that point into the repository (no scheme, no bare anchor)."""
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", markdown)
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:", target)]

def test_links_in_the_documentation_resolve():
    """Every relative link or image of the README, the notebooks' prose, the committed reports and the trials'
    READMEs names a file that exists (the trials' generated report.md files are left out: their READMEs say which
    of the figures they embed were not kept)."""
    import json
    documents = [(ROOT / "README.md", ROOT), *[(path, path.parent) for path in sorted((ROOT / "reports").rglob("README.md"))],
                 *[(ROOT / "reports" / study / "report.md", ROOT / "reports" / study) for study in STUDIES]]
    texts = [(path, base, path.read_text(encoding="utf-8")) for path, base in documents]
    for notebook in sorted((ROOT / "nbs").glob("*.ipynb")):
        base = ROOT if notebook.name == "index.ipynb" else notebook.parent      # index.ipynb becomes README.md
        prose = "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
                          if cell["cell_type"] == "markdown")
        texts.append((notebook, base, prose))
    broken = [(str(path.relative_to(ROOT)), target) for path, base, text in texts
              for target in _relative_links(text) if not (base / target).exists()]
    assert len(texts) > 20 and not broken, broken

def test_ci_runs_the_readme_test_command():
    """.ci/run calls exactly the test command the README gives a new user."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci_commands == ["make test"]
    assert "make test" in readme and "make reproduce" in readme


@pytest.mark.parametrize("notebook", sorted((ROOT / "nbs").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_clean_and_use_the_study_kernel(notebook):
    """Committed notebooks carry the installed kernelspec and no outputs (nbdev_clean'ed)."""
    import json
    content = json.loads(notebook.read_text(encoding="utf-8"))
    assert content["metadata"]["kernelspec"]["name"] == "ich-study"
    with_outputs = [i for i, cell in enumerate(content["cells"]) if cell.get("outputs")]
    assert not with_outputs, f"{notebook.name}: cells {with_outputs} have outputs (run nbdev_clean)"


UTF8_CHILD = '''
import locale, sys
from pathlib import Path
import numpy as np
from ich_study.core import load_profile, render_readme
from ich_study.datasets import write_text_atomic
from ich_study.io import read_scan, write_dicom_series
if sys.getfilesystemencoding() != "utf-8": sys.exit(77)
folder = Path(sys.argv[1])
series = folder / "K\\u00f6ln \\u00c4rzte" / "series"        # a hospital's folder name
write_dicom_series(np.full((4, 8, 8), 30, np.int16), series)
locale.setlocale(locale.LC_CTYPE, "C")                     # what GDCM's DICOM writer does to the process
if locale.getpreferredencoding(False).lower().replace("-", "") == "utf8": sys.exit(77)   # nothing to test
listed = folder / "scan.txt"                               # ich-prepare --source rsna writes one such list per scan
write_text_atomic(listed, "\\n".join(str(path) for path in sorted(series.iterdir())))
print(read_scan(listed).volume.shape, load_profile(folder / "mine.toml")["description"])
render_readme(folder / "index.ipynb", folder / "README.md")
'''


def test_text_files_are_utf8_whatever_the_locale(tmp_path):
    """The package reads and writes its text files as UTF-8, not in the process's locale encoding: after
    SimpleITK has written DICOM (GDCM sets LC_CTYPE to "C", and Python's default encoding with it to ASCII),
    a scan list naming a non-ASCII folder, a profile with non-ASCII text and a README still work."""
    import json
    import os
    (tmp_path / "mine.toml").write_text('extends = "smoke"\n# Hirnfenster \u2013 Knochenfenster\n'
                                        'description = "K\u00f6ln: AUC \u2265 0.85"\n', encoding="utf-8")
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "AUC \u2265 0.85 \u2013 K\u00f6ln"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "index.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LC_") and key != "LANG"}
    environment.update(LC_CTYPE="C.UTF-8", PYTHONUTF8="0")            # UTF-8 at start, and no UTF-8 mode
    child = subprocess.run([sys.executable, "-c", UTF8_CHILD, str(tmp_path)], env=environment,
                           capture_output=True, text=True, encoding="utf-8", timeout=120)
    if child.returncode == 77: pytest.skip("no UTF-8 locale to start the child in, or a C locale that is UTF-8")
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "(4, 8, 8) K\u00f6ln: AUC \u2265 0.85"
    assert (tmp_path / "README.md").read_text(encoding="utf-8").strip() == "AUC \u2265 0.85 \u2013 K\u00f6ln"


def test_text_io_names_its_encoding():
    """Every text read or write in ich_study/, and in the probes, benchmarks and tests beside it, says encoding=...,
    so that no file depends on the locale."""
    import ast
    unnamed = []
    modules = sorted(path for folder in ("ich_study", "probes", "bench", "tests") for path in (ROOT / folder).rglob("*.py"))
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call): continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            keywords = {keyword.arg for keyword in node.keywords}
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            binary = isinstance(mode, ast.Constant) and "b" in str(mode.value)
            text_call = name in ("read_text", "write_text") or (name == "open" and not binary
                                                                 and isinstance(node.func, ast.Name))
            if text_call and "encoding" not in keywords: unnamed.append(f"{module.relative_to(ROOT)}:{node.lineno}")
    assert not unnamed, f"text I/O without encoding= at {unnamed}"

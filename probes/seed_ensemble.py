"""Probe: the mean of several training seeds' predicted probabilities (an ensemble of chains that
share the cohort and its splits) against each seed alone, per scan model, on validation and test,
with the paired DeLong p-value of the ensemble against the first report's model.
usage: seed_ensemble.py REPORT_DIR REPORT_DIR [REPORT_DIR ...]
e.g.   seed_ensemble.py reports/demo reports/trials/demo-seeds/seed1 reports/trials/demo-seeds/seed2"""
import sys
import pandas as pd
from ich_study.stats import delong_paired_test, roc_auc

MODELS = ("lstm1", "lstm2", "e2e1", "e2e2")

def seed_table(report_dirs: list[str], model: str) -> pd.DataFrame:
    """case_id -> label, split, one probability column per report and their mean ('ensemble')."""
    tables = [pd.read_csv(f"{folder}/predictions/{model}.csv").set_index("case_id") for folder in report_dirs]
    first = tables[0][["label", "split"]]
    for table in tables[1:]:
        if not table[["label", "split"]].reindex(first.index).equals(first):
            raise SystemExit(f"{model}: the reports do not share their scans and splits")
    probabilities = pd.concat([table["probability"].rename(f"report {i}") for i, table in enumerate(tables)], axis=1)
    return first.join(probabilities).assign(ensemble=probabilities.mean(axis=1))

if __name__ == "__main__":
    report_dirs = sys.argv[1:]
    if len(report_dirs) < 2: raise SystemExit(__doc__)
    for model in MODELS:
        table = seed_table(report_dirs, model)
        for split in ("val", "test"):
            part = table[table.split == split]
            singles = ", ".join(f"{roc_auc(part.label, part[f'report {i}']):.3f}" for i in range(len(report_dirs)))
            p_value = delong_paired_test(part.label, part.ensemble, part["report 0"])[1]
            print(f"{model} {split}: each report {singles}; mean of them {roc_auc(part.label, part.ensemble):.3f} "
                  f"(against the first, paired DeLong p = {p_value:.3f})")

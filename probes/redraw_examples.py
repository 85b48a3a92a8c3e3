"""Draw a written report's examples.png again (`ich_study.evaluate.redraw_examples`): from its primary
experiment's predictions and operating point and the scans of the dataset it was made from; no table
changes. How the committed reports' figures were redrawn when the figure gained its false-positive and
true-negative rows (2026-12-06):

    .venv/bin/python probes/redraw_examples.py REPORT_DIR DATASET_DIR
    # e.g. reports/demo128 data/demo128-cohort   (the cohort that `make reproduce PROFILE=demo128` makes)
    #      reports/ct-ich data/ct-ich             (the dataset that `make reproduce-ct-ich` prepares)
"""
import sys

from ich_study.evaluate import redraw_examples

if __name__ == "__main__":
    report_dir, dataset_dir = sys.argv[1:3]
    print(redraw_examples(report_dir, dataset_dir))

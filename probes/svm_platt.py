"""Probe: where Platt's sigmoid for the SVM baseline is fitted, and what that does to its test AUC.

The report's SVM (`evaluate.platt_scaled_svm`) fits the sigmoid on the validation scans' decision
values of the SVM fitted on the training scans. Before 2026-12-03 it was fitted on cross-validated
decision values of the training scans (`evaluate.cross_validated_platt_svm`, now the fallback). A
sigmoid is monotone, so either keeps the SVM's ranking unless it comes out falling (sklearn's slope
a > 0 in 1 / (1 + exp(a f + b)), `evaluate.platt_slope`), which turns the ranking around. For a
stage-1 `cnn` run and a C (by default the one `evaluate.choose_svm_c` chooses on the validation
scans, as the report does), this prints the test ROC AUC of the SVM's decision values and of the
probabilities of both sigmoids, and the slope of each. It reads test labels: a diagnosis of the two
calibrations, never a choice of C.

usage: .venv/bin/python probes/svm_platt.py DATASET_DIR CNN_RUN_DIR [C]
       e.g. data/demo-cohort runs/demo/cnn   (a few minutes on 2 cores for demo)
"""
import sys
from pathlib import Path

from sklearn.metrics import roc_auc_score

from ich_study.evaluate import choose_svm_c, cross_validated_platt_svm, linear_svm, platt_scaled_svm, platt_slope
from svm_c import split_feature_rows


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4): sys.exit(__doc__)
    data = split_feature_rows(Path(sys.argv[1]), Path(sys.argv[2]), ("train", "val", "test"))
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = data["train"], data["val"], data["test"]
    if len(sys.argv) == 4: c = float(sys.argv[3])
    else:
        selection = choose_svm_c(train_x, train_y, val_x, val_y)
        c = float(selection.loc[selection.chosen, "C"].iloc[0])
    svm = linear_svm(c).fit(train_x, train_y)
    print(f"C = {c:g}; {len(train_y)} training, {len(val_y)} validation, {len(test_y)} test scans")
    print(f"decision values: validation AUC {roc_auc_score(val_y, svm.decision_function(val_x)):.3f}, "
          f"test AUC {roc_auc_score(test_y, svm.decision_function(test_x)):.3f}")
    on_validation, where = platt_scaled_svm(train_x, train_y, val_x, val_y, c)
    cross_validated = cross_validated_platt_svm(train_x, train_y, c)
    for name, calibrated in ((f"sigmoid on the {where} scans (the report)", on_validation),
                             ("sigmoid on cross-validated training scans (before 2026-12-03)", cross_validated)):
        print(f"{name}: slope a = {platt_slope(calibrated):+.3g}, "
              f"test AUC {roc_auc_score(test_y, calibrated.predict_proba(test_x)[:, 1]):.3f}")

"""The figure of reports/trials/stage2-long: validation AUC of stage 2 (lstm2) against the scans it has seen,
for the chain's own run and the probes of `probes/lstm_cached_features.py`, with the 95th percentile of the
same slice CNN's probabilities on the same validation scans as a line; prints what the README cites of each probe
(the rule's mean over the second half of the steps, the first four evaluations, the best, the training loss).

    .venv/bin/python probes/plot_stage2_curves.py reports/trials/stage2-long
"""
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ich_study.stats import roc_auc


def main(trial: Path) -> None:
    chain = pd.read_csv(trial / "chain" / "lstm2-metrics.csv")
    p95 = pd.read_csv(trial.parent / "demo-cpu-kinds" / "bf16" / "predictions" / "cnn-p95.csv")
    p95 = p95[p95.split == "val"]
    figure, axes = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    axes[0].plot(chain.step, chain.val_metric, "o-", color="black", label="the chain's lstm2 (1 scan a step, on the fly)")
    for name, batch, label in (("probe", 1, "cached features, 1 scan a step, RMSprop 1e-4"),
                               ("probe-batch16", 16, "cached features, 16 scans a step, RMSprop 1e-3")):
        curve = pd.read_csv(trial / name / "curve.csv")
        scans, last, eighth = curve.step * batch, curve.step.max(), curve.step.max() // 8
        best = curve.loc[curve.val_auc.idxmax()]
        print(f"{name}: mean validation AUC over steps {last // 2}-{last} {curve.val_auc[curve.step >= last // 2].mean():.3f}, "
              f"over the first four evaluations {curve.val_auc.head(4).mean():.3f}, best {best.val_auc:.3f} at step "
              f"{int(best.step)}; training loss {curve.train_loss[curve.step <= eighth].mean():.3f} over the first eighth "
              f"of the steps, {curve.train_loss[curve.step > last - eighth].mean():.3f} over the last")
        axes[0].plot(scans, curve.val_auc, ".-", alpha=0.8, label=label)
        axes[1].plot(scans, curve.train_loss, ".-", alpha=0.8, label=label)
    axes[1].plot(chain.step, chain.train_loss, "o-", color="black")
    p95_auc = roc_auc(p95.label, p95.probability)
    print(f"95th percentile of the slice CNN on the validation scans: {p95_auc:.3f}; the chain's lstm2: "
          + ", ".join(f"{auc:.3f}" for auc in chain.val_metric))
    axes[0].axhline(p95_auc, color="grey", ls="--",
                    label="95th percentile of the slice CNN (no training)")
    axes[0].axhline(0.837, color="red", ls=":", label="the rule: mean of the second half >= 0.837")
    axes[0].set(ylabel="validation ROC AUC (90 scans)", ylim=(0.5, 0.9))
    axes[1].set(xlabel="training scans seen", ylabel="training loss (mean since last validation)", xscale="log")
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].set_title("Stage 2 (2 BiLSTM layers on the frozen slice CNN), demo cohort, bf16 chain at 5232284")
    figure.tight_layout()
    figure.savefig(trial / "stage2_curves.png", dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""The study's figures (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import pandas as pd  # noqa: E402

MARKERS = "osD^vP<>Xph*"
PANELS = {"head_accuracy": "retrained head (logistic regression on frozen features)",
          "finetune_accuracy": "full fine-tuning"}


# Where a panel's caption goes: axes coordinates and alignment.
CORNERS = {"upper left": (0.02, 0.98, "top", "left"), "upper right": (0.98, 0.98, "top", "right"),
           "lower right": (0.98, 0.02, "bottom", "right"), "lower left": (0.02, 0.02, "bottom", "left")}


class Panel(NamedTuple):
    """One scatter panel: a score (x) against an accuracy (y), with the panel's title and the
    caption printed in it, in one of the CORNERS, and the x axis's scale (matplotlib's "linear",
    "log" or "symlog")."""

    score: str
    score_label: str
    accuracy: str
    title: str
    caption: str
    corner: str = "upper left"
    scale: str = "linear"


def scatter(pairs: pd.DataFrame, path, title: str, panels: list[Panel], columns: int | None = None,
            accuracy_label: str | None = None) -> None:
    """A score against a transfer accuracy in each panel, one colour and marker per source (as in
    the paper's figures); the panels fill rows of `columns` (default: one row), and the legend
    takes the last row's free place or the right margin. The y axis is labelled
    `accuracy_label`, by default from PANELS."""
    sources = list(dict.fromkeys(pairs["source"]))
    colours = plt.get_cmap("tab20" if len(sources) > 10 else "tab10").colors
    columns = columns or len(panels)
    rows = (len(panels) + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(6.5 * columns, 5.4 * rows), sharey=True, squeeze=False)
    axes = list(grid.flat)[:len(panels)]
    for axis, panel in zip(axes, panels):
        for index, source in enumerate(sources):
            rows = pairs[pairs["source"] == source]
            axis.scatter(rows[panel.score], rows[panel.accuracy], s=30, color=colours[index % len(colours)],
                         marker=MARKERS[index % len(MARKERS)], label=source, alpha=0.85,
                         edgecolors="black", linewidths=0.3)
        axis.set_xscale(panel.scale)
        axis.set_xlabel(panel.score_label)
        axis.set_title(panel.title, fontsize=10)
        x, y, vertical, horizontal = CORNERS[panel.corner]
        axis.text(x, y, panel.caption, transform=axis.transAxes, fontsize=9, va=vertical, ha=horizontal,
                  bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        axis.grid(alpha=0.3)
    label = accuracy_label or ("transfer accuracy (target test split)" if len({p.accuracy for p in panels}) > 1
                               else f"{PANELS[panels[0].accuracy].split(' (')[0]} accuracy (target test split)")
    for row in grid:
        row[0].set_ylabel(label)
    spare = list(grid.flat)[len(panels):]
    for axis in spare:
        axis.set_visible(False)
    if spare:
        handles, names = axes[0].get_legend_handles_labels()
        spare[0].set_visible(True)
        spare[0].axis("off")
        spare[0].legend(handles, names, title="source", fontsize=9, title_fontsize=10, loc="center",
                        frameon=False)
    else:
        axes[-1].legend(title="source", fontsize=8, title_fontsize=9, loc="center left",
                        bbox_to_anchor=(1.01, 0.5), frameon=False)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def leaderboard(pairs: pd.DataFrame, targets: list[str], path, captions: dict[str, str]) -> None:
    """Per target, the sources ranked by LEEP (best at the top) with their two measured
    accuracies as bars: a perfect predictor would give bars that shrink down the list."""
    columns = 2
    rows = (len(targets) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(13, 4.6 * rows), squeeze=False)
    for axis, target in zip(axes.flat, targets):
        board = pairs[pairs["target"] == target].sort_values("leep", ascending=False)
        positions = range(len(board))
        axis.barh([p - 0.2 for p in positions], board["head_accuracy"], height=0.4,
                  color="tab:blue", label="retrained head")
        axis.barh([p + 0.2 for p in positions], board["finetune_accuracy"], height=0.4,
                  color="tab:orange", label="fine-tuning")
        axis.set_yticks(list(positions))
        axis.set_yticklabels([f"{r.source}  {r.leep:.3f}" for r in board.itertuples()], fontsize=8)
        axis.invert_yaxis()
        low = min(board["head_accuracy"].min(), board["finetune_accuracy"].min())
        axis.set_xlim(max(0.0, low - 0.05), 1.0)
        classes = int(board["target_classes"].iloc[0])
        axis.set_title(f"{target} ({classes} classes): {captions[target]}", fontsize=9)
        axis.set_xlabel("accuracy on the target's test split")
        axis.grid(axis="x", alpha=0.3)
    for axis in list(axes.flat)[len(targets):]:
        axis.set_visible(False)
    axes[0][0].legend(fontsize=8, loc="lower right")
    figure.suptitle("Per-target leaderboards: sources ranked by LEEP (value after the name), "
                    "best first, with their measured accuracies", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

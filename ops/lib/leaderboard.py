"""Prints a leaderboard from lines of `MODEL <leep score --json output>` on standard input."""

import json
import sys

rows = []
for line in sys.stdin:
    if line.strip():
        model, record = line.split(" ", 1)
        rows.append((model, json.loads(record)))
rows.sort(key=lambda row: row[1]["leep"], reverse=True)
print(f"{'rank':>4}  {'model':<15} {'LEEP':>9} {'NCE':>9} {'EEP acc':>8} {'n':>6} {'Z':>6} {'Y':>4}")
for rank, (model, s) in enumerate(rows, 1):
    print(
        f"{rank:>4}  {model:<15} {s['leep']:>9.4f} {s['nce']:>9.4f} {s['eep_accuracy']:>8.3f}"
        f" {s['n']:>6} {s['source_classes']:>6} {s['target_classes']:>4}"
    )

"""Write data/digits.csv, the data set that DVC tracks, from scikit-learn's digits.

Run once, then `dvc add data/digits.csv` and `dvc push`: from then on every commit names
its version of the data in data/digits.csv.dvc. No download: the digits ship with
scikit-learn.
"""

import csv
from pathlib import Path

from sklearn.datasets import load_digits


def main() -> None:
    features, labels = load_digits(return_X_y=True)
    Path("data").mkdir(exist_ok=True)
    with Path("data/digits.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"pixel_{i}" for i in range(features.shape[1])), "label"])
        for row, label in zip(features, labels, strict=True):
            writer.writerow([*(int(value) for value in row), int(label)])
    print(f"wrote data/digits.csv: {len(labels)} images")


if __name__ == "__main__":
    main()

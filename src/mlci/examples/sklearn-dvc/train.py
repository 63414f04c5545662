"""Train a digit classifier on data/digits.csv, the data set that DVC tracks.

Reads params.yaml and the data, writes metrics.json, predictions.csv and model/model.pkl:
the outputs of the `train` stage of dvc.yaml, and the files mlci.yaml points at.
"""

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    data, model_params = params["data"], params["model"]

    table = np.loadtxt("data/digits.csv", delimiter=",", skiprows=1)
    features, labels = table[:, :-1], table[:, -1].astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=data["test_size"], random_state=data["seed"], stratify=labels
    )
    keep = int(len(x_train) * data["train_fraction"])
    print(f"training on {keep} of {len(x_train)} images, testing on {len(x_test)}")

    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=model_params["C"], max_iter=model_params["max_iter"]),
    )
    model.fit(x_train[:keep], y_train[:keep])

    predicted = model.predict(x_test)
    probabilities = model.predict_proba(x_test)
    metrics = {
        "accuracy": accuracy_score(y_test, predicted),
        "f1_macro": f1_score(y_test, predicted, average="macro"),
        "precision_macro": precision_score(y_test, predicted, average="macro"),
        "recall_macro": recall_score(y_test, predicted, average="macro"),
        "log_loss": log_loss(y_test, probabilities),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print("metrics:", ", ".join(f"{name}={value:.4f}" for name, value in metrics.items()))

    with Path("predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y_true", "y_pred", *(f"p_{label}" for label in model.classes_)])
        for truth, guess, row in zip(y_test, predicted, probabilities, strict=True):
            writer.writerow([truth, guess, *(f"{p:.6f}" for p in row)])

    Path("model").mkdir(exist_ok=True)
    with Path("model/model.pkl").open("wb") as handle:
        pickle.dump(model, handle)


if __name__ == "__main__":
    main()

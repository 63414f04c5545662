"""Train a small PyTorch classifier on the digits data set that ships with scikit-learn.

Trains on CUDA when mlci says so (train.device in mlci.yaml reaches this script as
MLCI_DEVICE) or, with `auto`, when a GPU is there; on the CPU otherwise, in seconds.
Reads params.yaml and writes what mlci.yaml points at: metrics.json, predictions.csv,
train_log.csv (one row per epoch) and model/ (the state dict and the architecture).
No download: the data set is part of scikit-learn.
"""

import csv
import json
import os
import sys
import time
from pathlib import Path

import torch
import yaml
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from torch import nn


def pick_device() -> torch.device:
    wanted = os.environ.get("MLCI_DEVICE", "auto")
    if wanted == "cuda" and not torch.cuda.is_available():
        sys.exit("train.device is cuda, but torch sees no GPU (torch.cuda.is_available() is False)")
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def build(features: int, classes: int, hidden: int, dropout: float) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    data, model_params, train = params["data"], params["model"], params["train"]
    torch.manual_seed(train["seed"])
    device = pick_device()
    if device.type == "cpu":
        torch.set_num_threads(1)  # a model this small trains fastest on one thread
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} training on {device} ({name})", flush=True)

    features, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features / 16.0,
        labels,
        test_size=data["test_size"],
        random_state=data["seed"],
        stratify=labels,
    )
    tensors = [torch.tensor(a, dtype=torch.float32, device=device) for a in (x_train, x_test)]
    xs_train, xs_test = tensors
    ys_train = torch.tensor(y_train, device=device)
    ys_test = torch.tensor(y_test, device=device)

    model = build(features.shape[1], 10, model_params["hidden"], model_params["dropout"])
    model = model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=train["lr"])
    loss_fn = nn.CrossEntropyLoss()
    log = []
    started = time.monotonic()
    for epoch in range(1, train["epochs"] + 1):
        model.train()
        order = torch.randperm(len(xs_train), device=device)
        total = 0.0
        for start in range(0, len(order), train["batch_size"]):
            batch = order[start : start + train["batch_size"]]
            optimiser.zero_grad()
            loss = loss_fn(model(xs_train[batch]), ys_train[batch])
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(xs_test)
            val_loss = loss_fn(logits, ys_test).item()
            val_accuracy = (logits.argmax(1) == ys_test).float().mean().item()
        row = {
            "epoch": epoch,
            "loss": total / len(order),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        log.append(row)
        print(
            f"epoch {epoch:3d}  loss {row['loss']:.4f}  val_loss {val_loss:.4f}  "
            f"val_accuracy {val_accuracy:.4f}",
            flush=True,
        )
    print(f"trained {train['epochs']} epochs in {time.monotonic() - started:.1f} s", flush=True)

    with torch.no_grad():
        probabilities = torch.softmax(model(xs_test), dim=1).cpu().numpy()
    predicted = probabilities.argmax(axis=1)
    metrics = {
        "accuracy": accuracy_score(y_test, predicted),
        "f1_macro": f1_score(y_test, predicted, average="macro"),
        "log_loss": log_loss(y_test, probabilities, labels=list(range(10))),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print("metrics:", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)

    with Path("predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["y_true", "y_pred", *(f"p_{label}" for label in range(10))])
        for truth, guess, row in zip(y_test, predicted, probabilities, strict=True):
            writer.writerow([truth, guess, *(f"{p:.6f}" for p in row)])
    with Path("train_log.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)

    Path("model").mkdir(exist_ok=True)
    torch.save(model.state_dict(), "model/model.pt")
    architecture = {"features": features.shape[1], "classes": 10, **model_params}
    Path("model/architecture.json").write_text(json.dumps(architecture, indent=2) + "\n")


if __name__ == "__main__":
    main()

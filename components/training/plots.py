"""PNG pictures of training: accuracy/loss curves (listings 5.10, 5.24) and
a grid of augmented versions of one image (figure 5.11)."""
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

SMOOTHING_FACTOR = 0.8
"""Listing 5.24's exponential moving average."""


def smooth(values: Sequence[float], factor: float = SMOOTHING_FACTOR) -> List[float]:
    smoothed = []
    for value in values:
        smoothed.append(smoothed[-1] * factor + value * (1 - factor) if smoothed else value)
    return smoothed


def plot_curves(history: Dict[str, List[float]], path: str, title: str,
                smoothed: bool = False, phase_starts: Optional[Dict[str, int]] = None) -> str:
    """Training and validation accuracy and loss per epoch, side by side."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        for key, style, label in ((metric, "o", "Training"), (f"val_{metric}", "-", "Validation")):
            values = history.get(key)
            if not values:
                continue
            epochs = np.arange(1, len(values) + 1)
            if smoothed:
                axis.plot(epochs, values, style, alpha=0.25, color="C0" if key == metric else "C1")
                values = smooth(values)
            axis.plot(epochs, values, style if not smoothed else "-",
                      color="C0" if key == metric else "C1",
                      label=f"{label} {metric}" + (" (smoothed)" if smoothed else ""))
        for phase, start in (phase_starts or {}).items():
            axis.axvline(start - 0.5, color="grey", linestyle=":")
            axis.annotate(phase, (start - 0.5, axis.get_ylim()[1]), fontsize=8, va="top")
        axis.set_xlabel("epoch")
        axis.set_title(f"{title}: {metric}")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def plot_image_grid(images: np.ndarray, path: str, title: str, columns: int = 4) -> str:
    """images: [n, H, W, 3] floats in [0, 1]."""
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, image in zip(np.ravel(axes), images):
        axis.imshow(np.clip(image, 0.0, 1.0))
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


"""An HTML gallery of what a trained model looks at: Grad-CAM of a fixed set of
test images (misclassified first), one activation grid, one layer's filter patterns.

The page is one self-contained file (pictures inlined as data URIs), so KFP's
UI can show it from the artifact alone; the PNGs are written beside it when
the output is a directory.
"""
import base64
import dataclasses
import html
import io
import json
import os
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from components import html_artifact
from components.explain import activations, filters, images, render
from components.explain.examples_io import LabelledImage
from components.explain.gradcam import GradCam
from components.explain.model_graph import ModelGraph, first_conv_of_each_block
from components.image_shape import ImageShape

INDEX_FILE = "index.html"
SUMMARY_FILE = "summary.json"


@dataclasses.dataclass(frozen=True)
class GalleryConfig:
    max_images: int = 16
    activation_layer: str = ""
    """Default: the first conv layer (the book's first activation figure)."""
    filter_layer: str = ""
    """Default: the conv layer opening the second block (conv2d_2, block2_conv1)."""
    filter_count: int = 64
    filter_size: int = 64
    filter_steps: int = 40
    batch_size: int = 16
    thumbnail_width: int = 320
    page_image_width: int = 1200


@dataclasses.dataclass(frozen=True)
class GalleryEntry:
    filename: str
    label: int
    predicted: int
    probability: float
    gradcam: np.ndarray

    @property
    def misclassified(self) -> bool:
        return self.label != self.predicted


@dataclasses.dataclass(frozen=True)
class Gallery:
    html: str
    entries: List[GalleryEntry]
    activation_layer: str
    activation_grid: np.ndarray
    filter_layer: str
    filter_grid: np.ndarray
    seconds: float

    def summary(self, class_names: Sequence[str]) -> dict:
        return {
            "images": [{"filename": e.filename, "label": class_names[e.label],
                        "predicted": class_names[e.predicted],
                        "probability": round(e.probability, 4),
                        "misclassified": e.misclassified} for e in self.entries],
            "misclassified": sum(e.misclassified for e in self.entries),
            "activation_layer": self.activation_layer,
            "filter_layer": self.filter_layer,
            "seconds": round(self.seconds, 2),
        }


def _second_block_conv(graph: ModelGraph) -> str:
    openers = first_conv_of_each_block(graph)
    return openers[1] if len(openers) > 1 else openers[0]


def _data_uri(image: np.ndarray, width: int, fmt: str) -> str:
    picture = Image.fromarray(image)
    if picture.width > width:
        picture = picture.resize((width, round(picture.height * width / picture.width)),
                                 Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{width:%(w)dpx;border:3px solid #9c9;padding:4px;font-size:13px}
.card.wrong{border-color:#d33}
.card img,.wide{max-width:100%%}
.wrong b{color:#d33}
"""


def _page(title: str, class_names, entries: List[GalleryEntry], config: GalleryConfig,
          activation_layer, activation_grid, filter_layer, filter_grid, filter_count: int,
          source: str) -> str:
    wrong = sum(e.misclassified for e in entries)
    cards = []
    for e in entries:
        verdict = "misclassified" if e.misclassified else "correct"
        cards.append(
            f'<div class="card{" wrong" if e.misclassified else ""}">'
            f'<img alt="Grad-CAM of {html.escape(e.filename)}" '
            f'src="{_data_uri(e.gradcam, config.thumbnail_width, "JPEG")}"><br>'
            f'{html.escape(e.filename)}<br>true <b>{html.escape(class_names[e.label])}</b>, '
            f'predicted <b>{html.escape(class_names[e.predicted])}</b> '
            f'(p={e.probability:.2f}, {verdict})</div>')
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE % {"w": config.thumbnail_width}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Model: <code>{html.escape(source)}</code></p>
<h2>Grad-CAM: where the evidence for the predicted class lies</h2>
<p>{len(entries)} test images, {wrong} misclassified (shown first, red frame).
Heatmap over the last conv layer, jet colour map at 0.4 intensity.</p>
<div class="cards">{"".join(cards)}</div>
<h2>Activations of {html.escape(activation_layer)} for {html.escape(entries[0].filename)}</h2>
<img class="wide" alt="activations" src="{_data_uri(activation_grid, config.page_image_width, "PNG")}">
<h2>Filter patterns of {html.escape(filter_layer)}</h2>
<p>Gradient ascent from a grey noisy image, {config.filter_steps} steps, first
{filter_count} filters.</p>
<img alt="filter patterns" src="{_data_uri(filter_grid, config.page_image_width, "PNG")}">
</body></html>
"""


def build_gallery(graph: ModelGraph, examples: Sequence[LabelledImage], class_names: Sequence[str],
                  config: GalleryConfig = GalleryConfig(), title: str = "What the convnet looks at",
                  source: str = "", log: Callable[[str], None] = print) -> Gallery:
    """Explain `examples` (already the fixed selection) with `graph`'s model."""
    started = time.monotonic()
    activation_layer = config.activation_layer or graph.conv_layers[0]
    filter_layer = config.filter_layer or _second_block_conv(graph)
    graph.check_layers([activation_layer, filter_layer], graph.feature_layers)
    shape = ImageShape.of(graph.input_shape)
    decoded = [images.explain_image_from_bytes(e.image_bytes, e.filename, shape) for e in examples]
    inputs = np.stack([d.model_input for d in decoded])

    cam = GradCam(graph)
    results = []
    for start in range(0, len(inputs), config.batch_size):
        results.extend(cam.explain_batch(inputs[start:start + config.batch_size]))
        log(f"Grad-CAM {min(start + config.batch_size, len(inputs))}/{len(inputs)} images")
    entries = [GalleryEntry(filename=e.filename, label=e.label, predicted=r.class_index,
                            probability=r.class_score,
                            gradcam=render.superimpose(render.enlarge_small(d.original), r.heatmap))
               for e, d, r in zip(examples, decoded, results)]
    entries.sort(key=lambda e: (not e.misclassified, e.filename))

    first = next(i for i, e in enumerate(examples) if e.filename == entries[0].filename)
    activation = activations.layer_activations(graph, inputs[first], [activation_layer])[activation_layer]
    activation_grid = render.activation_grid(activation)
    log(f"activations of {activation_layer}: {activation.shape[-1]} channels")

    pattern_config = filters.FilterPatternConfig(steps=config.filter_steps, size=config.filter_size,
                                                 batch_size=config.batch_size)
    patterns = filters.filter_patterns(
        graph, filter_layer, config.filter_count, pattern_config,
        progress=lambda done, total: log(f"filter patterns of {filter_layer}: {done}/{total}"))
    filter_grid = render.pattern_grid(patterns.patterns)
    page = _page(title, class_names, entries, config, activation_layer, activation_grid,
                 filter_layer, filter_grid, len(patterns.patterns), source)
    return Gallery(html=page, entries=entries, activation_layer=activation_layer,
                   activation_grid=activation_grid, filter_layer=filter_layer,
                   filter_grid=filter_grid, seconds=time.monotonic() - started)


def write_gallery(gallery: Gallery, class_names: Sequence[str], output_uri: str) -> str:
    """Into a directory: index.html, summary.json and the PNGs; returns the page's path.
    A URI that is not an existing directory (KFP hands out such URIs for HTML
    artifacts) becomes the page itself."""
    index = html_artifact.page_path(output_uri, INDEX_FILE)
    with tf.io.gfile.GFile(index, "w") as f:
        f.write(gallery.html)
    if index == output_uri:
        return index
    with tf.io.gfile.GFile(os.path.join(output_uri, SUMMARY_FILE), "w") as f:
        json.dump(gallery.summary(class_names), f, indent=1)
    if "://" not in output_uri:
        for n, entry in enumerate(gallery.entries):
            base = os.path.splitext(os.path.basename(entry.filename))[0]
            images.save_png(entry.gradcam, os.path.join(output_uri, "gradcam", f"{n:02d}_{base}.png"))
        images.save_png(gallery.activation_grid,
                        os.path.join(output_uri, f"activations_{gallery.activation_layer}.png"))
        images.save_png(gallery.filter_grid,
                        os.path.join(output_uri, f"filters_{gallery.filter_layer}.png"))
    return index

"""An HTML gallery of what a trained model looks at: Grad-CAM of a fixed set of
test images (misclassified first), one activation grid, one layer's filter patterns.

The page (template: components/html_pages/templates/explain_gallery.html) is
one self-contained file (pictures inlined as data URIs), so KFP's UI can show
it from the artifact alone; the PNGs are written beside it when the output is
a directory.
"""
import dataclasses
import json
import os
import time
from typing import Callable, List, Sequence

import numpy as np
import tensorflow as tf

from components import html_artifact, html_pages
from components.explain import activations, filters, images, render
from components.explain.gradcam import GradCam
from components.explain.model_graph import ModelGraph, first_conv_of_each_block
from components.formats.examples import LabelledImage
from components.html_pages import pictures
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


def _page(title: str, class_names, entries: List[GalleryEntry], config: GalleryConfig,
          activation_layer, activation_grid, filter_layer, filter_grid, filter_count: int,
          source: str) -> str:
    cards = [{"filename": e.filename, "true_class": class_names[e.label],
              "predicted_class": class_names[e.predicted], "probability": e.probability,
              "misclassified": e.misclassified,
              "picture": pictures.array_data_uri(e.gradcam, config.thumbnail_width, "JPEG")}
             for e in entries]
    return html_pages.render(
        "explain_gallery.html", title=title, source=source, cards=cards,
        misclassified=sum(e.misclassified for e in entries), thumbnail_width=config.thumbnail_width,
        activation_layer=activation_layer,
        activation_picture=pictures.array_data_uri(activation_grid, config.page_image_width, "PNG"),
        filter_layer=filter_layer, filter_steps=config.filter_steps, filter_count=filter_count,
        filter_picture=pictures.array_data_uri(filter_grid, config.page_image_width, "PNG"))


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

"""`catsdogs explain`: activations, filter patterns and Grad-CAM PNGs for one image.

    catsdogs explain --model PATH --image IMG --out DIR [--what gradcam ...]

PATH: a pushed model version, the Trainer's export or model artifact, a served
model's directory (latest version) or a .keras file.
"""
import argparse
import os
import sys
import time
from typing import List, Optional, Sequence

from components import contract

WHAT_CHOICES = ("activations", "filters", "gradcam")


def _names(text: Optional[str]) -> Optional[List[str]]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--model", required=True,
                        help="SavedModel export (pushed or Trainer output), Trainer model "
                             "artifact, served model directory or .keras file")
    parser.add_argument("--image", required=True, help="JPEG or PNG image to explain")
    parser.add_argument("--out", required=True, help="directory for the PNGs")
    parser.add_argument("--what", nargs="+", choices=WHAT_CHOICES, default=list(WHAT_CHOICES),
                        help="which explanations to write (default: all)")
    parser.add_argument("--layers", help="comma-separated conv/pool layers for activation grids "
                                         "(default: every conv and pooling layer)")
    parser.add_argument("--filter-layers", help="comma-separated layers for filter patterns "
                                                "(default: the first conv layer of each block)")
    parser.add_argument("--filters", type=int, default=64,
                        help="filter patterns per layer, the first N filters (default 64: 8x8)")
    parser.add_argument("--filter-steps", type=int, default=40, help="gradient ascent steps")
    parser.add_argument("--filter-size", type=int, default=contract.IMAGE_HEIGHT,
                        help="side of each filter pattern in pixels (default %(default)s); "
                             "on a CPU the deep VGG16 layers take minutes each")
    parser.add_argument("--gradcam-layer", help="conv layer for Grad-CAM (default: the last one)")
    parser.add_argument("--class", dest="class_", metavar="CLASS",
                        help="class to explain, by name or index (default: the predicted class)")
    parser.add_argument("--class-names", default=None,
                        help="comma-separated class names in label order (default: the names the "
                             "Trainer saved with the model, else the label numbers)")


def _class_index(value: Optional[str], class_names: Sequence[str]) -> Optional[int]:
    from components.explain.errors import ClassIndexError
    if value is None:
        return None
    if value in class_names:
        return list(class_names).index(value)
    if value.lstrip("-").isdigit():
        return int(value)
    raise ClassIndexError(f"--class {value!r} is neither a class name ({', '.join(class_names)}) "
                          "nor a class index")


def _say(message: str) -> None:
    print(message, flush=True)


def explain(args) -> None:
    from components.explain import activations, filters, gradcam, images, render
    from components.explain.model_graph import ModelGraph, first_conv_of_each_block
    from components.explain.model_loading import load_class_names, load_keras_model
    from components.image_shape import ImageShape

    if not os.path.isfile(args.image):
        images.load_image(args.image)  # fails at once, naming the file, before the model loads
    started = time.monotonic()
    graph = ModelGraph(load_keras_model(args.model))
    class_names = _names(args.class_names) or load_class_names(args.model) or [
        str(index) for index in range(max(2, int(graph.model.outputs[0].shape[-1])))]
    requested_class = _class_index(args.class_, class_names)
    image = images.load_image(args.image, ImageShape.of(graph.input_shape))
    _say(f"model '{graph.model.name}': {len(graph.conv_layers)} conv layers "
         f"({time.monotonic() - started:.1f}s to load)")

    activation_layers = _names(args.layers) or graph.feature_layers
    filter_layers = _names(args.filter_layers) or first_conv_of_each_block(graph)
    gradcam_layer = args.gradcam_layer or graph.last_conv_layer
    graph.check_layers(activation_layers, graph.feature_layers)
    graph.check_layers(filter_layers, graph.feature_layers)
    graph.check_layers([gradcam_layer], graph.conv_layers)
    os.makedirs(args.out, exist_ok=True)

    if "gradcam" in args.what:
        result = gradcam.GradCam(graph, gradcam_layer).explain(image.model_input, requested_class)
        name = (class_names[result.class_index] if result.class_index < len(class_names)
                else str(result.class_index))
        images.save_png(render.superimpose(image.original, result.heatmap),
                        os.path.join(args.out, "gradcam.png"))
        heat = render.apply_colormap((result.heatmap * 255).astype("uint8"), "jet")
        images.save_png(heat, os.path.join(args.out, "gradcam_heatmap.png"))
        probabilities = ", ".join(f"{class_names[i] if i < len(class_names) else i}="
                                  f"{p:.3f}" for i, p in enumerate(result.probabilities))
        _say(f"Grad-CAM over {gradcam_layer} for class '{name}' (p={result.class_score:.3f}; "
             f"{probabilities}) -> {os.path.join(args.out, 'gradcam.png')}")

    if "activations" in args.what:
        folder = os.path.join(args.out, "activations")
        for index, (layer, activation) in enumerate(
                activations.layer_activations(graph, image.model_input, activation_layers).items()):
            path = os.path.join(folder, f"{index:02d}_{layer}.png")
            images.save_png(render.activation_grid(
                activation, title=f"{layer}: {activation.shape[-1]} channels, "
                                  f"{activation.shape[0]}x{activation.shape[1]}"), path)
        _say(f"activations of {len(activation_layers)} layers -> {folder}")

    if "filters" in args.what:
        folder = os.path.join(args.out, "filters")
        config = filters.FilterPatternConfig(steps=args.filter_steps, size=args.filter_size)
        for layer in filter_layers:
            layer_started = time.monotonic()

            def progress(done, total, layer=layer):
                _say(f"  filter patterns {layer}: {done}/{total} "
                     f"({time.monotonic() - layer_started:.0f}s)")

            patterns = filters.filter_patterns(graph, layer, args.filters, config, progress)
            path = images.save_png(render.pattern_grid(
                patterns.patterns, title=f"{layer}: filters 0-{len(patterns.patterns) - 1}"),
                os.path.join(folder, f"{layer}.png"))
            _say(f"filter patterns of {layer} -> {path}")


def run(args) -> int:
    from components.explain.errors import ExplainError
    if args.filters < 1 or args.filter_steps < 0 or args.filter_size < 8:
        print("catsdogs explain: error: --filters must be >= 1, --filter-steps >= 0 and "
              "--filter-size >= 8", file=sys.stderr)
        return 2
    try:
        explain(args)
    except ExplainError as error:
        print(f"catsdogs explain: error: {error}", file=sys.stderr)
        return 2
    return 0

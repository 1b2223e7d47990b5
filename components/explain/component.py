"""ExplainGallery: a TFX component (Python-function style) run after each Trainer.

Inputs: the Trainer's model and ImageExampleGen's examples (the test split);
output: an HtmlPage artifact (components/html_artifact.py), an HTML page with Grad-CAM of a fixed
set of test images (misclassified first), one activation grid and one layer's
filter patterns. Its type name is KFP v2's `system.HTML`, so Kubeflow's UI
renders the page (it reads the file at the artifact's URI); locally the
artifact is a directory holding index.html and the PNGs, and the page's path
is printed.
"""

from absl import logging
from tfx import v1 as tfx
from tfx.types import artifact_utils

from components import contract
from components.explain import gallery
from components.explain.model_graph import ModelGraph
from components.explain.model_loading import load_keras_model
from components.formats import examples as examples_format
from components.html_artifact import HtmlPage

GALLERY_DEFAULTS = gallery.GalleryConfig()


@tfx.dsl.components.component
def ExplainGallery(
        model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
        gallery_page: tfx.dsl.components.OutputArtifact[HtmlPage],
        max_images: tfx.dsl.components.Parameter[int] = GALLERY_DEFAULTS.max_images,
        activation_layer: tfx.dsl.components.Parameter[str] = GALLERY_DEFAULTS.activation_layer,
        filter_layer: tfx.dsl.components.Parameter[str] = GALLERY_DEFAULTS.filter_layer,
        filter_count: tfx.dsl.components.Parameter[int] = GALLERY_DEFAULTS.filter_count,
        filter_size: tfx.dsl.components.Parameter[int] = GALLERY_DEFAULTS.filter_size,
):
    """Grad-CAM, activations and filter patterns of the trained model, as one HTML page."""
    class_names = examples_format.class_names(examples.uri)
    split_uri = artifact_utils.get_split_uri([examples], contract.TEST_SPLIT)
    selection = examples_format.fixed_selection(list(examples_format.read_images(split_uri)), max_images)
    graph = ModelGraph(load_keras_model(model.uri))
    config = gallery.GalleryConfig(max_images=max_images, activation_layer=activation_layer,
                                   filter_layer=filter_layer, filter_count=filter_count,
                                   filter_size=filter_size)
    page = gallery.build_gallery(graph, selection, class_names, config,
                                 title=f"What {graph.model.name} looks at",
                                 source=model.uri, log=logging.info)
    path = gallery.write_gallery(page, class_names, gallery_page.uri)
    wrong = sum(e.misclassified for e in page.entries)
    gallery_page.set_string_custom_property("display_name", f"explanations of {graph.model.name}")
    gallery_page.set_string_custom_property("index_html", path)
    gallery_page.set_int_custom_property("images", len(page.entries))
    gallery_page.set_int_custom_property("misclassified", wrong)
    logging.info("Explanation gallery (%d test images, %d misclassified, %.1fs): %s",
                 len(page.entries), wrong, page.seconds, path)

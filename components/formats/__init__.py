"""The file formats several layers share, each read and written in one place:
ImageExampleGen's Examples artifact, TF Serving's model base path (integer
version folders), warmup records, and images inlined in HTML pages.

Every layer (components, pipeline, serving, benchmarks, tests) may import
these modules; they import nothing from the rest of the project but
components.contract.
"""

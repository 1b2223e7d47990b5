"""Pushing blessed models into TF Serving's model base path.

Layout: <serving base>/<served name>/<integer version>/ holding a SavedModel and
assets.extra/tf_serving_warmup_requests. A version becomes visible to a polling
server only when complete (staged in a hidden folder and renamed, or, on object
stores without directory rename, saved_model.pb written last).
"""

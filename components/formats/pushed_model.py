"""The Pusher's PushedModel artifact: custom property names, written by the
Pusher and read by the run summary (and anyone reading ML Metadata)."""
PUSHED_KEY, DESTINATION_KEY, VERSION_KEY = "pushed", "pushed_destination", "pushed_version"
ALREADY_SERVING_KEY = "already_serving"
REASON_KEY = "reason"
MODEL_NAME_KEY = "model_name"  # as the EvaluationReport's, so run summaries can pair them

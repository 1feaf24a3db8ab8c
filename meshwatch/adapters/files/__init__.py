"""Files: the settings file, Istio manifests, rolling Parquet captures of calls, models
(skops + card) and learning checkpoints in the state directory."""

"""Files: the settings file and the rolling Parquet captures of calls."""

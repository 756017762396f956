"""The ECoS migration simulator: a YAML scenario in, a Parquet event log out."""

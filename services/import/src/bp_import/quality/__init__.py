"""Episode quality: metrics, dataset gates, and the report (JSON, HTML, plots, contact sheet)."""

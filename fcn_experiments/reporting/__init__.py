"""What a run reports: results files, tables and figures."""

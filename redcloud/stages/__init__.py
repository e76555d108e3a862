"""Stage runners: read inputs, call spark_jobs transforms, gate, write (IO at the edges)."""

"""Spark jobs: pure functions from DataFrames to DataFrames (IO lives in redcloud.pipeline and redcloud.lake).

Only the Spark Connect-compatible surface is used (DataFrame API and Spark SQL; no RDDs, no SparkContext).
"""

"""Local processes the project starts and stops: PostgreSQL, the web reference server, ..."""

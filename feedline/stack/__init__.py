"""Run the real stack (PostgreSQL, Redis, Kafka, Connect + Debezium, Cassandra) without Docker.

Maven poms and configuration templates live in the repository's ``stack/`` folder, beside
``docker/``; data, logs, pid files and the resolved jars live under the var dir
(``FEEDLINE_VAR_DIR``). Entry points: ``feedline stack up|down|status|clean``.
"""

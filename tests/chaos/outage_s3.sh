#!/usr/bin/env bash
# The scaled deployment (agent -> collector -> Kafka -> indexer -> OpenSearch
# + S3 -> queryd) under a steady load while s3 is stopped for 60 s
# (tests/services/s3 stop, then start: its state is kept). The collector's
# ingest must answer 200 throughout; afterwards every line is found exactly
# once through queryd's search. ~100 s.
# services: kafka opensearch s3
. "$(dirname "$0")/chaos_lib.sh"
chaos_outage s3 60

#!/usr/bin/env bash
# The scaled deployment (agent -> collector -> Kafka -> indexer -> OpenSearch
# + S3 -> queryd) under a steady load while opensearch is stopped for 120 s
# (tests/services/opensearch stop, then start: its state is kept). The collector's
# ingest must answer 200 throughout; afterwards every line is found exactly
# once through queryd's search. ~160 s.
# services: kafka opensearch s3
. "$(dirname "$0")/chaos_lib.sh"
chaos_outage opensearch 120

/* stages_fixture.h - indexer stages from a YAML snippet for the unit tests
 * of the pipeline and the ledger (defined in test_indexer_pipeline.c):
 * the patterns come from config/patterns, the sink names from sinks. Fails
 * the running test when the YAML or the stages are refused. */
#ifndef LH_TEST_STAGES_FIXTURE_H
#define LH_TEST_STAGES_FIXTURE_H

#include <stddef.h>

#include "../../indexer/sink.h"
#include "../../indexer/stages.h"

struct lh_stages *lh_test_stages(const char *yaml, struct lh_sink **sinks, size_t n);

#endif

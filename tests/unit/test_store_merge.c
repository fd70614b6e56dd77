/* test_store_merge.c - unit tests of the store's merge as a recompression
 * step: segments appends wrote (fast zstd level, small blocks) are rewritten
 * once at the merge level with larger blocks, holding the same events. */
#include "../lh_test.h"
#include "store_testlib.h"

#include "lh/store.h"

TEST(store_merge_recompresses_appended_segments_once)
{
    struct lh_arena a = LH_ARENA_INIT;
    struct lh_store_config cfg = { 0 };
    cfg.dir = (char *)lh_test_tmpdir();
    cfg.zstd_level = 1;
    cfg.block_events = 100;
    cfg.segment_bytes = 256 * 1024;
    cfg.merge_min_bytes = 1024;           /* every merged output counts as large */
    struct lh_store *s = NULL;
    struct lh_err err = { 0 };
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct tgen g = { 4242, &a, 0, { 0 }, 0 };
    size_t total = 0;
    for (int b = 0; b < 12; b++) {
        struct lh_event evs[250];
        tg_new_batch(&g);
        for (int i = 0; i < 250; i++)
            tg_event(&g, &evs[i], "mz", TBASE, TDAY);
        REQUIRE_INT(lh_store_append(s, evs, 250, NULL, &err), ==, 0);
        total += 250;
    }
    lh_store_close(s);   /* seals the active segment */

    cfg.merge_zstd_level = 19;
    cfg.merge_block_bytes = 8u << 20;
    cfg.block_events = 16384;
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct lh_store_report *before = NULL, *after = NULL;
    REQUIRE_INT(lh_store_inspect(s, 0, &before, &err), ==, 0);
    REQUIRE_INT(before->events, ==, total);
    CHECK(before->parts[0].segments >= 2);
    struct lh_event *want;
    REQUIRE_INT(tq_all_by_id(s, "mz", &a, &want), ==, total);

    struct lh_store_maint_stats st = { 0 };
    REQUIRE_INT(lh_store_merge(s, &st, &err), ==, 0);
    CHECK_INT(st.segments_merged, ==, before->parts[0].segments);
    CHECK(st.segments_written >= 1);
    REQUIRE_INT(lh_store_inspect(s, 1, &after, &err), ==, 0);
    CHECK_INT(after->nproblems, ==, 0);
    CHECK_INT(after->events, ==, total);
    CHECK(after->blocks < before->blocks);
    /* level 19 and whole blocks against level 1 and blocks of 100 events */
    CHECK(after->disk_bytes * 10 < before->disk_bytes * 9);
    struct lh_event *got;
    REQUIRE_INT(tq_all_by_id(s, "mz", &a, &got), ==, total);
    size_t bad = 0;
    for (size_t i = 0; i < total; i++)
        bad += !ref_event_eq(&got[i], &want[i]);
    CHECK_INT(bad, ==, 0);

    /* merged segments are left alone: a second pass rewrites nothing */
    struct lh_store_maint_stats st2 = { 0 };
    REQUIRE_INT(lh_store_merge(s, &st2, &err), ==, 0);
    CHECK_INT(st2.segments_merged, ==, 0);
    CHECK_INT(st2.segments_written, ==, 0);

    /* a lone appended segment is recompressed too */
    struct lh_event evs[20];
    tg_new_batch(&g);
    for (int i = 0; i < 20; i++)
        tg_event(&g, &evs[i], "mz", TBASE, TDAY);
    REQUIRE_INT(lh_store_append(s, evs, 20, NULL, &err), ==, 0);
    lh_store_close(s);
    REQUIRE_INT(lh_store_open(&s, &cfg, LH_STORE_WRITE, &err), ==, 0);
    struct lh_store_maint_stats st3 = { 0 };
    REQUIRE_INT(lh_store_merge(s, &st3, &err), ==, 0);
    CHECK_INT(st3.segments_merged, ==, 1);
    CHECK_INT(st3.segments_written, ==, 1);
    struct lh_store_query q = { .tenant = "mz" };
    uint64_t n = 0;
    REQUIRE_INT(lh_store_count(s, &q, &n, &err), ==, 0);
    CHECK_INT(n, ==, total + 20);
    lh_store_report_free(before);
    lh_store_report_free(after);
    lh_store_close(s);
    lh_arena_free(&a);
}

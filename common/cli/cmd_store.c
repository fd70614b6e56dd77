/* cmd_store.c - `loghaul store inspect|verify DIR`: what the embedded
 * store holds (per-partition sizes, blocks, events, compression) and,
 * with verify, a check of every block's checksums and columns. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lh/store.h"

static void store_usage(FILE *f)
{
    fputs("usage: loghaul store inspect DIR\n"
          "       loghaul store verify DIR\n"
          "\n"
          "inspect  per tenant and day: segments, blocks, events, bytes on disk, event\n"
          "         bytes and the compression ratio, time span\n"
          "verify   the same, after checking every block's checksums and decoding its\n"
          "         columns; each problem is listed; exit status 1 when any was found\n"
          "\n"
          "The directory is opened read-only: safe while the indexer writes to it.\n", f);
}

static int store_run(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        store_usage(stdout);
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "inspect") != 0 && strcmp(argv[1], "verify") != 0)) {
        store_usage(stderr);
        return 2;
    }
    int verify = strcmp(argv[1], "verify") == 0;
    struct lh_store_config cfg = { .dir = argv[2] };
    struct lh_store *s = NULL;
    struct lh_store_report *r = NULL;
    struct lh_err err = { 0 };
    if (lh_store_open(&s, &cfg, LH_STORE_READ, &err) < 0 ||
        lh_store_inspect(s, verify, &r, &err) < 0) {
        fprintf(stderr, "loghaul store %s %s: %s\n", argv[1], argv[2], err.msg);
        lh_store_close(s);
        return 1;
    }
    lh_store_report_print(r, stdout);
    int code = 0;
    if (verify) {
        if (r->corrupt_blocks || r->nproblems) {
            printf("verify: %llu corrupt block(s), %zu problem(s)\n",
                   (unsigned long long)r->corrupt_blocks, r->nproblems);
            code = 1;
        } else {
            printf("verify: OK, %llu blocks checked\n", (unsigned long long)r->blocks);
        }
    }
    lh_store_report_free(r);
    lh_store_close(s);
    return code;
}

const struct lh_cli_command lh_cli_store = {
    .name = "store",
    .summary = "inspect or verify an embedded store directory",
    .run = store_run,
    .usage = store_usage,
};

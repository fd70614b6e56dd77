/* cli.h - the subcommands of the `loghaul` tool. Each lives in a file of its
 * own (cmd_<name>.c) and is listed once in the table in loghaul.c. */
#ifndef LH_CLI_H
#define LH_CLI_H

#include <stdio.h>

struct lh_cli_command {
    const char *name;        /* "search", "dlq" */
    const char *summary;     /* one line for `loghaul --help` */
    /* argv[0] is the command name; returns the exit status. */
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *f);
};

extern const struct lh_cli_command lh_cli_dlq;
extern const struct lh_cli_command lh_cli_search;
extern const struct lh_cli_command lh_cli_tail;
extern const struct lh_cli_command lh_cli_aggregate;
extern const struct lh_cli_command lh_cli_store;
extern const struct lh_cli_command lh_cli_audit;

#endif

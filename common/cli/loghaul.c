/* loghaul.c - the loghaul command-line tool: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lh/daemon.h"

/* Add a subcommand here (and its cmd_<name>.c beside this file). */
static const struct lh_cli_command *const commands[] = {
    &lh_cli_dlq,
    &lh_cli_search,
    &lh_cli_tail,
    &lh_cli_aggregate,
    &lh_cli_store,
    &lh_cli_audit,
    NULL,
};

static void usage(FILE *f)
{
    fputs("usage: loghaul <command> [options]\n"
          "       loghaul help <command>\n"
          "       loghaul --version\n\ncommands:\n", f);
    for (size_t i = 0; commands[i]; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
}

static const struct lh_cli_command *find(const char *name)
{
    for (size_t i = 0; commands[i]; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("loghaul %s\n", LH_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) {
        const struct lh_cli_command *c = argc > 2 ? find(argv[2]) : NULL;
        if (!c) {
            usage(argc > 2 ? stderr : stdout);
            return argc > 2 ? 2 : 0;
        }
        c->usage(stdout);
        return 0;
    }
    const struct lh_cli_command *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "loghaul: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}

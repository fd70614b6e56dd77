/* main.c - loghaul-indexer entry point. */
#include "indexer.h"

int main(int argc, char **argv)
{
    return lh_daemon_main(argc, argv, &lh_indexer_ops);
}

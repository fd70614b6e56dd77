/* main.c - loghaul-collector entry point. */
#include <stdlib.h>

#include "collector.h"

int main(int argc, char **argv)
{
    /* Workers block on the bus's group commit: more of them lets more
     * batches share one fsync. Must be set before libuv's pool starts. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    return lh_daemon_main(argc, argv, &lh_collector_ops);
}

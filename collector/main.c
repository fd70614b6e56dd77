/* main.c - loghaul-collector entry point. */
#include <malloc.h>
#include <stdlib.h>

#include "collector.h"

int main(int argc, char **argv)
{
    /* Workers block on the bus's group commit: more of them lets more
     * batches share one fsync. Must be set before libuv's pool starts. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    /* Each request allocates a few MB (the decompressed body, the encoded
     * events) and frees them: keep that memory in the workers' heaps
     * instead of mapping it and handing it back to the kernel every time
     * (page faults and zeroing cost about a quarter of the CPU per MB). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    return lh_daemon_main(argc, argv, &lh_collector_ops);
}

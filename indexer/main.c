/* main.c - loghaul-indexer entry point. */
#include "lh/log.h"

int main(void)
{
    lh_info("loghaul-indexer");
    return 0;
}

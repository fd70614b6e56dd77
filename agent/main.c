/* main.c - loghaul-agent entry point. */
#include "lh/log.h"

int main(void)
{
    lh_info("loghaul-agent");
    return 0;
}

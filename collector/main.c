/* main.c - loghaul-collector entry point. */
#include "lh/log.h"

int main(void)
{
    lh_info("loghaul-collector");
    return 0;
}

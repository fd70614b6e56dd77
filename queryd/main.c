/* main.c - loghaul-queryd entry point. */
#include "lh/log.h"

int main(void)
{
    lh_info("loghaul-queryd");
    return 0;
}

/* main.c - loghaul-queryd entry point. */
#include "queryd.h"

int main(int argc, char **argv)
{
    return lh_daemon_main(argc, argv, &lh_queryd_ops);
}

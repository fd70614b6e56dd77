/* loghaul.c - the loghaul command-line tool. */
#include <stdio.h>

int main(void)
{
    puts("loghaul");
    return 0;
}

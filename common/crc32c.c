/* crc32c.c - CRC-32C over ISA-L's crc32_iscsi (see lh/crc32c.h). */
#include "lh/crc32c.h"

#include <isa-l.h>
#include <limits.h>

/* crc32_iscsi(buf, len, init) neither inverts its initial value nor its
 * result, so the standard (pre- and post-inverted) CRC-32C is
 * ~crc32_iscsi(buf, len, ~crc). Its length is an int: feed it in chunks. */
uint32_t lh_crc32c(uint32_t crc, const void *p, size_t n)
{
    unsigned char *b = (unsigned char *)(uintptr_t)p;   /* ISA-L takes a non-const pointer */
    uint32_t c = ~crc;
    while (n) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX & ~63 : (int)n;
        c = crc32_iscsi(b, chunk, c);
        b += chunk;
        n -= (size_t)chunk;
    }
    return ~c;
}

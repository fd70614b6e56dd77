/* crc32c.h - CRC-32C (Castagnoli, iSCSI polynomial 0x1EDC6F41) via ISA-L.
 *
 * The standard CRC-32C as used by iSCSI, ext4, Kafka record batches:
 * lh_crc32c(0, "123456789", 9) == 0xE3069283. Pure functions of their
 * arguments: thread-safe, no allocation. */
#ifndef LH_CRC32C_H
#define LH_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (the value returned for the preceding bytes; 0 to start) with
 * p[0..n) and returns the CRC-32C of everything so far, so
 * lh_crc32c(lh_crc32c(0, a, na), b, nb) == CRC-32C of a followed by b.
 * p may be NULL when n == 0. */
uint32_t lh_crc32c(uint32_t crc, const void *p, size_t n);

#endif

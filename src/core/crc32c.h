/* crc32c.h - CRC-32C (Castagnoli), the wire format's payload checksum. */
#ifndef SPIRT_CRC32C_H
#define SPIRT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a running crc (start with 0). Uses SSE4.2 when the CPU has it. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif

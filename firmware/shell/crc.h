#ifndef SHELL_CRC_H
#define SHELL_CRC_H
#include <stdint.h>
/* crc32_update(0, p, n) is the CRC-32 of p[0..n); chain calls to extend. */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, uint32_t len);
uint8_t crc8(const uint8_t *data, uint32_t len);
#endif

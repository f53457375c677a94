/* CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, init/xorout 0xFFFFFFFF; equals zlib.crc32)
 * and CRC-8 (poly 0x07, init 0x00, no reflection; "CRC-8/SMBUS") used by the serial protocol. */
#include "crc.h"

/* Four bits at a time (a 16-entry table: 64 bytes of flash rather than a byte table's 1 KB; the CRCs are of
 * frames and uploads, never inside an inference). */
static const uint32_t crc32_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t crc32_update(uint32_t crc, const uint8_t *data, uint32_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *data++;
        crc = crc32_nibble[crc & 0xFu] ^ (crc >> 4);
        crc = crc32_nibble[crc & 0xFu] ^ (crc >> 4);
    }
    return ~crc;
}

uint8_t crc8(const uint8_t *data, uint32_t len)
{
    uint8_t crc = 0;
    while (len--) {
        crc ^= *data++;
        for (int i = 0; i < 8; i++) {
            crc = (uint8_t)((crc & 0x80u) ? (((uint32_t)crc << 1) ^ 0x07u) : ((uint32_t)crc << 1));
        }
    }
    return crc;
}

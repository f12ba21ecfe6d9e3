/* fuzz_idx_gz.c: libFuzzer target for the IDX reader (runtime/idx.c) on gzip-compressed files.
 *
 * Random bytes are almost never a valid deflate stream, so the input is an IDX file that the target
 * compresses (gzip format), then damages as the first byte says:
 *   byte 0 = 0          the rest is compressed whole
 *   byte 0 = 1          the rest is the .gz file as is (raw gzip bytes: header flags, CRC, trailer)
 *   byte 0 = 2..127     compressed, then cut to (byte 0 / 128) of its length (a truncated download)
 *   byte 0 = 128..255   compressed, then one byte at (byte 0 - 128) / 128 of its length flipped
 *                       (a corrupt deflate stream or CRC)
 * Build and run: docs/testing.md. */
#include "fuzz_reader.h"

#include <zlib.h>

static size_t gzip_(const uint8_t *src, size_t n, uint8_t **out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    *out = malloc(cap);
    if (!*out) abort();
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) return 0;
    unsigned mode = data[0];
    if (mode == 1) {
        fuzz_read_array(nnc_idx_read, nnc_idx_read_header, data + 1, size - 1);
        return 0;
    }
    uint8_t *gz;
    size_t len = gzip_(data + 1, size - 1, &gz);
    if (mode >= 2 && mode < 128)
        len = len * mode / 128;
    else if (mode >= 128)
        gz[len * (mode - 128) / 128] ^= 0x5a;
    fuzz_read_array(nnc_idx_read, nnc_idx_read_header, gz, len);
    free(gz);
    return 0;
}

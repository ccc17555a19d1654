/* wire.h - the binary format of every tensor that crosses a process boundary.
 *
 * Layout (all integers little-endian), 24-byte header then payload:
 *   off  size  field
 *     0     4  magic   "SPT\x01"
 *     4     2  version (WIRE_VERSION)
 *     6     2  dtype   (wire_dtype)
 *     8     8  count   number of elements
 *    16     4  crc32c  of the payload bytes
 *    20     4  reserved, must be 0
 *    24     .  payload: count elements of dtype, little-endian
 * A sparse update (MLLESS) is encoded as dtype WIRE_SPARSE_F32: count pairs,
 * each a uint32 index followed by a float32 value, plus the dense length in
 * the reserved field.
 * Floats never travel as JSON text: JSON requests carry Redis keys, and the
 * blobs behind those keys are in this format. */
#ifndef SPIRT_WIRE_H
#define SPIRT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define WIRE_MAGIC "SPT\x01"
#define WIRE_VERSION 1
#define WIRE_HEADER_SIZE 24
/* No tensor in spirt is larger than this; a header claiming more is corrupt. */
#define WIRE_MAX_COUNT ((uint64_t)1 << 31)

typedef enum {
    WIRE_F32 = 1,        /* dense float32 */
    WIRE_U8 = 2,         /* raw bytes (dataset pixels) */
    WIRE_I32 = 3,        /* int32 (labels) */
    WIRE_SPARSE_F32 = 4  /* (uint32 index, float32 value) pairs */
} wire_dtype;

typedef struct {
    wire_dtype dtype;
    uint64_t count;      /* elements (pairs for sparse) */
    uint32_t crc;
    uint32_t extra;      /* dense length for sparse tensors, else 0 */
    const uint8_t *payload;
    size_t payload_len;
} wire_view;

/* Bytes per element of a dtype (8 for a sparse pair); 0 if unknown. */
size_t wire_ElemSize(wire_dtype dt);
/* Total encoded size of `count` elements of `dt`. */
size_t wire_EncodedSize(wire_dtype dt, uint64_t count);

/* Writes header + payload into `buf` (capacity `cap`, at least
 * wire_EncodedSize). `data` holds count elements in host order. */
spStatus wire_EncodeInto(uint8_t *buf, size_t cap, wire_dtype dt, const void *data,
                         uint64_t count, uint32_t extra);
/* Allocates and encodes; caller frees *out with free(). */
spStatus wire_Encode(wire_dtype dt, const void *data, uint64_t count, uint32_t extra,
                     uint8_t **out, size_t *out_len);

/* Validates a blob without copying: magic, version, known dtype, count within
 * WIRE_MAX_COUNT, exact length, reserved bits, checksum. Fills `v` to point
 * into `buf`. Every failure is SP_ERR_FORMAT with a message saying which. */
spStatus wire_Parse(const uint8_t *buf, size_t len, wire_view *v);

/* wire_Parse in two halves, for a reader that checksums the payload while
 * it reads it anyway (the Redis module's SPIRT.AVG): every check but the
 * checksum (v->crc is the header's), then a checksum it computed,
 * crc32c(0, v->payload, v->payload_len), against the header's (the same
 * SP_ERR_FORMAT as wire_Parse). */
spStatus wire_ParseUnchecked(const uint8_t *buf, size_t len, wire_view *v);
spStatus wire_CheckCrc(const wire_view *v, uint32_t crc);

/* The payload rules of a parsed WIRE_SPARSE_F32 tensor: at most `extra`
 * (its dense length) pairs, indices strictly increasing and below extra,
 * values finite. SP_ERR_INVALID naming the first pair that breaks one. */
spStatus wire_CheckSparse(const wire_view *v);

/* Parses and copies a dense float32 tensor into a new array. If
 * expect_count != 0 a different count is SP_ERR_INVALID. Rejects NaN/Inf
 * when `reject_nonfinite` is set. */
spStatus wire_DecodeF32(const uint8_t *buf, size_t len, uint64_t expect_count,
                        int reject_nonfinite, float **out, size_t *count);

/* The pieces of the two above, for blobs whose header and payload are not
 * contiguous (the store reads a payload straight into its destination):
 * wire_PutHeader writes a header for a payload (already little-endian)
 * with checksum crc; wire_ParseHeader validates a header alone (magic,
 * version, dtype, count, reserved) and fills v with payload == NULL and
 * payload_len = the bytes the payload must have; wire_CheckPayload checks
 * those bytes against the header's checksum (SP_ERR_FORMAT). */
void wire_PutHeader(uint8_t *hdr, wire_dtype dt, uint64_t count, uint32_t crc, uint32_t extra);
spStatus wire_ParseHeader(const uint8_t *hdr, wire_view *v);
spStatus wire_CheckPayload(const wire_view *v, const uint8_t *payload);
/* Recomputes the checksum of a header+payload in place after the payload was
 * modified directly (used by the Redis module after in-place averaging). */
void wire_Reseal(uint8_t *buf, size_t len);
/* Writes a payload checksum computed elsewhere into the header at buf. */
void wire_SetChecksum(uint8_t *buf, uint32_t crc);

#endif

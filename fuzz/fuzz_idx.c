/* fuzz_idx.c - the IDX loader (dataset_LoadIdx), raw or gzip-compressed.
 *
 * The loader reads two files, so an input is split: its first two bytes
 * (big-endian) give the length of the image file, the rest after it is the
 * label file. fuzz/corpus/fuzz_idx/ seeds use that layout. */
#include "fuzz_dataset.h"

static fz_file g_images, g_labels;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = (size_t)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    if (split > size)
        split = size;
    const char *images = fz_FileSet(&g_images, "images", data, split);
    const char *labels = fz_FileSet(&g_labels, "labels", data + split, size - split);
    dataset d = {0};
    if (dataset_LoadIdx(images, labels, &d) == SP_OK) {
        fz_CheckDataset(&d);
        FZ_CHECK(d.c == 1 && d.h >= 1 && d.w >= 1, "IDX shape %dx%dx%d", d.c, d.h, d.w);
        for (size_t i = 0; i < d.n * d.dim; i++)
            FZ_CHECK(d.x[i] >= 0.0f && d.x[i] <= 1.0f, "pixel %g not in [0,1]", d.x[i]);
        dataset_Free(&d);
    }
    return 0;
}

/* fuzz_libsvm.c - the LibSVM text loader (dataset_LoadLibsvm), plain or
 * gzip-compressed, with the dimension inferred and with a fixed one. */
#include "fuzz_dataset.h"

static fz_file g_file;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_FileSet(&g_file, "libsvm", data, size);
    static const size_t dims[] = {0, 4};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        dataset d = {0};
        if (dataset_LoadLibsvm(path, dims[i], &d) != SP_OK)
            continue;
        fz_CheckDataset(&d);
        if (dims[i])
            FZ_CHECK(d.dim == dims[i], "dim %zu, asked for %zu", d.dim, dims[i]);
        dataset_Free(&d);
    }
    return 0;
}

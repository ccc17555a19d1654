/* fuzz_csv.c - the CSV loader (dataset_LoadCsv), plain or gzip-compressed,
 * with the label in the last column and in the first. */
#include "fuzz_dataset.h"

static fz_file g_file;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_FileSet(&g_file, "csv", data, size);
    static const int label_cols[] = {-1, 0};
    for (size_t i = 0; i < sizeof label_cols / sizeof label_cols[0]; i++) {
        dataset d = {0};
        if (dataset_LoadCsv(path, label_cols[i], &d) != SP_OK)
            continue;
        fz_CheckDataset(&d);
        dataset_Free(&d);
    }
    return 0;
}

/* ctest-label: unit (starts no server) */
/* test_dataset.c - loaders on the real Fashion-MNIST and on malformed files,
 * sharding and epoch shuffles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "data/dataset.h"
#include "fixture.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spirt-test-dataset-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

/* data gzip-compressed into path, less its last `drop` bytes. */
static void write_gz_cut(const char *path, const void *data, size_t len, size_t drop)
{
    char full[600];
    snprintf(full, sizeof full, "%s.full", path);
    write_gz(full, data, len);
    FILE *f = fopen(full, "rb");
    assert_non_null(f);
    static uint8_t gz[1 << 20];
    size_t n = fread(gz, 1, sizeof gz, f);
    fclose(f);
    assert_true(n > drop && n < sizeof gz);
    write_file(path, gz, n - drop);
}

/* The error must name the file and the given location fragment. */
static void assert_error_names(const char *file, const char *where)
{
    const char *msg = sp_LastError();
    if (!strstr(msg, file) || (where && !strstr(msg, where)))
        fail_msg("error \"%s\" should name \"%s\" and \"%s\"", msg, file, where ? where : "");
}

/* ---- IDX ---------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* n images of h*w pixels, pixel (i, j) = (i * 7 + j) % 256. */
static size_t make_images(uint8_t *buf, uint32_t n, uint32_t h, uint32_t w)
{
    put_be32(buf, 0x803);
    put_be32(buf + 4, n);
    put_be32(buf + 8, h);
    put_be32(buf + 12, w);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < h * w; j++)
            buf[16 + i * h * w + j] = (uint8_t)((i * 7 + j) % 256);
    return 16 + (size_t)n * h * w;
}

static size_t make_labels(uint8_t *buf, uint32_t n, int classes)
{
    put_be32(buf, 0x801);
    put_be32(buf + 4, n);
    for (size_t i = 0; i < n; i++)
        buf[8 + i] = (uint8_t)(i % (size_t)classes);
    return 8 + n;
}

static void test_fashion_mnist_real(void **state)
{
    (void)state;
    dataset tr = {0}, te = {0};
    spStatus s = dataset_Open(fx_DatasetDir(), &tr, &te);
    if (s != SP_OK)
        fail_msg("loading %s: %s", fx_DatasetDir(), sp_LastError());
    assert_int_equal(tr.n, 60000);
    assert_int_equal(te.n, 10000);
    assert_int_equal(tr.dim, 784);
    assert_int_equal(te.dim, 784);
    assert_int_equal(tr.h, 28);
    assert_int_equal(tr.w, 28);
    assert_int_equal(tr.c, 1);
    assert_int_equal(tr.classes, 10);
    assert_int_equal(te.classes, 10);
    /* dataset_Open standardizes images with the training set's statistics:
     * mean 0 and unit deviation over every training pixel. */
    double sum = 0, sq = 0;
    for (size_t i = 0; i < tr.n * tr.dim; i++) {
        sum += tr.x[i];
        sq += (double)tr.x[i] * tr.x[i];
    }
    double mean = sum / (double)(tr.n * tr.dim);
    assert_true(fabs(mean) < 1e-3);
    assert_true(fabs(sq / (double)(tr.n * tr.dim) - mean * mean - 1.0) < 1e-3);
    /* The raw loader keeps pixels in [0, 1]. */
    dataset raw = {0};
    char images[512], labels[512];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", fx_DatasetDir());
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", fx_DatasetDir());
    assert_int_equal(dataset_LoadIdx(images, labels, &raw), SP_OK);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < raw.n * raw.dim; i++) {
        if (raw.x[i] < lo)
            lo = raw.x[i];
        if (raw.x[i] > hi)
            hi = raw.x[i];
    }
    assert_true(lo == 0.0f);
    assert_true(hi == 1.0f);
    /* The test split went through the same affine map: te = a * raw + b. */
    size_t j = 1;
    while (j < raw.n * raw.dim && raw.x[j] == raw.x[0])
        j++;
    assert_true(j < raw.n * raw.dim);
    float a = (te.x[j] - te.x[0]) / (raw.x[j] - raw.x[0]);
    float b = te.x[0] - a * raw.x[0];
    assert_true(a > 0);
    for (size_t i = 0; i < raw.n * raw.dim; i += 997)
        assert_true(fabsf(te.x[i] - (a * raw.x[i] + b)) < 1e-4f);
    dataset_Free(&raw);
    /* Fashion-MNIST is balanced: 6000 train and 1000 test images per class. */
    size_t per[10] = {0}, per_te[10] = {0};
    for (size_t i = 0; i < tr.n; i++) {
        assert_in_range(tr.y[i], 0, 9);
        per[tr.y[i]]++;
    }
    for (size_t i = 0; i < te.n; i++) {
        assert_in_range(te.y[i], 0, 9);
        per_te[te.y[i]]++;
    }
    for (int c = 0; c < 10; c++) {
        assert_int_equal(per[c], 6000);
        assert_int_equal(per_te[c], 1000);
    }
    dataset_Free(&tr);
    dataset_Free(&te);
    assert_null(tr.x);
    assert_int_equal(tr.n, 0);
}

static void test_open_by_name(void **state)
{
    (void)state;
    /* Point SPIRT_DATA_DIR at the files, as the fixture does. */
    const char *old = getenv("SPIRT_DATA_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("SPIRT_DATA_DIR", fx_DatasetDir(), 1);
    dataset tr = {0}, te = {0};
    if (dataset_Open("fashion-mnist", &tr, &te) != SP_OK)
        fail_msg("%s", sp_LastError());
    assert_int_equal(tr.n, 60000);
    dataset_Free(&tr);
    dataset_Free(&te);

    /* A name that is nowhere: the error lists where it looked. */
    setenv("SPIRT_DATA_DIR", tmpdir, 1);
    assert_int_equal(dataset_Open("mnist", &tr, &te), SP_ERR_NOT_FOUND);
    assert_error_names(tmpdir, "/usr/share/datasets/mnist");
    assert_null(tr.x);

    if (saved) {
        setenv("SPIRT_DATA_DIR", saved, 1);
        free(saved);
    } else {
        unsetenv("SPIRT_DATA_DIR");
    }
}

static void test_idx_small_raw_and_gz(void **state)
{
    (void)state;
    static uint8_t img[16 + 5 * 12], lab[8 + 5];
    size_t ni = make_images(img, 5, 3, 4), nl = make_labels(lab, 5, 3);
    write_file(tpath("raw-img"), img, ni);
    write_file(tpath("raw-lab"), lab, nl);
    write_gz(tpath("img.gz"), img, ni);
    write_gz(tpath("lab.gz"), lab, nl);
    const char *pairs[2][2] = {{"raw-img", "raw-lab"}, {"img.gz", "lab.gz"}};
    for (int p = 0; p < 2; p++) {
        dataset d = {0};
        char a[512], b[512];
        snprintf(a, sizeof a, "%s", tpath(pairs[p][0]));
        snprintf(b, sizeof b, "%s", tpath(pairs[p][1]));
        if (dataset_LoadIdx(a, b, &d) != SP_OK)
            fail_msg("%s", sp_LastError());
        assert_int_equal(d.n, 5);
        assert_int_equal(d.dim, 12);
        assert_int_equal(d.h, 3);
        assert_int_equal(d.w, 4);
        assert_int_equal(d.classes, 3);
        for (size_t i = 0; i < 5; i++) {
            assert_int_equal(d.y[i], (int)(i % 3));
            for (size_t j = 0; j < 12; j++)
                assert_float_equal(d.x[i * 12 + j], (float)((i * 7 + j) % 256) / 255.0f, 1e-7);
        }
        dataset_Free(&d);
    }
}

static void expect_idx_error(const char *img, const char *lab, const char *bad_file,
                             const char *where)
{
    dataset d = {0};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", tpath(img));
    snprintf(b, sizeof b, "%s", tpath(lab));
    assert_int_equal(dataset_LoadIdx(a, b, &d), SP_ERR_FORMAT);
    assert_error_names(tpath(bad_file), where);
    assert_null(d.x);
    assert_null(d.y);
}

static void test_idx_malformed(void **state)
{
    (void)state;
    static uint8_t img[16 + 5 * 12], lab[8 + 5], lab4[8 + 4];
    size_t ni = make_images(img, 5, 3, 4), nl = make_labels(lab, 5, 3);
    write_file(tpath("img"), img, ni);
    write_file(tpath("lab"), lab, nl);

    /* Truncated by one byte: the offset where data ran out (16 + 60 - 1). */
    write_file(tpath("img-short"), img, ni - 1);
    expect_idx_error("img-short", "lab", "img-short", "byte offset 75");
    /* Cut inside the header. */
    write_file(tpath("img-hdr"), img, 10);
    expect_idx_error("img-hdr", "lab", "img-hdr", "byte offset");
    /* Trailing garbage after the last image. */
    uint8_t more[sizeof img + 1];
    memcpy(more, img, ni);
    more[ni] = 1;
    write_file(tpath("img-long"), more, ni + 1);
    expect_idx_error("img-long", "lab", "img-long", "byte offset 76");
    /* Labels and images swapped: wrong magic. */
    expect_idx_error("lab", "img", "lab", "magic");
    /* Counts differ between the two files. */
    write_file(tpath("lab4"), lab4, make_labels(lab4, 4, 3));
    expect_idx_error("img", "lab4", "lab4", "5 images");
    /* Zero-size images. */
    uint8_t z[16];
    memcpy(z, img, 16);
    put_be32(z + 8, 0);
    write_file(tpath("img-zero"), z, 16);
    expect_idx_error("img-zero", "lab", "img-zero", "size");
    /* A gzip stream cut short: still names the file and an offset. */
    write_gz_cut(tpath("img-cut.gz"), img, ni, 12);
    expect_idx_error("img-cut.gz", "lab", "img-cut.gz", "byte offset");
    /* Only the gzip trailer missing: every row decodes, yet the file is cut. */
    write_gz_cut(tpath("img-notrailer.gz"), img, ni, 8);
    expect_idx_error("img-notrailer.gz", "lab", "img-notrailer.gz", "truncated");
    /* A missing file is NOT_FOUND, not a crash. */
    dataset d = {0};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", tpath("absent"));
    snprintf(b, sizeof b, "%s", tpath("lab"));
    assert_int_equal(dataset_LoadIdx(a, b, &d), SP_ERR_NOT_FOUND);
    assert_error_names(a, NULL);
}

/* ---- LibSVM ------------------------------------------------------------- */

static void test_libsvm_good(void **state)
{
    (void)state;
    write_text(tpath("a.svm"), "+1 1:0.5 3:-2\n"
                               "\n"
                               "# a comment line\n"
                               "-1 2:1e-1 qid:4 4:7 # trailing comment\r\n"
                               "-1\n"
                               "+1 4:1");
    dataset d = {0};
    if (dataset_LoadLibsvm(tpath("a.svm"), 0, &d) != SP_OK)
        fail_msg("%s", sp_LastError());
    assert_int_equal(d.n, 4);
    assert_int_equal(d.dim, 4);
    assert_int_equal(d.classes, 2);
    const float want[4][4] = {{0.5f, 0, -2, 0}, {0, 0.1f, 0, 7}, {0, 0, 0, 0}, {0, 0, 0, 1}};
    const int32_t wy[4] = {1, 0, 0, 1};
    /* held sparse: read the rows expanded */
    const uint32_t all[4] = {0, 1, 2, 3};
    float x[4 * 4];
    int32_t y[4];
    dataset_Gather(&d, 0, all, 4, x, y);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d.y[i], wy[i]);
        assert_int_equal(y[i], wy[i]);
        for (int j = 0; j < 4; j++)
            assert_float_equal(x[i * 4 + j], want[i][j], 1e-7);
    }
    dataset_Free(&d);
    /* An explicit dimension pads; multi-class labels are kept. */
    write_text(tpath("b.svm"), "0 1:1\n2 2:1\n1 1:3\n");
    assert_int_equal(dataset_LoadLibsvm(tpath("b.svm"), 6, &d), SP_OK);
    assert_int_equal(d.dim, 6);
    assert_int_equal(d.classes, 3);
    assert_int_equal(d.y[1], 2);
    float x6[6];
    const uint32_t third = 2;
    dataset_Gather(&d, 0, &third, 1, x6, y);
    assert_float_equal(x6[0], 3.0f, 0);
    dataset_Free(&d);
}

static void expect_libsvm_error(const char *text, size_t dim, const char *where)
{
    write_text(tpath("bad.svm"), text);
    dataset d = {0};
    assert_int_equal(dataset_LoadLibsvm(tpath("bad.svm"), dim, &d), SP_ERR_FORMAT);
    assert_error_names(tpath("bad.svm"), where);
    assert_null(d.x);
}

static void test_libsvm_malformed(void **state)
{
    (void)state;
    expect_libsvm_error("1 1:1\n0 2:2\n1 3=4\n", 0, "bad.svm:3:");
    expect_libsvm_error("1 1:1\n0 0:2\n", 0, "bad.svm:2:");           /* 0-based index */
    expect_libsvm_error("1 1:1\n1 2:x\n", 0, "bad.svm:2:");           /* bad value */
    expect_libsvm_error("1 1:1\n\nfoo 2:1\n", 0, "bad.svm:3:");       /* bad label */
    expect_libsvm_error("1.5 1:1\n", 0, "bad.svm:1:");                /* fractional label */
    expect_libsvm_error("1 1:1\n1 9:1\n", 4, "bad.svm:2:");           /* beyond dim */
    expect_libsvm_error("1 1:nan\n", 0, "bad.svm:1:");                /* not finite */
    expect_libsvm_error("-1 1:1\n1 1:1\n2 1:1\n", 0, "bad.svm:3:");   /* -1 mixed with 2 */
    expect_libsvm_error("\n# nothing\n", 0, "no data");
    static const char bin[] = "1 1:1\n\0\x01\x02\n";
    write_file(tpath("bad.svm"), bin, sizeof bin - 1);
    dataset d = {0};
    assert_int_equal(dataset_LoadLibsvm(tpath("bad.svm"), 0, &d), SP_ERR_FORMAT);
    assert_error_names(tpath("bad.svm"), "bad.svm:2:");
}

/* ---- CSV ---------------------------------------------------------------- */

static void test_csv_good(void **state)
{
    (void)state;
    write_text(tpath("a.csv"), "f1,f2,label\n"
                               "0.5, 1 ,1\n"
                               "-2,3e2,0\r\n"
                               "\n"
                               "4,5,2\n");
    dataset d = {0};
    if (dataset_LoadCsv(tpath("a.csv"), -1, &d) != SP_OK)
        fail_msg("%s", sp_LastError());
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 2);
    assert_int_equal(d.classes, 3);
    assert_int_equal(d.y[0], 1);
    assert_int_equal(d.y[2], 2);
    assert_float_equal(d.x[0], 0.5f, 0);
    assert_float_equal(d.x[3], 300.0f, 0);
    dataset_Free(&d);
    /* Label first, no header. */
    write_text(tpath("b.csv"), "1,0.25,0.75\n0,1,2\n");
    assert_int_equal(dataset_LoadCsv(tpath("b.csv"), 0, &d), SP_OK);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.dim, 2);
    assert_int_equal(d.y[0], 1);
    assert_float_equal(d.x[1], 0.75f, 0);
    assert_float_equal(d.x[3], 2.0f, 0);
    dataset_Free(&d);
}

static void expect_csv_error(const char *text, int col, spStatus want, const char *where)
{
    write_text(tpath("bad.csv"), text);
    dataset d = {0};
    assert_int_equal(dataset_LoadCsv(tpath("bad.csv"), col, &d), want);
    assert_error_names(tpath("bad.csv"), where);
    assert_null(d.x);
}

static void test_csv_malformed(void **state)
{
    (void)state;
    expect_csv_error("a,b,c\n1,2,0\n3,4,1\n5,6\n", -1, SP_ERR_FORMAT, "bad.csv:4:");
    expect_csv_error("1,2,0\n3,x,1\n", -1, SP_ERR_FORMAT, "bad.csv:2:");
    expect_csv_error("1,2,0\n3,4,0.5\n", -1, SP_ERR_FORMAT, "bad.csv:2:");
    expect_csv_error("1,2,0\n3,4,1,\n", -1, SP_ERR_FORMAT, "bad.csv:2:");
    expect_csv_error("1,2,0\n3,,1\n", -1, SP_ERR_FORMAT, "bad.csv:2:");
    expect_csv_error("1,2,0\n3,inf,1\n", -1, SP_ERR_FORMAT, "bad.csv:2:");
    expect_csv_error("h1,h2\n", -1, SP_ERR_FORMAT, "no data");
    expect_csv_error("1,2,0\n", 5, SP_ERR_INVALID, "label column 5");
}

/* ---- dataset_Open on files ---------------------------------------------- */

static void test_open_text_split(void **state)
{
    (void)state;
    char text[1024] = "x,y\n";
    for (int i = 0; i < 13; i++) {
        char line[64];
        snprintf(line, sizeof line, "%d,%d\n", i * 10, i % 4);
        strcat(text, line);
    }
    write_text(tpath("s.csv"), text);
    dataset tr = {0}, te = {0};
    if (dataset_Open(tpath("s.csv"), &tr, &te) != SP_OK)
        fail_msg("%s", sp_LastError());
    /* 13 rows: the last 13/6 = 2 are the test split, in file order. */
    assert_int_equal(tr.n, 11);
    assert_int_equal(te.n, 2);
    assert_float_equal(tr.x[10], 100.0f, 0);
    assert_float_equal(te.x[0], 110.0f, 0);
    assert_float_equal(te.x[1], 120.0f, 0);
    assert_int_equal(te.y[1], 0);
    assert_int_equal(tr.classes, 4);
    assert_int_equal(te.classes, 4);
    dataset_Free(&tr);
    dataset_Free(&te);

    /* Compressed LibSVM works through the same path. */
    const char *svm = "1 1:1\n0 2:1\n1 1:2\n0 2:2\n1 1:3\n0 2:3\n";
    write_gz(tpath("s.svm.gz"), svm, strlen(svm));
    assert_int_equal(dataset_Open(tpath("s.svm.gz"), &tr, &te), SP_OK);
    assert_int_equal(tr.n, 5);
    assert_int_equal(te.n, 1);
    assert_int_equal(te.ptr[1], 1);
    assert_int_equal(te.col[0], 1);
    assert_float_equal(te.val[0], 3.0f, 0);
    dataset_Free(&tr);
    dataset_Free(&te);

    write_text(tpath("tiny.csv"), "1,0\n2,1\n");
    assert_int_equal(dataset_Open(tpath("tiny.csv"), &tr, &te), SP_ERR_INVALID);
    assert_error_names(tpath("tiny.csv"), "too few");
    write_text(tpath("data.bin"), "1,0\n");
    assert_int_equal(dataset_Open(tpath("data.bin"), &tr, &te), SP_ERR_INVALID);
    assert_error_names(tpath("data.bin"), "format");
    assert_int_equal(dataset_Open(tpath("nope.csv"), &tr, &te), SP_ERR_NOT_FOUND);
    assert_error_names(tpath("nope.csv"), NULL);
    /* A directory without IDX files. */
    assert_int_equal(dataset_Open(tmpdir, &tr, &te), SP_ERR_NOT_FOUND);
    assert_error_names(tmpdir, "train-images");
    assert_null(tr.x);
    assert_null(te.x);
}

/* A compressed text file cut short is an error naming the file, whether the
 * cut falls in the data or only takes the gzip trailer: never a shorter
 * dataset trained on as if it were whole. */
static void test_text_gz_truncated(void **state)
{
    (void)state;
    static char csv[64 * 1024], svm[64 * 1024];
    size_t nc = 0, ns = 0;
    for (int i = 0; i < 2000; i++) {
        nc += (size_t)snprintf(csv + nc, sizeof csv - nc, "%d,%d,%d\n", i % 97, i % 13, i % 3);
        ns += (size_t)snprintf(svm + ns, sizeof svm - ns, "%d 1:%d 2:%d\n", i % 3, i % 97,
                               i % 13);
    }
    struct {
        const char *name;
        const char *text;
        size_t len, drop;
    } cases[] = {
        {"cut-half.csv.gz", csv, nc, 0}, {"cut-trailer.csv.gz", csv, nc, 8},
        {"cut-half.svm.gz", svm, ns, 0}, {"cut-trailer.svm.gz", svm, ns, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s", tpath(cases[i].name));
        size_t drop = cases[i].drop;
        if (!drop) { /* half of the compressed bytes */
            write_gz(path, cases[i].text, cases[i].len);
            FILE *f = fopen(path, "rb");
            assert_non_null(f);
            fseek(f, 0, SEEK_END);
            drop = (size_t)ftell(f) / 2;
            fclose(f);
        }
        write_gz_cut(path, cases[i].text, cases[i].len, drop);
        dataset d = {0};
        spStatus st = strstr(path, ".csv") ? dataset_LoadCsv(path, -1, &d)
                                           : dataset_LoadLibsvm(path, 0, &d);
        if (st != SP_ERR_FORMAT)
            fail_msg("%s: status %d (%s)", path, st, sp_LastError());
        assert_error_names(path, "truncated");
        assert_null(d.x);
        dataset tr = {0}, te = {0};
        assert_int_equal(dataset_Open(path, &tr, &te), SP_ERR_FORMAT);
        assert_error_names(path, "truncated");
    }
    /* the whole file reads */
    write_gz(tpath("whole.svm.gz"), svm, ns);
    dataset d = {0};
    assert_int_equal(dataset_LoadLibsvm(tpath("whole.svm.gz"), 0, &d), SP_OK);
    assert_int_equal(d.n, 2000);
    dataset_Free(&d);
}

/* ---- sharding, shuffles, gather ----------------------------------------- */

static void test_shard_range(void **state)
{
    (void)state;
    /* The header's formula on a hand-checked case: 10 rows over 4 shards. */
    const size_t off[4] = {0, 3, 6, 8}, len[4] = {3, 3, 2, 2};
    for (int r = 0; r < 4; r++) {
        size_t o, l;
        dataset_ShardRange(10, 4, r, &o, &l);
        assert_int_equal(o, off[r]);
        assert_int_equal(l, len[r]);
    }
    /* Every row covered exactly once, contiguous, sizes within one. */
    const size_t ns[] = {0, 1, 7, 60000, 60001, 59999};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
        for (int N = 1; N <= 9; N++) {
            size_t next = 0, mn = SIZE_MAX, mx = 0;
            for (int r = 0; r < N; r++) {
                size_t o, l;
                dataset_ShardRange(ns[a], N, r, &o, &l);
                assert_int_equal(o, next);
                next = o + l;
                if (l < mn)
                    mn = l;
                if (l > mx)
                    mx = l;
            }
            assert_int_equal(next, ns[a]);
            assert_true(mx - mn <= 1);
        }
    }
    size_t o = 5, l = 5;
    dataset_ShardRange(10, 4, 4, &o, &l);
    assert_int_equal(l, 0);
    dataset_ShardRange(10, 0, 0, &o, &l);
    assert_int_equal(l, 0);
}

static int is_permutation(const uint32_t *p, size_t n)
{
    uint8_t *seen = calloc(n ? n : 1, 1);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        if (p[i] >= n || seen[p[i]])
            ok = 0;
        else
            seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_epoch_order(void **state)
{
    (void)state;
    const size_t n = 15000;
    uint32_t *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4), *e = malloc(n * 4);
    dataset_EpochOrder(n, 42, 3, 1, a);
    assert_true(is_permutation(a, n));
    dataset_EpochOrder(n, 42, 3, 1, b);
    assert_memory_equal(a, b, n * 4); /* same inputs, same order, in any process */
    dataset_EpochOrder(n, 42, 4, 1, c);
    assert_true(is_permutation(c, n));
    assert_memory_not_equal(a, c, n * 4);
    dataset_EpochOrder(n, 42, 3, 2, e);
    assert_memory_not_equal(a, e, n * 4);
    dataset_EpochOrder(n, 43, 3, 1, e);
    assert_memory_not_equal(a, e, n * 4);
    /* Actually shuffled: few fixed points (about 1 expected). */
    size_t fixed = 0;
    for (size_t i = 0; i < n; i++)
        fixed += a[i] == i;
    assert_true(fixed < 20);
    dataset_EpochOrder(1, 42, 0, 0, a);
    assert_int_equal(a[0], 0);
    dataset_EpochOrder(0, 42, 0, 0, a);
    free(a);
    free(b);
    free(c);
    free(e);
}

static void test_gather(void **state)
{
    (void)state;
    float x[6 * 2];
    int32_t y[6];
    for (int i = 0; i < 6; i++) {
        x[2 * i] = (float)i;
        x[2 * i + 1] = (float)(10 * i);
        y[i] = i % 3;
    }
    dataset d = {.n = 6, .dim = 2, .c = 1, .h = 1, .w = 2, .classes = 3, .x = x, .y = y};
    const uint32_t idx[3] = {2, 0, 1};
    float bx[6];
    int32_t by[3];
    dataset_Gather(&d, 3, idx, 3, bx, by); /* rows 5, 3, 4 */
    const float want[6] = {5, 50, 3, 30, 4, 40};
    assert_memory_equal(bx, want, sizeof want);
    assert_int_equal(by[0], 2);
    assert_int_equal(by[1], 0);
    assert_int_equal(by[2], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_mnist_real),
        cmocka_unit_test(test_open_by_name),
        cmocka_unit_test(test_idx_small_raw_and_gz),
        cmocka_unit_test(test_idx_malformed),
        cmocka_unit_test(test_libsvm_good),
        cmocka_unit_test(test_libsvm_malformed),
        cmocka_unit_test(test_csv_good),
        cmocka_unit_test(test_csv_malformed),
        cmocka_unit_test(test_open_text_split),
        cmocka_unit_test(test_text_gz_truncated),
        cmocka_unit_test(test_shard_range),
        cmocka_unit_test(test_epoch_order),
        cmocka_unit_test(test_gather),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

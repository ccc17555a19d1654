/* layers.c - dense stack, softmax cross-entropy and batched-convolution
 * helpers (see layers.h for layouts). */
#include "ml/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ml/simd.h"

/* Sub-buffers start on 64-byte boundaries so sgemm and vector loops see
 * aligned rows. */
static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }

void layer_FillNormal(float *w, size_t len, float std, uint64_t seed, uint64_t stream)
{
    rng r;
    rng_Seed(&r, seed, stream);
    for (size_t i = 0; i < len; i++)
        w[i] = std * rng_Normal(&r);
}

/* ------------------------------------------------------- vector helpers */

/* dst[0..n) = src[0..n). Runs are short (25 floats for LeNet's conv2), so
 * the tail is one more vector overlapping the last one (rewriting equal
 * values) instead of a scalar loop. */
static inline void run_Copy(float *dst, const float *src, int n)
{
    if (n >= 4) {
        int i = 0;
        for (; i + 4 <= n; i += 4)
            v4_Store(dst + i, v4_Load(src + i));
        if (i < n)
            v4_Store(dst + n - 4, v4_Load(src + n - 4));
    } else {
        for (int i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

/* dst[0..n) += src[0..n) (no overlap trick: adds are not idempotent). */
static inline void run_Add(float *dst, const float *src, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        v4_Store(dst + i, v4_Load(dst + i) + v4_Load(src + i));
    for (; i < n; i++)
        dst[i] += src[i];
}

/* ---------------------------------------------------------------- dense */

size_t dense_ParamCount(const dense_stack *d)
{
    size_t total = 0;
    for (int l = 0; l < d->n_layers; l++)
        total += (size_t)d->sizes[l + 1] * (size_t)d->sizes[l] + (size_t)d->sizes[l + 1];
    return total;
}

void dense_Init(const dense_stack *d, float *params, uint64_t seed, uint64_t stream0)
{
    float *p = params;
    for (int l = 0; l < d->n_layers; l++) {
        size_t fi = (size_t)d->sizes[l], fo = (size_t)d->sizes[l + 1];
        /* He keeps ReLU activations' variance constant through depth; the
         * last layer feeds softmax, where Xavier's smaller scale starts the
         * logits near uniform. */
        float std = (l + 1 < d->n_layers) ? sqrtf(2.0f / (float)fi)
                                          : sqrtf(2.0f / (float)(fi + fo));
        layer_FillNormal(p, fo * fi, std, seed, stream0 + (uint64_t)l);
        memset(p + fo * fi, 0, fo * sizeof(float));
        p += fo * fi + fo;
    }
}

/* Scratch: the output of every layer (the last one is the logits), then two
 * ping-pong buffers for the hidden layers' gradients. */
typedef struct {
    float *act[DENSE_MAX_LAYERS];
    float *ping[2];
} dense_views;

static size_t dense_Layout(const dense_stack *d, int n, float *scratch, dense_views *v)
{
    size_t off = 0, maxw = 0;
    for (int l = 0; l < d->n_layers; l++) {
        if (v)
            v->act[l] = scratch + off;
        off += up16((size_t)n * (size_t)d->sizes[l + 1]);
        if (l + 1 < d->n_layers && (size_t)d->sizes[l + 1] > maxw)
            maxw = (size_t)d->sizes[l + 1];
    }
    for (int i = 0; i < 2; i++) {
        if (v)
            v->ping[i] = scratch + off;
        off += up16((size_t)n * maxw);
    }
    return off;
}

size_t dense_ScratchFloats(const dense_stack *d, int n) { return dense_Layout(d, n, NULL, NULL); }

static void bias_Add(float *y, int n, int width, const float *b, int relu)
{
    const v4f zero = v4_Splat(0.0f);
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * (size_t)width;
        int j = 0;
        for (; j + 4 <= width; j += 4) {
            v4f v = v4_Load(row + j) + v4_Load(b + j);
            v4_Store(row + j, relu ? v4_Max(v, zero) : v);
        }
        for (; j < width; j++) {
            float v = row[j] + b[j];
            row[j] = (relu && v < 0.0f) ? 0.0f : v;
        }
    }
}

float *dense_Forward(const dense_stack *d, const float *params, const float *x, int n,
                     float *scratch)
{
    dense_views v;
    dense_Layout(d, n, scratch, &v);
    const float *in = x, *p = params;
    for (int l = 0; l < d->n_layers; l++) {
        int fi = d->sizes[l], fo = d->sizes[l + 1];
        const float *W = p, *b = p + (size_t)fo * (size_t)fi;
        p = b + fo;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, fo, fi, 1.0f, in, fi, W, fi,
                    0.0f, v.act[l], fo);
        bias_Add(v.act[l], n, fo, b, l + 1 < d->n_layers);
        in = v.act[l];
    }
    return v.act[d->n_layers - 1];
}

/* Column sums of dz (n x width) into db: the bias gradient. */
static void bias_Grad(const float *dz, int n, int width, float *db, int accumulate)
{
    if (!accumulate)
        memset(db, 0, (size_t)width * sizeof(float));
    for (int i = 0; i < n; i++)
        run_Add(db, dz + (size_t)i * (size_t)width, width);
}

void dense_Backward(const dense_stack *d, const float *params, const float *x, int n,
                    float *scratch, float *grad, int accumulate, float *dx)
{
    dense_views v;
    dense_Layout(d, n, scratch, &v);
    size_t off[DENSE_MAX_LAYERS], o = 0;
    for (int l = 0; l < d->n_layers; l++) {
        off[l] = o;
        o += (size_t)d->sizes[l + 1] * (size_t)d->sizes[l] + (size_t)d->sizes[l + 1];
    }
    float *dz = v.act[d->n_layers - 1];
    for (int l = d->n_layers - 1; l >= 0; l--) {
        int fi = d->sizes[l], fo = d->sizes[l + 1];
        const float *W = params + off[l];
        float *gW = grad + off[l], *gb = gW + (size_t)fo * (size_t)fi;
        const float *in = l == 0 ? x : v.act[l - 1];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fo, fi, n, 1.0f, dz, fo, in, fi,
                    accumulate ? 1.0f : 0.0f, gW, fi);
        bias_Grad(dz, n, fo, gb, accumulate);
        float *dst = l == 0 ? dx : v.ping[l & 1];
        if (!dst)
            break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, fi, fo, 1.0f, dz, fo, W, fi,
                    0.0f, dst, fi);
        if (l == 0)
            break;
        /* Through the ReLU: the stored activation is 0 exactly where it clipped. */
        size_t len = (size_t)n * (size_t)fi, i = 0;
        const float *a = v.act[l - 1];
        const v4f zero = v4_Splat(0.0f);
        for (; i + 4 <= len; i += 4)
            v4_Store(dst + i, v4_Select(v4_Load(a + i) > zero, v4_Load(dst + i), zero));
        for (; i < len; i++)
            dst[i] = a[i] > 0.0f ? dst[i] : 0.0f;
        dz = dst;
    }
}

/* ----------------------------------------------------------------- loss */

static int row_Argmax(const float *row, int classes)
{
    int best = 0;
    for (int j = 1; j < classes; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

double layer_SoftmaxXent(float *logits, const int32_t *y, int n, int classes,
                         float grad_scale, int *correct)
{
    double total = 0.0;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        float *row = logits + (size_t)i * (size_t)classes;
        int best = row_Argmax(row, classes);
        hits += best == y[i];
        float mx = row[best];
        double sum = 0.0;
        for (int j = 0; j < classes; j++)
            sum += exp((double)(row[j] - mx));
        double lse = log(sum);
        total += lse - (double)(row[y[i]] - mx);
        if (grad_scale != 0.0f) {
            for (int j = 0; j < classes; j++)
                row[j] = grad_scale * (float)exp((double)(row[j] - mx) - lse);
            row[y[i]] -= grad_scale;
        }
    }
    if (correct)
        *correct = hits;
    return total;
}

double layer_MulticlassHinge(float *logits, const int32_t *y, int n, int classes,
                             float grad_scale, int *correct)
{
    double total = 0.0;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        float *row = logits + (size_t)i * (size_t)classes;
        int rival = y[i] == 0 ? 1 : 0;
        for (int j = rival + 1; j < classes; j++)
            if (j != y[i] && row[j] > row[rival])
                rival = j;
        hits += row_Argmax(row, classes) == y[i];
        double margin = 1.0 + (double)row[rival] - (double)row[y[i]];
        if (margin > 0)
            total += margin;
        if (grad_scale != 0.0f) {
            int yi = y[i];
            for (int j = 0; j < classes; j++)
                row[j] = 0.0f;
            if (margin > 0) {
                row[rival] = grad_scale;
                row[yi] = -grad_scale;
            }
        }
    }
    if (correct)
        *correct = hits;
    return total;
}

/* ------------------------------------------------------------ conv CNHW */

conv_geom conv_Geom(int c, int h, int w, int k, int pad)
{
    conv_geom g;
    g.c = c;
    g.h = h;
    g.w = w;
    g.k = k;
    g.pad = pad;
    g.oh = h + 2 * pad - k + 1;
    g.ow = w + 2 * pad - k + 1;
    g.ph = g.oh / 2;
    g.pw = g.ow / 2;
    g.qh = (h + 2 * pad + 1) / 2;
    return g;
}

/* Phase images, pre-shifted. Output (q, s, py, px) of kernel tap (ky, kx)
 * reads padded row 2*py + dy + ky = 2*(py + a) + e and padded column
 * 2*px + dx + kx = 2*(px + b) + f. So for one channel, image
 * [e][f][b][s] of qh x pw floats, element (Y, px) = padded (2Y + e, 2(px + b) + f),
 * holds every input a tap needs, and the ph x pw outputs of sample s for
 * (tap, q) are ONE contiguous block of it starting at row a: im2col becomes
 * a few long copies instead of many short strided ones. */
static int shifts(const conv_geom *g) { return g->k / 2 + 1; }

/* Phase rows are staged on the stack; conv_Geom callers keep planes far
 * below this (the CNN caps image sides at 512). */
#define CONV_MAX_QW 512

size_t conv_PhaseFloats(const conv_geom *g, int n)
{
    return 4 * (size_t)shifts(g) * (size_t)n * (size_t)g->qh * (size_t)g->pw;
}

static size_t phase_Index(const conv_geom *g, int n, int e, int f, int b, int s)
{
    return ((((size_t)(2 * e + f) * (size_t)shifts(g) + (size_t)b) * (size_t)n + (size_t)s) *
            (size_t)g->qh) * (size_t)g->pw;
}

/* Columns 2*X + f - pad, X = 0..qw-1, of one input row (0 outside it):
 * one parity of the padded row, the source of every b-shifted copy. */
static void row_Split(const conv_geom *g, const float *row, int f, float *out, int qw)
{
    for (int X = 0; X < qw; X++) {
        int x = 2 * X + f - g->pad;
        out[X] = (row && x >= 0 && x < g->w) ? row[x] : 0.0f;
    }
}

/* One channel; sample s's plane starts at in_c + s * sample_stride. */
static void phase_Split(const conv_geom *g, int n, const float *in_c, size_t sample_stride,
                        float *phase)
{
    const int nb = shifts(g), qw = g->pw + nb - 1;
    float half[CONV_MAX_QW];
    for (int e = 0; e < 2; e++)
        for (int f = 0; f < 2; f++)
            for (int s = 0; s < n; s++) {
                const float *src = in_c + (size_t)s * sample_stride;
                float *d0 = phase + phase_Index(g, n, e, f, 0, s);
                const size_t bstride = (size_t)n * (size_t)g->qh * (size_t)g->pw;
                for (int Y = 0; Y < g->qh; Y++) {
                    int y = 2 * Y + e - g->pad;
                    const float *row = (y >= 0 && y < g->h) ? src + (size_t)y * (size_t)g->w : NULL;
                    row_Split(g, row, f, half, qw);
                    for (int b = 0; b < nb; b++) {
                        float *d = d0 + (size_t)b * bstride + (size_t)Y * (size_t)g->pw;
                        for (int px = 0; px < g->pw; px++)
                            d[px] = half[px + b];
                    }
                }
            }
}

/* Adjoint of phase_Split: each input element sums its (up to `shifts`)
 * copies. Every din element is written once, so din needs no zeroing. */
static void phase_Merge(const conv_geom *g, int n, const float *phase, float *din_c)
{
    const int nb = shifts(g);
    const size_t bstride = (size_t)n * (size_t)g->qh * (size_t)g->pw;
    for (int s = 0; s < n; s++) {
        float *dst = din_c + (size_t)s * (size_t)g->h * (size_t)g->w;
        for (int y = 0; y < g->h; y++) {
            int yy = y + g->pad, e = yy & 1, Y = yy >> 1;
            float *row = dst + (size_t)y * (size_t)g->w;
            for (int f = 0; f < 2; f++) {
                const float *src = phase + phase_Index(g, n, e, f, 0, s) + (size_t)Y * (size_t)g->pw;
                /* Columns x with (x + pad) & 1 == f sit at X = (x + pad) / 2, copied
                 * to px = X - b of every shift b with 0 <= px < pw. */
                int x0 = ((f - g->pad) % 2 + 2) % 2;
                for (int x = x0; x < g->w; x += 2) {
                    int X = (x + g->pad) >> 1;
                    int blo = X - g->pw + 1 > 0 ? X - g->pw + 1 : 0;
                    int bhi = X < nb - 1 ? X : nb - 1;
                    float v = 0.0f;
                    for (int b = blo; b <= bhi; b++)
                        v += src[(size_t)b * bstride + (size_t)(X - b)];
                    row[x] = v;
                }
            }
        }
    }
}

void conv_PhaseSplitNchw(const conv_geom *g, int n, const float *x, float *phase)
{
    const size_t plane = (size_t)g->h * (size_t)g->w;
    for (int c = 0; c < g->c; c++)
        phase_Split(g, n, x + (size_t)c * plane, (size_t)g->c * plane,
                    phase + (size_t)c * conv_PhaseFloats(g, n));
}

size_t conv_PhaseRun(const conv_geom *g, int n, int ky, int kx, int q)
{
    int u = (q >> 1) + ky, v = (q & 1) + kx;
    return phase_Index(g, n, u & 1, v & 1, v >> 1, 0) + (size_t)(u >> 1) * (size_t)g->pw;
}

void conv_Im2col(const conv_geom *g, int n, const float *in, float *phase, float *cols)
{
    const size_t plane = (size_t)g->h * (size_t)g->w, blk = (size_t)g->qh * (size_t)g->pw;
    const int run = g->ph * g->pw;
    float *dst = cols;
    for (int c = 0; c < g->c; c++) {
        phase_Split(g, n, in + (size_t)c * (size_t)n * plane, plane, phase);
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++)
                for (int q = 0; q < 4; q++) {
                    const float *src = phase + conv_PhaseRun(g, n, ky, kx, q);
                    for (int s = 0; s < n; s++, dst += run, src += blk)
                        run_Copy(dst, src, run);
                }
    }
}

void conv_Col2im(const conv_geom *g, int n, const float *cols, float *phase, float *din)
{
    const size_t plane = (size_t)g->h * (size_t)g->w, blk = (size_t)g->qh * (size_t)g->pw;
    const int run = g->ph * g->pw;
    const float *src = cols;
    for (int c = 0; c < g->c; c++) {
        memset(phase, 0, conv_PhaseFloats(g, n) * sizeof(float));
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++)
                for (int q = 0; q < 4; q++) {
                    float *dst = phase + conv_PhaseRun(g, n, ky, kx, q);
                    for (int s = 0; s < n; s++, src += run, dst += blk)
                        run_Add(dst, src, run);
                }
        phase_Merge(g, n, phase, din + (size_t)c * (size_t)n * plane);
    }
}

/* ----------------------------------------------------------------- pool */

void pool_Forward(int c, size_t len, const float *z, const float *bias, float *out)
{
    for (int ch = 0; ch < c; ch++) {
        const float *z0 = z + (size_t)ch * 4 * len, *z1 = z0 + len, *z2 = z1 + len,
                    *z3 = z2 + len;
        float *o = out + (size_t)ch * len;
        const float b = bias[ch];
        const v4f vb = v4_Splat(b), zero = v4_Splat(0.0f);
        size_t i = 0;
        /* Bias is constant over a window and ReLU is monotone, so
         * relu(max(z) + b) is the pool of relu(z + b). */
        for (; i + 4 <= len; i += 4) {
            v4f m = v4_Max(v4_Max(v4_Load(z0 + i), v4_Load(z1 + i)),
                           v4_Max(v4_Load(z2 + i), v4_Load(z3 + i)));
            v4_Store(o + i, v4_Max(m + vb, zero));
        }
        for (; i < len; i++) {
            float m = z0[i];
            m = z1[i] > m ? z1[i] : m;
            m = z2[i] > m ? z2[i] : m;
            m = z3[i] > m ? z3[i] : m;
            m += b;
            o[i] = m > 0.0f ? m : 0.0f;
        }
    }
}

void pool_Backward(int c, size_t len, float *z, const float *out, const float *dout,
                   float *dbias, int accumulate)
{
    for (int ch = 0; ch < c; ch++) {
        float *z0 = z + (size_t)ch * 4 * len, *z1 = z0 + len, *z2 = z1 + len, *z3 = z2 + len;
        const float *o = out + (size_t)ch * len, *d = dout + (size_t)ch * len;
        const v4f zero = v4_Splat(0.0f);
        v4f acc = zero;
        size_t i = 0;
        for (; i + 4 <= len; i += 4) {
            v4f a = v4_Load(z0 + i), b = v4_Load(z1 + i), cc = v4_Load(z2 + i),
                dd = v4_Load(z3 + i);
            v4f m = v4_Max(v4_Max(a, b), v4_Max(cc, dd));
            v4f gr = v4_Select(v4_Load(o + i) > zero, v4_Load(d + i), zero);
            /* The first maximal position wins, so ties (common: blank image
             * regions give equal zeros) pass the gradient exactly once. */
            v4i t0 = a == m, t1 = (b == m) & ~t0, taken = t0 | t1;
            v4i t2 = (cc == m) & ~taken, t3 = ~(taken | t2);
            v4_Store(z0 + i, v4_Select(t0, gr, zero));
            v4_Store(z1 + i, v4_Select(t1, gr, zero));
            v4_Store(z2 + i, v4_Select(t2, gr, zero));
            v4_Store(z3 + i, v4_Select(t3, gr, zero));
            acc += gr;
        }
        float db = v4_Sum(acc);
        for (; i < len; i++) {
            float a = z0[i], b = z1[i], cc = z2[i], dd = z3[i];
            float m = a;
            m = b > m ? b : m;
            m = cc > m ? cc : m;
            m = dd > m ? dd : m;
            float gr = o[i] > 0.0f ? d[i] : 0.0f;
            int w = a == m ? 0 : b == m ? 1 : cc == m ? 2 : 3;
            z0[i] = w == 0 ? gr : 0.0f;
            z1[i] = w == 1 ? gr : 0.0f;
            z2[i] = w == 2 ? gr : 0.0f;
            z3[i] = w == 3 ? gr : 0.0f;
            db += gr;
        }
        dbias[ch] = accumulate ? dbias[ch] + db : db;
    }
}

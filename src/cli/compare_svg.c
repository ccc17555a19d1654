/* compare_svg.c - test accuracy and training loss against wall-clock time,
 * one line per architecture, as a self-contained SVG. */
#include "cli/compare.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

typedef struct {
    double x0, y0, w, h;         /* panel rectangle */
    double tmax, vmin, vmax;     /* data ranges */
} panel;

static double px(const panel *p, double t) { return p->x0 + (p->tmax > 0 ? t / p->tmax : 0) * p->w; }
static double py(const panel *p, double v)
{
    double span = p->vmax - p->vmin;
    return p->y0 + p->h - (span > 0 ? (v - p->vmin) / span : 0) * p->h;
}

static void panel_Axes(FILE *f, const panel *p, const char *title, const char *ylabel)
{
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n",
            p->x0, p->y0, p->w, p->h);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='14'>%s</text>\n",
            p->x0 + p->w / 2, p->y0 - 10, title);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12'>wall-clock time (s)</text>\n",
            p->x0 + p->w / 2, p->y0 + p->h + 34);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12' "
               "transform='rotate(-90 %.1f %.1f)'>%s</text>\n",
            p->x0 - 44, p->y0 + p->h / 2, p->x0 - 44, p->y0 + p->h / 2, ylabel);
    for (int i = 0; i <= 4; i++) {
        double t = p->tmax * i / 4, v = p->vmin + (p->vmax - p->vmin) * i / 4;
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='10'>%.1f</text>\n",
                px(p, t), p->y0 + p->h + 14, t);
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='10'>%.3f</text>\n",
                p->x0 - 4, py(p, v) + 3, v);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", p->x0,
                py(p, v), p->x0 + p->w, py(p, v));
    }
}

/* One polyline of `key` from a report's history (points lacking it skipped). */
static void panel_Line(FILE *f, const panel *p, const cJSON *history, const char *key,
                       const char *color)
{
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    const cJSON *pt;
    cJSON_ArrayForEach(pt, history) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(pt, "t");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, key);
        if (cJSON_IsNumber(t) && cJSON_IsNumber(v) && isfinite(v->valuedouble))
            fprintf(f, "%.1f,%.1f ", px(p, t->valuedouble), py(p, v->valuedouble));
    }
    fprintf(f, "'/>\n");
}

static void ranges(cJSON *const *reports, int n, const char *key, double *tmax, double *vmin,
                   double *vmax)
{
    *vmin = INFINITY;
    *vmax = -INFINITY;
    for (int i = 0; i < n; i++) {
        const cJSON *pt;
        cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(reports[i], "history")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(pt, "t");
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, key);
            if (cJSON_IsNumber(t) && t->valuedouble > *tmax)
                *tmax = t->valuedouble;
            if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
                *vmin = fmin(*vmin, v->valuedouble);
                *vmax = fmax(*vmax, v->valuedouble);
            }
        }
    }
    if (!isfinite(*vmin)) {
        *vmin = 0;
        *vmax = 1;
    }
    if (*vmax - *vmin < 1e-6)
        *vmax = *vmin + 1e-3;
}

spStatus compare_WriteSvg(const char *path, cJSON *const *reports, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return sp_Error(SP_ERR_IO, "cannot write %s", path);
    const double W = 1000, H = 420;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n"
               "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
               "viewBox='0 0 %.0f %.0f' font-family='sans-serif'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n", W, H, W, H);
    panel acc = {.x0 = 70, .y0 = 40, .w = 380, .h = 290};
    panel loss = {.x0 = 570, .y0 = 40, .w = 380, .h = 290};
    double tmax = 0;
    ranges(reports, n, "test_accuracy", &tmax, &acc.vmin, &acc.vmax);
    ranges(reports, n, "loss", &tmax, &loss.vmin, &loss.vmax);
    acc.tmax = loss.tmax = tmax > 0 ? tmax : 1;
    panel_Axes(f, &acc, "test accuracy", "accuracy");
    panel_Axes(f, &loss, "training loss", "loss");
    for (int i = 0; i < n; i++) {
        const char *color = colors[i % (int)(sizeof colors / sizeof colors[0])];
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(reports[i], "history");
        panel_Line(f, &acc, h, "test_accuracy", color);
        panel_Line(f, &loss, h, "loss", color);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(reports[i], "arch");
        double lx = 70 + i * 180.0, ly = H - 30;
        fprintf(f, "<line x1='%.0f' y1='%.0f' x2='%.0f' y2='%.0f' stroke='%s' stroke-width='3'/>\n",
                lx, ly, lx + 24, ly, color);
        fprintf(f, "<text x='%.0f' y='%.0f' font-size='12'>%s</text>\n", lx + 30, ly + 4,
                cJSON_IsString(a) ? a->valuestring : "?");
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? SP_OK : sp_Error(SP_ERR_IO, "cannot write %s", path);
}

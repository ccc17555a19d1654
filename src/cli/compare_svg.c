/* compare_svg.c - test accuracy against training time and against cost,
 * and training loss against time: one line per architecture (a dot on each
 * test-accuracy point, so a run with one evaluation still shows) and the
 * target dashed, as a self-contained SVG. */
#include "cli/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

typedef struct {
    double *x, *y;
    int n;
} series;

typedef struct {
    double x0, y0, w, h;          /* panel rectangle */
    double xmin, xmax, ymin, ymax, xstep, ystep; /* axes, on tick steps */
    const char *ykey;             /* history key plotted */
    int by_cost;                  /* x: cost accrued (USD), else training time (s) */
    const char *title, *xlabel, *ylabel;
    double target;                /* a dashed line here (NAN: none) */
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h; }

/* A 1, 2 or 5 x 10^k step giving about four intervals over [lo, hi],
 * and lo, hi moved out to steps. A zero span is widened first. */
static void nice_range(double *lo, double *hi, double *step)
{
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
    }
    if (*hi - *lo < 1e-12) {
        double pad = fmax(fabs(*lo) * 0.05, 1e-6);
        *lo -= pad;
        *hi += pad;
    }
    double raw = (*hi - *lo) / 4, mag = pow(10, floor(log10(raw))), f = raw / mag;
    *step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    *lo = floor(*lo / *step + 1e-9) * *step;
    *hi = ceil(*hi / *step - 1e-9) * *step;
}

/* The points of one report's history that carry p->ykey. */
static series series_Of(const cJSON *report, const panel *p, const cost_model *cost)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(report, "history");
    int cap = cJSON_GetArraySize(h);
    series s = {malloc(sizeof(double) * (size_t)(cap + 1)), malloc(sizeof(double) * (size_t)(cap + 1)), 0};
    if (!s.x || !s.y)
        return s;
    run_usage u = compare_Usage(report, cost);
    cost_split c = compare_Cost(cost, &u);
    const cJSON *pt;
    cJSON_ArrayForEach(pt, h) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(pt, "t");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, p->ykey);
        if (!cJSON_IsNumber(t) || !cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            continue;
        s.x[s.n] = p->by_cost ? compare_CostAt(&c, &u, t->valuedouble, compare_Num(pt, "iteration"))
                              : t->valuedouble;
        s.y[s.n++] = v->valuedouble;
    }
    return s;
}

static void panel_Ranges(panel *p, const series *s, int n)
{
    p->xmin = 0;
    p->xmax = -INFINITY;
    p->ymin = INFINITY;
    p->ymax = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s[i].n; k++) {
            p->xmax = fmax(p->xmax, s[i].x[k]);
            p->ymin = fmin(p->ymin, s[i].y[k]);
            p->ymax = fmax(p->ymax, s[i].y[k]);
        }
    if (!isfinite(p->xmax) || p->xmax <= 0)
        p->xmax = 1;
    if (isfinite(p->target)) {
        p->ymin = fmin(p->ymin, p->target);
        p->ymax = fmax(p->ymax, p->target);
    }
    nice_range(&p->xmin, &p->xmax, &p->xstep);
    nice_range(&p->ymin, &p->ymax, &p->ystep);
}

static void panel_Axes(FILE *f, const panel *p)
{
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n",
            p->x0, p->y0, p->w, p->h);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='14'>%s</text>\n",
            p->x0 + p->w / 2, p->y0 - 10, p->title);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12'>%s</text>\n",
            p->x0 + p->w / 2, p->y0 + p->h + 34, p->xlabel);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12' "
               "transform='rotate(-90 %.1f %.1f)'>%s</text>\n",
            p->x0 - 48, p->y0 + p->h / 2, p->x0 - 48, p->y0 + p->h / 2, p->ylabel);
    for (double x = p->xmin; x <= p->xmax + p->xstep * 1e-6; x += p->xstep)
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='10'>%.3g</text>\n",
                px(p, x), p->y0 + p->h + 14, fabs(x) < p->xstep * 1e-6 ? 0 : x);
    if (isfinite(p->target))
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#888' "
                   "stroke-dasharray='6 4'/>\n<text x='%.1f' y='%.1f' text-anchor='end' "
                   "font-size='10' fill='#555'>target %g</text>\n",
                p->x0, py(p, p->target), p->x0 + p->w, py(p, p->target), p->x0 + p->w - 4,
                py(p, p->target) - 4, p->target);
    for (double y = p->ymin; y <= p->ymax + p->ystep * 1e-6; y += p->ystep) {
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='10'>%.4g</text>\n",
                p->x0 - 4, py(p, y) + 3, fabs(y) < p->ystep * 1e-6 ? 0 : y);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n", p->x0,
                py(p, y), p->x0 + p->w, py(p, y));
    }
}

static void panel_Line(FILE *f, const panel *p, const series *s, const char *color, int dots)
{
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (int k = 0; k < s->n; k++)
        fprintf(f, "%.1f,%.1f ", px(p, s->x[k]), py(p, s->y[k]));
    fprintf(f, "'/>\n");
    for (int k = 0; dots && k < s->n; k++)
        fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", px(p, s->x[k]),
                py(p, s->y[k]), color);
}

static void panel_Draw(FILE *f, panel *p, cJSON *const *reports, int n, const cost_model *cost)
{
    series s[8];
    n = n > 8 ? 8 : n;
    for (int i = 0; i < n; i++)
        s[i] = series_Of(reports[i], p, cost);
    panel_Ranges(p, s, n);
    panel_Axes(f, p);
    for (int i = 0; i < n; i++) {
        panel_Line(f, p, &s[i], colors[i % (int)(sizeof colors / sizeof colors[0])],
                   p->ykey[0] == 't');
        free(s[i].x);
        free(s[i].y);
    }
}

spStatus compare_WriteSvg(const char *path, cJSON *const *reports, int n, const cost_model *cost,
                          const compare_target *target)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return sp_Error(SP_ERR_IO, "cannot write %s", path);
    const double W = 1260, H = 420;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n"
               "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
               "viewBox='0 0 %.0f %.0f' font-family='sans-serif'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n", W, H, W, H);
    panel panels[] = {
        {.x0 = 75, .y0 = 40, .w = 330, .h = 290, .ykey = "test_accuracy",
         .title = "test accuracy over time", .xlabel = "training time (s)", .ylabel = "accuracy"},
        {.x0 = 495, .y0 = 40, .w = 330, .h = 290, .ykey = "test_accuracy", .by_cost = 1,
         .title = "test accuracy over cost", .xlabel = "cost accrued (USD)", .ylabel = "accuracy"},
        {.x0 = 915, .y0 = 40, .w = 330, .h = 290, .ykey = "loss",
         .title = "training loss", .xlabel = "training time (s)", .ylabel = "loss"},
    };
    for (size_t k = 0; k < sizeof panels / sizeof panels[0]; k++) {
        int at = target->key && !strcmp(target->key, panels[k].ykey);
        panels[k].target = at ? target->value : NAN;
        panel_Draw(f, &panels[k], reports, n, cost);
    }
    for (int i = 0; i < n; i++) {
        const char *color = colors[i % (int)(sizeof colors / sizeof colors[0])];
        double lx = 75 + i * 180.0, ly = H - 30;
        fprintf(f, "<line x1='%.0f' y1='%.0f' x2='%.0f' y2='%.0f' stroke='%s' stroke-width='3'/>\n",
                lx, ly, lx + 24, ly, color);
        fprintf(f, "<text x='%.0f' y='%.0f' font-size='12'>%s</text>\n", lx + 30, ly + 4,
                compare_Str(reports[i], "arch"));
    }
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? SP_OK : sp_Error(SP_ERR_IO, "cannot write %s", path);
}

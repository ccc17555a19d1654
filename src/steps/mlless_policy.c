/* mlless_policy.c - the MLLESS supervisor's stop rule, scale-in auto-tuner
 * and re-striding (mlless.h). */
#include "steps/mlless.h"

void mlless_StateInit(mlless_state *s)
{
    s->t = -1;
    s->below = 0;
    s->window_sum = 0;
    s->window_n = 0;
    s->prev = -1;
    s->peak = 0;
    s->knee = 0;
    s->cursor = 0;
}

/* An interval just completed: should one of the n workers go? */
static int interval_Remove(mlless_state *s, int n)
{
    double cur = s->window_sum / s->window_n, drop = s->prev >= 0 ? s->prev - cur : -1;
    int had = s->prev >= 0;
    s->prev = cur;
    s->window_sum = 0;
    s->window_n = 0;
    if (!had)
        return 0;
    if (drop > s->peak)
        s->peak = drop;
    if (!s->knee && s->peak > 0 && drop <= MLLESS_KNEE_FRAC * s->peak)
        s->knee = 1;
    /* Predicted over the next interval: the loss falls by drop with n
     * workers, by drop*(n-1)/n with one fewer. */
    double gap = drop > 0 ? drop / n : 0;
    return s->knee && n > 1 && gap <= MLLESS_TOLERANCE * cur;
}

void mlless_Decide(mlless_state *s, const mlless_policy *p, long t, double loss, int has_loss,
                   const int *live, int n, mlless_decision *d)
{
    d->remove = -1;
    s->t = t;
    if (has_loss) {
        s->below = p->target_loss > 0 && loss < p->target_loss ? s->below + 1 : 0;
        s->window_sum += loss;
        s->window_n++;
        if (s->window_n >= MLLESS_INTERVAL && interval_Remove(s, n) && p->scale_in)
            d->remove = live[n - 1];
    }
    s->cursor = p->iters > 0 && (t + 1) % p->iters == 0 ? 0 : s->cursor + (long)n * p->M;
    d->cursor = s->cursor;
    d->below = s->below;
    d->stop = p->target_loss > 0 && s->below >= MLLESS_STOP_STEPS;
}

void mlless_Restride(long cursor, int rank, int m, int M, int N, int *shard, long *slot)
{
    long g = cursor + (long)rank * M + m, col = g / ((long)N * M), j = g % ((long)N * M);
    *shard = (int)(j / M);
    *slot = col * M + j % M;
}

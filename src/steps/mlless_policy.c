/* mlless_policy.c - the MLLESS supervisor's stop and scale-in rules
 * (mlless.h). */
#include "steps/mlless.h"

void mlless_StateInit(mlless_state *s)
{
    s->t = -1;
    s->below = 0;
    s->window_sum = 0;
    s->window_n = 0;
    s->prev_window = -1;
}

/* A window just completed: has the curve flattened? Records the window. */
static int window_Flat(mlless_state *s)
{
    double cur = s->window_sum / s->window_n;
    int flat = s->prev_window > 0 && (s->prev_window - cur) < MLLESS_MIN_GAIN * s->prev_window;
    s->prev_window = cur;
    s->window_sum = 0;
    s->window_n = 0;
    return flat;
}

void mlless_Decide(mlless_state *s, long t, double loss, int has_loss, const int *live, int n,
                   int scale_in, double target_loss, mlless_decision *d)
{
    d->remove = d->heir = -1;
    d->stop = 0;
    s->t = t;
    if (has_loss) {
        s->below = target_loss > 0 && loss < target_loss ? s->below + 1 : 0;
        s->window_sum += loss;
        s->window_n++;
        if (s->window_n >= MLLESS_WINDOW && window_Flat(s) && scale_in && n > 1) {
            d->remove = live[n - 1];
            d->heir = live[n - 2];
            /* The next comparison starts from scratch with fewer workers. */
            s->prev_window = -1;
        }
    }
    d->below = s->below;
    d->stop = target_loss > 0 && s->below >= MLLESS_STOP_STEPS;
}

/* progress.c - progress bar or plain progress lines. */
#include "cli/progress.h"

#include <string.h>
#include <unistd.h>

#include "core/clock.h"

void progress_Init(progress *p, FILE *out, const char *label, int epochs, int quiet)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->quiet = quiet;
    p->start = clock_Now();
    p->epochs = epochs;
    snprintf(p->label, sizeof p->label, "%s", label);
}

static void clear_line(progress *p)
{
    if (p->tty)
        fputs("\r\033[K", p->out);
}

static void on_iteration(void *ctx, int epoch, long iter, long iters, float loss, long samples)
{
    progress *p = ctx;
    if (p->quiet)
        return;
    double now = clock_Now();
    /* Redraw at most 10x/s on a terminal, every 5 s in logs. */
    double every = p->tty ? 0.1 : 5.0;
    if (now - p->last_draw < every && iter != iters)
        return;
    if (!p->tty && iter == iters)
        return; /* the epoch line follows */
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)samples / elapsed : 0;
    p->last_draw = now;
    if (p->tty) {
        const int width = 24;
        int filled = iters ? (int)((double)iter * width / (double)iters) : 0;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(p->out, "\r\033[K%s epoch %d/%d [%s] %ld/%ld  loss %.4f  %.0f samples/s",
                p->label, epoch, p->epochs, bar, iter, iters, loss, rate);
    } else {
        fprintf(p->out, "%s epoch %d/%d iteration %ld/%ld loss %.4f %.0f samples/s\n",
                p->label, epoch, p->epochs, iter, iters, loss, rate);
    }
    fflush(p->out);
}

static void on_epoch(void *ctx, int epoch, float acc, float loss, double elapsed)
{
    progress *p = ctx;
    if (p->quiet)
        return;
    clear_line(p);
    fprintf(p->out, "%s epoch %d/%d: test accuracy %.4f, test loss %.4f (%.1f s)\n", p->label,
            epoch, p->epochs, acc, loss, elapsed);
    fflush(p->out);
}

static void on_event(void *ctx, const char *msg)
{
    progress *p = ctx;
    if (p->quiet)
        return;
    clear_line(p);
    fprintf(p->out, "%s: %s\n", p->label, msg);
    fflush(p->out);
}

train_observer progress_Observer(progress *p)
{
    return (train_observer){.on_iteration = on_iteration, .on_epoch = on_epoch,
                            .on_event = on_event, .ctx = p};
}

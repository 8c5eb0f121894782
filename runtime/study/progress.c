/* Progress lines: the training loop's and long analyses'. */
#include "progress.h"

#include "batchscope/fsutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double bsc_progress_interval(void)
{
    const char *e = getenv("BATCHSCOPE_PROGRESS_INTERVAL");
    char *end;
    double v = e && *e ? strtod(e, &end) : 15.0;
    return e && *e && *end == '\0' && v >= 0 ? v : 15.0;
}

void bsc_format_eta(double s, char *buf, size_t len)
{
    if (!isfinite(s) || s < 0)
        s = 0;
    long v = (long)(s + 0.5);
    snprintf(buf, len, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
}

void bsc_format_bar(double frac, int width, char *buf, size_t len)
{
    if (!(frac >= 0))
        frac = 0;
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * width), i;
    for (i = 0; i < width && (size_t)i + 1 < len; i++)
        buf[i] = i < fill ? '#' : '.';
    buf[i] = '\0';
}

void bsc_progress_close(bsc_progress *p)
{
    if (p->open) {
        fputs("\n", p->log);
        fflush(p->log);
        p->open = 0;
    }
}

void bsc_progress_report(void *user, const char *label, const char *unit, size_t done,
                         size_t total)
{
    bsc_progress *p = user;
    if (!p || p->quiet || !label)
        return;
    double now = bsc_now();
    int finished = total > 0 && done >= total;
    if (finished && !strcmp(p->finished, label))
        return;
    p->finished[0] = '\0';
    if (strcmp(p->label, label) != 0) {
        bsc_progress_close(p);
        snprintf(p->label, sizeof p->label, "%s", label);
        p->done0 = done;
        p->t0 = p->last_plain = now;
        p->last_draw = 0;
        p->plain_lines = 0;
    }
    double el = now - p->t0;
    double rate = done > p->done0 && el > 0 ? (double)(done - p->done0) / el : 0;
    char eta[32], bar[32], count[64];
    bsc_format_eta(rate > 0 && total > done ? (double)(total - done) / rate : 0, eta, sizeof eta);
    if (total)
        snprintf(count, sizeof count, "%zu/%zu %s", done, total, unit);
    else
        snprintf(count, sizeof count, "%zu %s", done, unit);
    if (p->tty) {
        /* A few redraws a second at most: a surface point can take a
         * millisecond. */
        if (!finished && now - p->last_draw < 0.2)
            return;
        p->last_draw = now;
        bsc_format_bar(total ? (double)done / (double)total : 0, 24, bar, sizeof bar);
        if (finished) {
            bsc_format_eta(el, eta, sizeof eta);
            fprintf(p->log, "\r\033[K  %s [%s] %s in %s\n", label, bar, count, eta);
            p->open = 0;
            snprintf(p->finished, sizeof p->finished, "%s", label);
            p->label[0] = '\0';
        } else {
            fprintf(p->log, "\r  %s [%s] %s  ETA %s ", label, bar, count,
                    rate > 0 ? eta : "?");
            p->open = 1;
        }
        fflush(p->log);
        return;
    }
    if (finished) {
        if (p->plain_lines) {
            bsc_format_eta(el, eta, sizeof eta);
            fprintf(p->log, "  %s: %s in %s\n", label, count, eta);
            fflush(p->log);
        }
        snprintf(p->finished, sizeof p->finished, "%s", label);
        p->label[0] = '\0';
        return;
    }
    if (now - p->last_plain >= bsc_progress_interval()) {
        fprintf(p->log, "  %s: %s, ETA %s\n", label, count, rate > 0 ? eta : "?");
        fflush(p->log);
        p->last_plain = now;
        p->plain_lines++;
    }
}

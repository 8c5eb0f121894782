/* Internal: progress lines of the training loop and of long analyses.
 *
 * On a terminal a line is redrawn in place ('\r', at most a few times a
 * second); into a file or a pipe the same information goes out as plain
 * lines, one every bsc_progress_interval() seconds, so a CI log shows that
 * a long study is alive without a line per step. */
#ifndef BATCHSCOPE_PROGRESS_H
#define BATCHSCOPE_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

/* Seconds between plain progress lines: $BATCHSCOPE_PROGRESS_INTERVAL, or
 * 15 (a line per step would bury the log). */
double bsc_progress_interval(void);

/* "1:02:03": hours, minutes, seconds of s (0 for NaN or negative). */
void bsc_format_eta(double s, char *buf, size_t len);

/* A bar of `width` cells ('#' done, '.' to do) for a fraction in [0, 1]. */
void bsc_format_bar(double frac, int width, char *buf, size_t len);

/* What the host draws a long analysis' progress with (bsc_study's
 * progress callback, user = this struct). */
typedef struct bsc_progress {
    FILE *log;
    int tty;              /* redraw in place */
    int quiet;            /* draw nothing */
    char label[128];      /* the item being drawn ("" none) */
    char finished[128];   /* the item last finished (a repeated end is not drawn) */
    size_t done0;         /* done when the item started (a resumed grid) */
    double t0;            /* when it started */
    double last_draw;     /* last redraw on a terminal */
    double last_plain;    /* last plain line (or the start) */
    int plain_lines;      /* plain lines printed for this item */
    int open;             /* a terminal line without its newline yet */
} bsc_progress;

void bsc_progress_report(void *user, const char *label, const char *unit, size_t done,
                         size_t total);
/* Ends an open terminal line (before other output). */
void bsc_progress_close(bsc_progress *p);

#endif
